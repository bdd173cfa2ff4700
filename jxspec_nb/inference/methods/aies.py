"""AIES: numpyro's affine-invariant ensemble sampler, walkers vectorised, in chunks.

Options: ``moves`` (``{"stretch": 0.5, "de": 0.5}`` by default: a mixture of the
stretch move (Goodman & Weare 2010) and differential evolution), ``chunk``
(iterations per compiled call, 250), ``thin`` (1), ``init`` (``"laplace"``:
walkers in a ball around the posterior mode (BFGS), the usual ensemble practice;
``"prior"``: spread over the prior). ``chains`` is the number of
walkers (at least ``max(2 * dim + 2, 32)``, made even); ``warmup`` iterations
are discarded.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..._jax import jax, jnp
from ...errors import FitError
from ..compile import Problem
from ._common import Timer, make_result, prior_draws_u, run_chunks
from .mle import posterior_mode

__all__ = ["run"]


def _build(problem: Problem, walkers: int, chunk: int, moves: dict[str, float],
           warmup: int) -> dict[str, Any]:
    from numpyro.infer import AIES

    table = {"stretch": AIES.StretchMove, "de": AIES.DEMove}
    unknown = set(moves) - set(table)
    if unknown:
        raise FitError(f"unknown AIES move(s) {sorted(unknown)}; use 'stretch' and/or 'de'")
    # the kernel is built once, outside jit (its constructor checks the weights in
    # Python); the data reach its potential through ``current``, set while tracing
    current: list[Any] = [None]
    kernel = AIES(potential_fn=lambda u: -problem._log_density(u, current[0]),
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
