"""What every method shares: the chunk loop, prior draws, and turning draws into a result.

Each method module has the same shape::

    def run(problem, data, observations, *, chains, warmup, samples, steps, seed,
            progress, **options) -> FitResult

and ends with :func:`make_result` on its draws in unconstrained space.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..._jax import jax, jnp
from ..compile import Problem

__all__ = ["run_chunks", "prior_draws_u", "make_result", "pointwise_batched", "Timer",
           "background", "warm_pointwise", "systematic_resample", "preload_summary"]

_BATCH = 256
_POOL: Any = None


def background(fn: Callable[[], Any]) -> Any:
    """Run ``fn()`` in a worker thread; returns its ``concurrent.futures.Future``.

    For compilation: XLA compiles outside Python's GIL, so compiling a sampler's
    step while its initial state is computed (or the post-processing function
    while the sampler runs) overlaps work that would otherwise add up.
    """
    global _POOL
    if _POOL is None:
        from concurrent.futures import ThreadPoolExecutor

        _POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="jxspec-compile")
    return _POOL.submit(fn)


def preload_summary() -> None:
    """Import pandas (what ``result.summary()`` and the result's display need, ~0.2 s)
    in a worker thread, unless imported already: called while XLA compiles a sampler,
    when the main thread only waits and part of the second core idles."""
    import sys

    if "pandas" not in sys.modules:
        def load() -> None:
            try:
                import pandas  # noqa: F401
            except ImportError:  # pragma: no cover - arviz depends on pandas
                pass

        background(load)


def _pointwise_batch(n: int) -> int:
    return min(_BATCH, n)


def warm_pointwise(problem: Problem, data: Any, n_draws: int) -> None:
    """Compile ``problem.pointwise`` for the batch :func:`make_result` will use, in the
    background; :func:`pointwise_batched` waits for it.

    Compiled ahead of time, not run: a single-device program executed while NUTS's
    chains run on all the devices (``pmap``) could deadlock XLA's CPU runtime (seen
    with a Bayesian background, whose per-draw program does large matrix products)."""
    batch = _pointwise_batch(n_draws)
    key = ("pointwise_warm", batch, tuple((a.shape, str(a.dtype)) for a in jax.tree.leaves(data)))
    if key in problem._fns:
        return
    aval = jax.ShapeDtypeStruct((batch, problem.dim), jnp.float64)
    problem._fns[key] = background(
        lambda: pointwise_fn(problem, data, batch).lower(aval, data).compile())


def stored_program(problem: Problem, data: Any, name: str, fn: Any, avals: tuple[Any, ...],
                   fallback: Any) -> Any:
    """``jit(fn)`` for this problem and data's shapes, once per process: read back from
    the exported-program cache when stored there by an earlier process (no trace of the
    model here), else traced now and stored (:mod:`..._exported`); ``fallback`` (the
    problem's own jitted function) when it cannot be stored."""
    from .. import _exported

    key = (name, tuple((a.shape, str(a.dtype)) for a in jax.tree.leaves(data)),
           tuple((a.shape, str(a.dtype)) for a in avals))
    fn_c = problem._fns.get(key)
    if fn_c is None:
        fn_c = _exported.cached_jit(problem, data, name, (name, key, 1), fn, *avals,
                                    _exported.avals_of(data))
        problem._fns[key] = fallback if fn_c is None else fn_c
    return problem._fns[key]


def pointwise_fn(problem: Problem, data: Any, batch: int) -> Any:
    """``problem.pointwise`` for batches of ``batch`` draws (:func:`stored_program`)."""
    return stored_program(problem, data, "pointwise",
                          jax.vmap(problem._pointwise, in_axes=(0, None)),
                          (jax.ShapeDtypeStruct((batch, problem.dim), jnp.float64),),
                          problem.pointwise)


def value_and_grad_fn(problem: Problem, data: Any) -> Any:
    """The log density and its gradient as one flat array ``[value, *grad]``
    (:func:`stored_program`): one transfer back to the host per call, for optimisers
    that call it from Python (~125 against ~240 us a call on ULX-4)."""
    def flat(u: Any, d: Any) -> Any:
        v, g = jax.value_and_grad(problem._log_density)(u, d)
        return jnp.concatenate([v[None], g])

    return stored_program(problem, data, "value_and_grad_flat", flat,
                          (jax.ShapeDtypeStruct((problem.dim,), jnp.float64),),
                          jax.jit(flat))


class Timer:
    """Wall-clock phases: ``with timer("compile"): ...``; ``timer.timings``."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self._t0 = time.perf_counter()

    def __call__(self, name: str) -> Timer:
        self._name = name
        return self

    def __enter__(self) -> Timer:
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.add(self._name, time.perf_counter() - self._start)

    def add(self, name: str, seconds: float) -> None:
        self.timings[name] = self.timings.get(name, 0.0) + seconds

    def total(self) -> dict[str, float]:
        out = dict(self.timings)
        out["total"] = time.perf_counter() - self._t0
        return out


def run_chunks(step: Callable[[Any], tuple[Any, Any]], state: Any, n_chunks: int,
               on_chunk: Callable[[int, Any], None], progress: Any,
               method: str) -> tuple[Any, list[Any], bool]:
    """Call ``step`` ``n_chunks`` times; stop cleanly on KeyboardInterrupt.

    ``on_chunk(k, output)`` runs after each chunk (progress updates). Returns the
    final state, the list of chunk outputs and whether the run was interrupted.
    """
    outs: list[Any] = []
    interrupted = False
    try:
        for k in range(n_chunks):
            state, out = step(state)
            outs.append(jax.device_get(out))
            on_chunk(k, outs[-1])
    except KeyboardInterrupt:
        interrupted = True
        warnings.warn(f"{method} interrupted after {len(outs)} of {n_chunks} chunks: "
                      "keeping the draws made so far", RuntimeWarning, stacklevel=3)
    progress.finish(interrupted=interrupted)
    return state, outs, interrupted


def prior_draws_u(problem: Problem, data: Any, rng: np.random.Generator, n: int,
                  spread: float = 2.0) -> np.ndarray:
    """``n`` starting points: model parameters uniform in (-spread, spread) in
    sampling space (numpyro's default), background rates near their data."""
    base = problem.u_from_values(np.zeros(problem.n_free), data)
    u = np.tile(base, (n, 1))
    u[:, :problem.n_free] = rng.uniform(-spread, spread, (n, problem.n_free))
    if problem.dim > problem.n_free:
        u[:, problem.n_free:] += rng.normal(0.0, 0.1, (n, problem.dim - problem.n_free))
    return u


def pointwise_batched(problem: Problem, u: np.ndarray, data: Any) -> dict[str, np.ndarray]:
    """``problem.pointwise`` over many draws in fixed-size batches (one compile)."""
    n = u.shape[0]
    batch = _pointwise_batch(n)
    key = ("pointwise_warm", batch, tuple((a.shape, str(a.dtype)) for a in jax.tree.leaves(data)))
    warm = problem._fns.get(key)
    if warm is not None and hasattr(warm, "result"):
        warm.result()  # compiled in the background (warm_pointwise): wait, do not compile twice
    fn = pointwise_fn(problem, data, batch)
    outs: list[dict[str, Any]] = []
    for start in range(0, n, batch):
        chunk = u[start:start + batch]
        pad = batch - chunk.shape[0]
        if pad:
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], pad, axis=0)])
        res = jax.device_get(fn(jax.device_put(chunk), data))
        outs.append({k: np.asarray(v)[:batch - pad] for k, v in res.items()})
    return {k: np.concatenate([o[k] for o in outs]) for k in outs[0]}


