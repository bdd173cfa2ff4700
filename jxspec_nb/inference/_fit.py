"""``fit``: one entry point for every method.

>>> result = fit(model_with_priors(text), obs, method="nuts")     # doctest: +SKIP
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Sequence
from typing import Any

from ..errors import FitError
from .compile import enable_persistent_cache, get_problem
from .priors import ModelSpec, model_with_priors
from .progress import resolve_progress

__all__ = ["fit", "METHODS"]

METHODS = {"nuts": "nuts", "aies": "aies", "ns": "nested", "nested": "nested", "vi": "vi",
           "mle": "mle"}


def fit(spec: Any, observations: Any, *, method: str = "nuts", stat: str = "cstat",
        chains: int = 4, warmup: int = 1000, samples: int = 1000, steps: int | None = None,
        seed: int = 0, progress: Any = None, background: Any = "auto", **options: Any) -> Any:
    """Fit ``spec`` to one or several observations.

    Args:
        spec: a :class:`ModelSpec` (or its text, parsed with :func:`model_with_priors`).
        observations: an :class:`~jxspec_nb.data.Observation` or a list for a joint fit.
        method: ``"nuts"`` (default), ``"aies"``, ``"ns"`` (jaxns nested sampling),
            ``"vi"`` (numpyro SVI) or ``"mle"`` (global maximum likelihood + errors).
        stat: ``"cstat"`` (default), ``"wstat"``, ``"chi2"``, ``"chi2_model"``.
        chains: chains (NUTS) or walkers (AIES; default max(4 * dim, 32) when 4).
        warmup: warm-up iterations per chain (NUTS, AIES).
        samples: draws kept per chain (NUTS, AIES), or draws from the
            posterior approximation (VI, MLE).
        steps: optimisation steps (VI, MLE polish) or a cap on NS iterations.
        seed: random seed.
        progress: None (automatic), False (silent) or an object with
            ``start/update/finish`` (see :mod:`jxspec_nb.inference.progress`).
        background: ``"auto"``, ``"wstat"``, ``"bayesian"``, ``"subtract"``,
            ``"ignore"`` or a :class:`ModelSpec` of the background.
        **options: method options (see each ``jxspec_nb.inference.methods`` module).

    Returns:
        A :class:`~jxspec_nb.results.FitResult`.

    Example:
        >>> from jxspec_nb import datasets, fit, model_with_priors       # doctest: +SKIP
        >>> spec = model_with_priors('''tbabs*(powerlaw + bbodyrad)
        ... tbabs.nH ~ Uniform(0, 1)
        ... powerlaw.PhoIndex ~ Uniform(0, 3)
        ... powerlaw.norm ~ LogUniform(1e-5, 1e-1)
        ... bbodyrad.kT ~ Uniform(0, 3)
        ... bbodyrad.norm ~ LogUniform(1e-3, 1)''')
        >>> result = fit(spec, datasets.load("ngc7793_ulx4", bkg=None))
    """
    from .methods._common import Timer

    timer = Timer()
    t0 = time.perf_counter()
    if method not in METHODS:
        raise FitError(f"unknown method {method!r}; use one of nuts, aies, ns, vi, mle")
    if not isinstance(spec, ModelSpec):
        spec = model_with_priors(spec)
    obs_list: Sequence[Any] = (list(observations) if isinstance(observations, list | tuple)
                               else [observations])
    if chains < 1 or samples < 1 or warmup < 0:
        raise FitError("chains and samples must be >= 1 and warmup >= 0")
    enable_persistent_cache()
    problem, data = get_problem(spec, obs_list, stat=stat, background=background)
    timer.add("setup", time.perf_counter() - t0)
    module = importlib.import_module(f".methods.{METHODS[method]}", __package__)
    return module.run(problem, data, obs_list, chains=chains, warmup=warmup, samples=samples,
                      steps=steps, seed=seed, progress=resolve_progress(progress), timer=timer,
                      **options)
