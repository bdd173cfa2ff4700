"""Maximum likelihood with a global search, covariance and profile-likelihood errors.

1. ``screen`` points drawn from the prior are evaluated; the best ``starts`` of them
   are each minimised with scipy's L-BFGS-B in sampling space: no local minimum
   traps the fit as long as one start falls in the global basin (on ULX-4 a single
   Levenberg-Marquardt run from the defaults stops at kT on its lower limit).
2. The best is polished; the covariance is the inverse Hessian of
   ``-log L`` in parameter space (errors = sqrt of its diagonal).
3. Profile-likelihood intervals as XSPEC's ``error``: for each parameter the
   values where the statistic, minimised over the others, rises by ``delta``
   (1.0 = 1 sigma for one parameter, 2.706 = 90 %): secant steps on the rise,
   each a constrained L-BFGS-B fit started at the Gaussian conditional mean;
   ``extra["interval_at_bound"]`` flags ends stopped by a prior bound.
4. ``samples`` draws from the Gaussian (Laplace) approximation, kept inside the
   prior support, make the posterior group of the result.

The statistic and its gradient come from one compiled program that returns them as
one flat array, called from Python for each step (~0.15 ms a call on ULX-4), and the
Hessian from a second; both are kept in the exported-program cache, so a later
process does not trace the model. The search ran before as a vmapped JAX BFGS over
all starts: its programs took ~5 s to compile on 2 cores and, every start waiting for
the slowest line search, ~7 s to run warm on ULX-4. A whole ULX-4 fit with profile
errors (16 starts, 10 interval ends, ~2400 evaluations) now takes 3.5 s cold and
1.2 s warm, with the same optimum and intervals to 1e-8.

Options: ``screen`` (prior draws evaluated, 512), ``starts`` (the best of them
minimised, 16), ``steps`` (L-BFGS-B iterations per fit, 200), ``errors``
(``"profile"`` or ``"covariance"``), ``delta`` (1.0).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..._jax import jax, jnp
from ..compile import Problem
from ._common import Timer, make_result, pointwise_batched, stored_program, value_and_grad_fn

__all__ = ["run", "x_to_u"]


def x_to_u(problem: Problem, x: np.ndarray) -> np.ndarray:
    """Constrained values (rows) -> unconstrained sampling space."""
    x = np.atleast_2d(x)
    return np.array([[p.inverse(float(v)) for p, v in zip(problem.priors, row, strict=True)]
                     for row in x])


def _programs(problem: Problem, data: Any) -> dict[str, Any]:
    """The statistic's flat value-and-gradient and its Hessian, compiled for ``data``'s
    shapes (read back from the exported-program cache when an earlier process stored
    them: no trace of the model then; see :func:`._common.stored_program`)."""
    def nll_u(u: Any, d: Any) -> Any:
        x, _ = problem.transform(u)
        return -problem._loglik_values_total(x, d)

    def nll_vg(u: Any, d: Any) -> Any:
        """``[-log L, its gradient]`` in sampling space, one flat array (1e300 and a
        zero gradient where the statistic is not finite)."""
        v, g = jax.value_and_grad(nll_u)(u, d)
        ok = jnp.isfinite(v) & jnp.all(jnp.isfinite(g))
        return jnp.concatenate([jnp.where(ok, v, 1e300)[None], jnp.where(ok, g, 0.0)])

    def hessian(x: Any, d: Any) -> Any:
        return jax.hessian(lambda xx: -problem._loglik_values_total(xx, d))(x)

    vec = (jax.ShapeDtypeStruct((problem.n_free,), jnp.float64),)
    return {"nll_vg": stored_program(problem, data, "mle_nll_vg", nll_vg, vec, jax.jit(nll_vg)),
            "hessian": stored_program(problem, data, "mle_hessian", hessian, vec,
                                      jax.jit(hessian))}


def _minimise(vg: Any, data: Any, u0: np.ndarray, steps: int, fixed: int | None = None,
              ftol: float = 1e-13, gtol: float = 1e-7) -> tuple[np.ndarray, float]:
    """L-BFGS-B from ``u0`` through ``vg(u, data) -> [value, *gradient]`` (a flat
    array) of the function minimised; ``fixed``: the index of a component held at its
    value in ``u0`` (a profile-likelihood fit)."""
    from scipy.optimize import minimize

    u0 = np.asarray(u0, dtype=np.float64)
    free = np.ones(u0.size, dtype=bool)
    if fixed is not None:
        free[fixed] = False

    def fun(v: np.ndarray) -> tuple[float, np.ndarray]:
        u = u0.copy()
        u[free] = v
        out = np.asarray(vg(u, data), dtype=np.float64)
        return float(out[0]), out[1:][free]

    res = minimize(fun, u0[free], jac=True, method="L-BFGS-B",
                   options={"maxiter": steps, "ftol": ftol, "gtol": gtol})
    u = u0.copy()
    u[free] = res.x
    return u, float(res.fun)


def _intervals(problem: Problem, fns: dict[str, Any], data: Any, x_best: np.ndarray,
               nll_best: float, cov: np.ndarray, delta: float, steps: int,
               iterations: int = 4) -> tuple[dict[str, list[float]], dict[str, list[bool]]]:
    """Profile-likelihood intervals: secant search on the rise of the statistic,
    each constrained fit started at the conditional mean of the Gaussian approximation."""
    k = x_best.size
    lo = np.array([p.support[0] for p in problem.priors])
    hi = np.array([p.support[1] for p in problem.priors])
    sd = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    sd = np.where(np.isfinite(sd) & (sd > 0), sd, 0.1 * (np.abs(x_best) + 1e-3))
    idx = np.repeat(np.arange(k), 2)
    sign = np.tile([-1.0, 1.0], k)
    offset = sign * sd[idx] * math.sqrt(delta)  # quadratic prediction
    at_bound = np.zeros(2 * k, dtype=bool)
    for _ in range(iterations):
        target = x_best[idx] + offset
        span = hi[idx] - lo[idx]
        eps = 1e-9 * np.where(np.isfinite(span), span, 1.0)
        at_bound = (target <= lo[idx] + eps) | (target >= hi[idx] - eps)
        target = np.clip(target, lo[idx] + eps, hi[idx] - eps)
        offset = target - x_best[idx]
        pts = np.tile(x_best, (2 * k, 1))
        for r in range(2 * k):
            i = idx[r]
            if np.all(np.isfinite(cov)) and cov[i, i] > 0:
                pts[r] += cov[:, i] / cov[i, i] * offset[r]
            pts[r, i] = target[r]
        pts = np.clip(pts, lo + 1e-9 * (np.abs(lo) + 1), hi - 1e-9 * (np.abs(hi) + 1))
        u0 = x_to_u(problem, pts)
        prof = np.array([_minimise(fns["nll_vg"], data, u0[r], steps, fixed=int(idx[r]))[1]
                         for r in range(2 * k)])
        rise = 2.0 * (prof - nll_best)
        rise = np.where(np.isfinite(rise) & (rise > 1e-12), rise, 1e-12)
        new = offset * np.sqrt(delta / rise)  # exact for a quadratic profile
        done = np.abs(rise - delta) < 0.01 * delta
        offset = np.where(done | (at_bound & (rise < delta)), offset, new)
    intervals, bounds = {}, {}
    for i, name in enumerate(problem.names):
        intervals[name] = [float(x_best[i] + offset[2 * i]), float(x_best[i] + offset[2 * i + 1])]
        bounds[name] = [bool(at_bound[2 * i]), bool(at_bound[2 * i + 1])]
    return intervals, bounds


def run(problem: Problem, data: Any, observations: Sequence[Any], *, chains: int = 4,
        warmup: int = 1000, samples: int = 1000, steps: int | None = None, seed: int = 0,
        progress: Any, timer: Timer, starts: int = 16, screen: int = 512,
        errors: str = "profile", delta: float = 1.0) -> Any:
    """Global maximum likelihood; see the module docstring."""
    import time

    steps = int(steps or 200)
    fns = _programs(problem, data)
    vg = fns["nll_vg"]
    rng = np.random.default_rng(seed)
    progress.start(method="mle", total=3, chains=1, labels=["mle"])
    t0 = time.perf_counter()
    # 1. screen many prior draws, keep the best as starts, minimise each
    x0 = np.column_stack([p.sample(rng, max(screen, starts)) for p in problem.priors])
    u0 = x_to_u(problem, x0)
    vals = np.array([np.asarray(vg(u, data))[0] for u in u0])
    order = np.argsort(np.where(vals < 1e300, vals, np.inf), kind="stable")
    fits = [_minimise(vg, data, u, steps) for u in u0[order[:starts]]]
    nlls = np.array([f[1] for f in fits])
    best = int(np.argmin(nlls))
    u_best, nll_best = _minimise(vg, data, fits[best][0], steps)  # polish
    if not nll_best <= nlls[best]:
        u_best, nll_best = fits[best][0], float(nlls[best])
    n_same = int(np.sum(2.0 * (nlls - nll_best) < 0.1))
    progress.update(chain=None, done=1, info={"starts_at_minimum": n_same})
    x_best = np.asarray(problem.transform(jnp.asarray(u_best))[0])
    hess = np.asarray(fns["hessian"](jnp.asarray(x_best), data))
    cov = np.linalg.pinv(hess) if np.all(np.isfinite(hess)) else np.full_like(hess, np.nan)
    sd = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    progress.update(chain=None, done=2, info={})
    intervals: dict[str, list[float]] = {}
    at_bound: dict[str, list[bool]] = {}
    if errors == "profile":
        intervals, at_bound = _intervals(problem, fns, data, x_best, nll_best, cov, delta,
                                         steps)
    progress.update(chain=None, done=3, info={})
    progress.finish()
    timer.add("optimisation", time.perf_counter() - t0)
    draws = _laplace_draws(problem, x_best, cov, rng, samples)
    u = x_to_u(problem, draws)[None, :, :]
    if problem.dim > problem.n_free:  # Bayesian background rates: at their data
        nuis = problem.u_from_values(x_best, data)[problem.n_free:]
        u = np.concatenate([u, np.broadcast_to(nuis, u.shape[:2] + nuis.shape)], axis=2)
        u_best = np.concatenate([u_best, nuis])
    extra = {
        "covariance": cov, "errors": dict(zip(problem.names, sd.tolist(), strict=True)),
        "intervals": intervals, "interval_at_bound": at_bound, "delta_stat": float(delta),
        "starts": int(starts), "starts_at_minimum": n_same,
    }
    return make_result(problem, data, observations, u, method="mle", timer=timer, seed=seed,
                       best_u=u_best, extra=extra)


def _laplace_draws(problem: Problem, x: np.ndarray, cov: np.ndarray,
                   rng: np.random.Generator, n: int) -> np.ndarray:
    lo = np.array([p.support[0] for p in problem.priors])
    hi = np.array([p.support[1] for p in problem.priors])
    if not np.all(np.isfinite(cov)):
        return np.tile(x, (n, 1))
    w, v = np.linalg.eigh(0.5 * (cov + cov.T))
    root = v * np.sqrt(np.clip(w, 0.0, None))
    out = np.empty((0, x.size))
    for _ in range(20):
        d = x + rng.standard_normal((2 * n, x.size)) @ root.T
        d = d[np.all((d > lo) & (d < hi), axis=1)]
        out = np.concatenate([out, d])
        if len(out) >= n:
            return out[:n]
    eps = 1e-9 * (np.abs(x) + 1.0)
    extra = np.clip(x + rng.standard_normal((n - len(out), x.size)) @ root.T, lo + eps, hi - eps)
    return np.concatenate([out, extra])


def _finite_difference_hessian(vg: Any, u: np.ndarray, data: Any,
                               h: float = 1e-3) -> np.ndarray:
    """Hessian of ``-log density`` at ``u`` by central differences of its gradient."""
    n = u.size
    hess = np.empty((n, n))
    for i in range(n):
        e = np.zeros(n)
        e[i] = h
        gp = np.asarray(vg(u + e, data), dtype=np.float64)[1:]
        gm = np.asarray(vg(u - e, data), dtype=np.float64)[1:]
        hess[i] = -(gp - gm) / (2.0 * h)
    return 0.5 * (hess + hess.T)


def posterior_mode(problem: Problem, data: Any, seed: int = 0, *, screen: int = 256,
                   starts: int = 4, steps: int = 200,
                   start: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mode of the posterior in sampling space and the inverse Hessian there.

    Used to start NUTS, VI and AIES near the bulk of the posterior. ``screen`` prior draws
    are evaluated (or, given ``start``, a point in sampling space, only that one: a
    local search from the user's starting values), the best ``starts`` polished with
    scipy's L-BFGS-B and the Hessian taken by central differences of the gradient.
    The screen goes through the batched pointwise program that every fit's results
    use anyway (:func:`pointwise_batched`: one call for 256 draws), the search through
    one compiled value-and-gradient (:func:`value_and_grad_fn`); nothing else is
    compiled (a jitted, vmapped BFGS and ``jax.hessian`` took ~6 s to compile on ULX-4
    for a start point; this takes ~0.1 s once the value-and-gradient exists).
    """
    if start is not None:
        u0 = np.atleast_2d(np.asarray(start, dtype=np.float64))
    else:
        rng = np.random.default_rng(seed + 101)
        x0 = np.column_stack([p.sample(rng, screen) for p in problem.priors])
        u0 = x_to_u(problem, x0)
        if problem.dim > problem.n_free:
            nuis = problem.u_from_values(x0[0], data)[problem.n_free:]
            u0 = np.concatenate([u0, np.broadcast_to(nuis, (screen, nuis.size))], axis=1)
    vg = value_and_grad_fn(problem, data)

    def potential(u: np.ndarray, d: Any) -> np.ndarray:
        """``[-log density, its gradient]``; 1e300 and a zero gradient where not finite."""
        out = np.asarray(vg(u, d), dtype=np.float64)
        if not np.isfinite(out[0]):
            return np.concatenate([[1e300], np.zeros_like(u)])
        return -out

    if len(u0) > 1:  # screen the draws in batches: the program the results use anyway
        potential(u0[0], data)  # cold process: compiles while the pointwise program does
        pw = pointwise_batched(problem, u0, data)
        vals = -(pw["loglik"].sum(axis=1) + pw["log_prior"])
        vals = np.where(np.isfinite(vals), vals, np.inf)
    else:
        vals = potential(u0[0], data)[:1]
    best, best_f = u0[int(np.argmin(vals))], float(np.min(vals))
    for k in np.argsort(vals)[:starts]:
        u_k, f_k = _minimise(potential, data, u0[k], steps, ftol=1e-12, gtol=1e-6)
        if np.isfinite(f_k) and f_k < best_f:
            best, best_f = u_k, f_k
    hess = _finite_difference_hessian(vg, best, data)
    try:
        w, v = np.linalg.eigh(hess)
        cov = (v / np.clip(w, 1e-8, None)) @ v.T
    except np.linalg.LinAlgError:
        cov = np.eye(best.size) * 0.01
    return best, cov
