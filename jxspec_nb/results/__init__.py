"""Fit results: :class:`FitResult` (arviz inside), summaries, save/load.

>>> from jxspec_nb.results import FitResult, load_result    # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

__all__ = ["FitResult", "load_result"]


def __getattr__(name: str) -> Any:
    if name == "FitResult":
        from .result import FitResult

        return FitResult
    if name == "load_result":
        from .io import load_result

        return load_result
    raise AttributeError(f"module 'jxspec_nb.results' has no attribute {name!r}")