def make_result(problem: Problem, data: Any, observations: Sequence[Any], u: np.ndarray, *,
                method: str, timer: Timer, seed: int,
                sample_stats: dict[str, np.ndarray] | None = None,
                best_u: np.ndarray | None = None, log_evidence: float | None = None,
                log_evidence_err: float | None = None, elbo: np.ndarray | None = None,
                extra: dict[str, Any] | None = None, weights: np.ndarray | None = None,
                pointwise: dict[str, np.ndarray] | None = None) -> Any:
    """Build the :class:`~jxspec_nb.results.FitResult` from draws ``u[chain, draw, dim]``
    (``pointwise``: :func:`pointwise_batched` of them, when already computed)."""
    from ...results._idata import build_draws
    from ...results.result import FitResult

    t0 = time.perf_counter()
    chains, draws, dim = u.shape
    flat = u.reshape(chains * draws, dim)
    pw = pointwise if pointwise is not None else pointwise_batched(problem, flat, data)
    if best_u is None:
        best = int(np.argmax(pw["loglik"].sum(axis=1)))
        best_vals, stat = pw["values"][best], float(pw["statistic"][best])
        best_derived = pw["derived"][best]
    else:
        pb = pointwise_batched(problem, best_u[None, :], data)
        best_vals, stat = pb["values"][0], float(pb["statistic"][0])
        best_derived = pb["derived"][0]
    best_fit = {n: float(v) for n, v in zip(problem.names, best_vals, strict=True)}
    best_fit.update({n: float(v) for n, v in zip(problem.derived_names, best_derived,
                                                 strict=True)})
    rng = np.random.default_rng(seed + 7919)
    arrays = build_draws(problem, data, observations, pw, chains, draws, sample_stats or {},
                         rng)
    timer.add("postprocess", time.perf_counter() - t0)
    return FitResult(
        draws=arrays, method=method, spec=problem.spec, observations=tuple(observations),
        timings=timer.total(), stat=_stat_label(problem), fit_statistic=stat, dof=problem.dof,
        log_evidence=log_evidence, log_evidence_err=log_evidence_err,
        elbo=None if elbo is None else np.asarray(elbo, dtype=np.float64),
        best_fit=best_fit, extra=dict(extra or {}), background=_bkg_text(problem),
        problem=problem, data=data,
    )


def systematic_resample(log_w: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Systematic resampling: indices of ``n`` equally weighted draws, in random order
    (systematic resampling returns them in the order of the weighted samples, which for
    nested sampling is the order of their likelihoods: split R-hat and ESS of the draws
    read that order as a chain that had not mixed)."""
    w = np.exp(log_w - np.max(log_w))
    w /= w.sum()
    positions = (rng.random() + np.arange(n)) / n
    return rng.permutation(np.minimum(np.searchsorted(np.cumsum(w), positions), w.size - 1))


def _stat_label(problem: Problem) -> str:
    """The statistic as XSPEC names it: C-stat with a profiled background is W-stat."""
    modes = {lay.background for lay in problem.layouts}
    if problem.stat == "cstat" and modes == {"wstat"}:
        return "wstat"
    return problem.stat


def _bkg_text(problem: Problem) -> str:
    if problem.bkg_spec is not None:
        return problem.bkg_spec.text
    modes = {lay.background for lay in problem.layouts}
    return ",".join(sorted(modes))
