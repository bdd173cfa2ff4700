"""Parameter values for ``%xsim``: which model and which values a source gives.

A source is a FitResult (its best fit), a ModelSpec (its fixed values; free
parameters take their prior's median, ties are evaluated) or a SpectralModel
(its defaults). ``overrides`` (from ``--set``) win over all of them.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from ..errors import ModelError

__all__ = ["source_model_and_params"]


def _spec_values(spec: Any) -> dict[str, float]:
    values: dict[str, float] = dict(getattr(spec, "fixed", {}) or {})
    for name, prior in (getattr(spec, "prior_defs", {}) or {}).items():
        median = getattr(prior, "median", None)
        if callable(median):
            values.setdefault(name, float(median()))
    return values


def _apply_ties(spec: Any, values: dict[str, float]) -> None:
    ties: Mapping[str, Any] = getattr(spec, "ties", {}) or {}
    for _ in range(len(ties) + 1):
        for name, tie in ties.items():
            if all(d in values for d in getattr(tie, "depends", ())):
                values[name] = float(tie.evaluate(values))


def source_model_and_params(
    source: Any, overrides: Mapping[str, Any]
) -> tuple[Any, dict[str, float]]:
    """``(SpectralModel, {parameter: value})`` to simulate from ``source``.

    Raises:
        ModelError: ``source`` is not a model, or an override names an unknown
            parameter (with the closest name as a suggestion).

    Example:
        >>> model, params = source_model_and_params(spec, {"powerlaw.norm": 1e-3})  # doctest: +SKIP
    """
    spec = None
    if hasattr(source, "best_fit") and hasattr(source, "spec"):  # a FitResult
        spec = source.spec
        values = _spec_values(spec)
        values.update(source.best_fit)
    elif hasattr(source, "model") and hasattr(source, "fixed"):  # a ModelSpec
        spec = source
        values = _spec_values(spec)
    elif hasattr(source, "evaluate") and hasattr(source, "param_names"):  # a SpectralModel
        values = {}
    else:
        raise ModelError(
            f"cannot simulate from a {type(source).__name__}; give a FitResult, a %%xmodel "
            "specification or a SpectralModel"
        )
    model = source if spec is None else spec.model
    known = list(model.param_names)
    for key, value in overrides.items():
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            raise ModelError(
                f"unknown parameter {key!r}; parameters: {', '.join(known)}",
                suggestion=close[0] if close else None,
            )
        try:
            values[key] = float(value)
        except (TypeError, ValueError):
            raise ModelError(f"--set {key}: {value!r} is not a number") from None
    if spec is not None:
        _apply_ties(spec, values)
        for key, value in overrides.items():  # an override beats a tie
            values[key] = float(value)
    return model, {k: v for k, v in values.items() if k in known}
