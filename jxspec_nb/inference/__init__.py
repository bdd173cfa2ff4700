"""Inference: priors, likelihoods, and the fit methods (NUTS, AIES, NS, VI, MLE).

>>> from jxspec_nb.inference import fit, model_with_priors     # doctest: +SKIP
"""

from __future__ import annotations

from ._fit import METHODS, fit
from .batch import BatchResult, fit_batch
from .compile import enable_persistent_cache, trace_counts
from .priors import ModelSpec, model_with_priors
from .progress import NullProgress, Progress, TextProgress

__all__ = [
    "METHODS",
    "BatchResult",
    "fit_batch",
    "ModelSpec",
    "NullProgress",
    "Progress",
    "TextProgress",
    "enable_persistent_cache",
    "fit",
    "model_with_priors",
    "trace_counts",
]
