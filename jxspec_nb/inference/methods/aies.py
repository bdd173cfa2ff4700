"""AIES: numpyro's affine-invariant ensemble sampler, walkers vectorised, in chunks.

Options: ``moves`` (``{"stretch": 0.5, "de": 0.5}`` by default: a mixture of the
stretch move (Goodman & Weare 2010) and differential evolution), ``chunk``
(iterations per compiled call, 250), ``thin`` (1), ``init`` (``"laplace"``:
walkers in a ball around the posterior mode (L-BFGS-B), the usual ensemble practice;
``"prior"``: spread over the prior). ``chains`` is the number of
walkers (at least ``max(2 * dim + 2, 32)``, made even); ``warmup`` iterations
are discarded.

The kernel is numpyro's :class:`~numpyro.infer.AIES` (its stretch and
differential-evolution moves, its random keys and acceptance rule) with one change:
each walker's log density is kept in the sampler state (``CachingAIES`` below).
numpyro evaluates the current half of the ensemble again at every half-step, two
batched log densities where one is new; keeping them halves the work (ULX-4, 32
walkers x 2000 iterations: 4.3 s -> 2.9 s including the step's compilation, 2026-12-03),
and the draws are the same as numpyro's for the same keys (tests/test_methods.py).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from ..._jax import jax, jnp
from ...errors import FitError
from ..compile import Problem
from ._common import Timer, make_result, prior_draws_u, run_chunks, warm_pointwise
from .mle import posterior_mode

__all__ = ["run"]


class _CachedState(NamedTuple):
    """numpyro's AIESState plus each walker's log density (NaN until first computed)."""

    i: Any
    accept_prob: Any
    mean_accept_prob: Any
    rng_key: Any
    log_density: Any


def _caching_aies() -> type:
    """Build the class on first use (numpyro is imported lazily)."""
    from numpyro.infer import AIES
    from numpyro.infer.ensemble import EnsembleSamplerState
    from numpyro.infer.ensemble_util import batch_ravel_pytree

    class CachingAIES(AIES):
        """numpyro's AIES with the walkers' log densities carried in the state.

        Same moves, same key splits and same acceptance rule as
        ``numpyro.infer.AIES.sample``; the log density of the current walkers is taken
        from the state instead of being evaluated again, so each half-step evaluates
        only the proposals. The first step evaluates the whole ensemble once.
        """

        def init_inner_state(self, rng_key: Any) -> Any:
            base = super().init_inner_state(rng_key)
            nan = jnp.full((self._num_chains,), jnp.nan)
            return _CachedState(*base, log_density=nan)

        def sample(self, state: Any, model_args: Any, model_kwargs: Any) -> Any:
            z, inner, rng_key = state
            rng_key, _ = jax.random.split(rng_key)
            z_flat, unravel_fn = batch_ravel_pytree(z)
            ld = jax.lax.cond(jnp.isnan(inner.log_density).any(),
                              lambda zf: self._batch_log_density(zf).astype(z_flat.dtype),
                              lambda zf: inner.log_density.astype(z_flat.dtype), z_flat)
            if self._randomize_split:
                perm = jax.random.permutation(rng_key, z_flat.shape[0])
                z_flat, ld = z_flat[perm], ld[perm]
            split = self._num_chains // 2

            def body(i: Any, carry: Any) -> Any:
                z_flat, ld, inner = carry
                halves = lambda x: jax.lax.cond(  # noqa: E731
                    i == 0, lambda y: (y[:split], y[split:]),
                    lambda y: (y[split:], y[:split]), x)
                active, inactive = halves(z_flat)
                ld_active, _ = halves(ld)
                new, new_ld, inner = self._update(active, inactive, ld_active, inner)
                put = lambda x, v: jax.lax.cond(  # noqa: E731
                    i == 0, lambda y: y.at[:split].set(v), lambda y: y.at[split:].set(v), x)
                return put(z_flat, new), put(ld, new_ld), inner

            z_flat, ld, inner = jax.lax.fori_loop(0, 2, body, (z_flat, ld, inner))
            if self._randomize_split:  # back to the walkers' own order
                inv = jnp.argsort(perm)
                z_flat, ld = z_flat[inv], ld[inv]
            return EnsembleSamplerState(unravel_fn(z_flat), inner._replace(log_density=ld),
                                        rng_key)

        def _update(self, active: Any, inactive: Any, ld_active: Any, inner: Any) -> Any:
            import numpyro.distributions as dist

            i, _, mean_accept_prob, rng_key, ld_all = inner
            rng_key, move_key, proposal_key, accept_key = jax.random.split(rng_key, 4)
            move_i = jax.random.choice(move_key, len(self._moves), p=self._weights)
            proposal, factors = jax.lax.switch(move_i, self._moves, proposal_key, active,
                                               inactive)
            ld_prop = self._batch_log_density(proposal).astype(ld_active.dtype)
            log_accept_prob = factors + ld_prop - ld_active
            accepted = dist.Uniform().sample(accept_key, (active.shape[0],)) < jnp.exp(
                log_accept_prob)
            new = jnp.where(accepted[:, None], proposal, active)
            new_ld = jnp.where(accepted, ld_prop, ld_active)
            accept_prob = jnp.count_nonzero(accepted) / accepted.shape[0]
            itr = i + 0.5
            n = jnp.where(i < self._num_warmup, itr, itr - self._num_warmup)
            mean_accept_prob = mean_accept_prob + (accept_prob - mean_accept_prob) / n
            return new, new_ld, _CachedState(itr, accept_prob, mean_accept_prob, rng_key,
                                             ld_all)

    return CachingAIES


def _build(problem: Problem, walkers: int, chunk: int, moves: dict[str, float],
           warmup: int) -> dict[str, Any]:
    from numpyro.infer import AIES

    caching = _caching_aies()
    table = {"stretch": AIES.StretchMove, "de": AIES.DEMove}
    unknown = set(moves) - set(table)
    if unknown:
        raise FitError(f"unknown AIES move(s) {sorted(unknown)}; use 'stretch' and/or 'de'")
    # the kernel is built once, outside jit (its constructor checks the weights in
    # Python); the data reach its potential through ``current``, set while tracing
    current: list[Any] = [None]
    kernel = caching(potential_fn=lambda u: -problem._log_density(u, current[0]),
                     moves={table[k](): w for k, w in moves.items()})

    def init(u0: Any, seed: int, data: Any) -> Any:
        """Eager: the moves precompute index tables that must not be tracers."""
        current[0] = data
        # raw threefry keys from numpy: no eager PRNG program to compile
        keys = np.random.default_rng(seed).integers(0, 2**32, (walkers, 2), dtype=np.uint32)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            state = kernel.init(jnp.asarray(keys), warmup, init_params=u0)
        # scalars the eager init leaves weakly typed would make the first compiled step
        # compile a second time (its output state is strongly typed)
        return jax.tree.map(lambda a: jnp.asarray(np.asarray(a)) if getattr(a, "weak_type", False)
                            else a, state)

    @jax.jit
    def step(state: Any, data: Any) -> Any:
        current[0] = data

        def body(s: Any, _: Any) -> Any:
            s = kernel.sample(s, (), {})
            return s, (s.z, s.inner_state.accept_prob)
        return jax.lax.scan(body, state, None, length=chunk)

    return {"init": init, "step": step}


def run(problem: Problem, data: Any, observations: Sequence[Any], *, chains: int = 4,
        warmup: int = 1000, samples: int = 1000, steps: int | None = None, seed: int = 0,
        progress: Any, timer: Timer, moves: dict[str, float] | None = None, chunk: int = 250,
        thin: int = 1, init: str = "laplace") -> Any:
    """Sample with AIES; see the module docstring."""
    moves = dict(moves or {"stretch": 0.5, "de": 0.5})
    walkers = max(int(chains), 2 * problem.dim + 2, 32)
    walkers += walkers % 2
    total = warmup + samples * thin
    chunk = max(1, min(chunk, total))
    key = ("aies", walkers, chunk, tuple(sorted(moves.items())), warmup)
    fns = problem.cached(key, lambda: _build(problem, walkers, chunk, moves, warmup))
    # the pointwise pass over the draws compiles in a worker thread meanwhile
    warm_pointwise(problem, data, walkers * samples)
    rng = np.random.default_rng(seed)
    if init == "prior":
        u0 = prior_draws_u(problem, data, rng, walkers, spread=2.0)
    else:  # a ball around the posterior mode, shaped by the Laplace covariance
        with timer("laplace"):
            mode, cov = posterior_mode(problem, data, seed)
        u0 = rng.multivariate_normal(mode, 0.25 * cov, size=walkers)
    with timer("compile"):
        state = fns["init"](jnp.asarray(u0), seed, data)
        jax.block_until_ready(state)
    n_chunks = -(-total // chunk)
    progress.start(method="aies", total=n_chunks * chunk, chains=walkers, labels=["ensemble"])

    def on_chunk(k: int, out: Any) -> None:
        progress.update(chain=None, done=(k + 1) * chunk,
                        info={"accept_prob": float(np.mean(np.asarray(out[1])))})

    t0 = time.perf_counter()
    state, outs, interrupted = run_chunks(lambda s: fns["step"](s, data), state, n_chunks,
                                          on_chunk, progress, "aies")
    timer.add("sampling", time.perf_counter() - t0)
    if not outs:
        raise FitError("AIES was interrupted before the first chunk finished")
    z = np.concatenate([np.asarray(o[0]) for o in outs])  # (iterations, walkers, dim)
    done = z.shape[0]
    start = warmup if done > warmup else 0
    z = z[start:min(done, total):thin]
    u = np.swapaxes(z, 0, 1)  # walkers as chains
    acc = np.concatenate([np.asarray(o[1]) for o in outs])[start:min(done, total):thin]
    stats = {"acceptance_rate": np.broadcast_to(acc[:, None], z.shape[:2]).T.reshape(-1)}
    return make_result(problem, data, observations, u, method="aies", timer=timer, seed=seed,
                       sample_stats=stats, extra={"interrupted": bool(interrupted),
                                                  "walkers": walkers})
