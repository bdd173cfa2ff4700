"""Batch fitting: one compiled maximum-likelihood + Laplace fit over many spectra.

All spectra share one instrument set-up (same channels, energy grid and fold
shape, e.g. many fakeit spectra of one observation). Per spectrum, in one
compiled function:

1. ``screen`` prior draws are evaluated;
2. the first start is the best fit of the group's average spectrum (found the same
   way, from the screen), the others the spectrum's best screened draws;
   each start runs ``steps`` Levenberg-Marquardt-damped Newton iterations in the
   unconstrained sampling space (exact Hessian of the fit statistic; a step is
   kept only when it lowers the statistic, and the damping adapts), a fixed count,
   so that thousands of fits vectorise without waiting on one another;
3. the best start gives the best fit; its Hessian, mapped to parameter space,
   gives the Laplace (covariance) errors.

The folding operator is stored once when every spectrum has the same one (fakeit
spectra of one response): the folds of all spectra then become one matrix
product. Spectra are split over the JAX devices (one CPU device per core, see
:mod:`jxspec_nb._jax`).

>>> res = fit_batch(spec, fakes)                       # doctest: +SKIP
>>> res.best.shape, res.errors.shape                   # doctest: +SKIP
((1000, 5), (1000, 5))
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from .._jax import jax, jnp
from ..errors import FitError
from ._model_eval import counts_data, fold_data
from .compile import Problem, _background_mode, get_problem
from .methods.mle import x_to_u
from .priors import ModelSpec, model_with_priors

__all__ = ["BatchResult", "fit_batch"]


class BatchResult(NamedTuple):
    """Best fits of many spectra.

    Attributes:
        names: free parameter names (columns).
        best: (n_spectra, n_free) maximum-likelihood values.
        errors: (n_spectra, n_free) sqrt of the inverse-Hessian diagonal (NaN where
            the Hessian is singular, e.g. a parameter at a prior bound).
        statistic: (n_spectra,) fit statistic at the best fit (C-stat, W-stat...).
        seconds: wall time of the batch (after compilation when cached).
        compile_seconds: time spent compiling in this call (0 when cached).
    """

    names: tuple[str, ...]
    best: np.ndarray
    errors: np.ndarray
    statistic: np.ndarray
    seconds: float
    compile_seconds: float = 0.0

    @property
    def spectra_per_second(self) -> float:
        """Throughput of the batch (compilation excluded)."""
        return self.best.shape[0] / max(self.seconds, 1e-12)


def _solve_small(a: Any, b: Any) -> Any:
    """``a x = b`` for a small dense ``a`` by Gaussian elimination with partial pivoting,
    in plain array operations.

    Not ``jnp.linalg.solve``: vmapped over many spectra that becomes a batched LAPACK
    call, which spreads its batch over XLA's CPU thread pool and waits; with the
    spectra split over the CPU devices (``pmap``) every pool thread ended up waiting on
    work queued behind it, and the fit hung (4000 ULX-4 spectra on 2 cores). A
    singular ``a`` gives non-finite entries, as LAPACK's solve does.
    """
    n = a.shape[0]
    rows = jnp.arange(n)
    m = jnp.concatenate([a, b[:, None]], axis=1)

    def eliminate(k: Any, m: Any) -> Any:
        piv = jnp.argmax(jnp.where(rows >= k, jnp.abs(m[:, k]), -1.0))
        row_k, row_p = m[k], m[piv]
        m = m.at[piv].set(row_k).at[k].set(row_p)
        f = jnp.where(rows > k, m[:, k] / m[k, k], 0.0)
        return m - f[:, None] * m[k][None, :]

    m = jax.lax.fori_loop(0, n, eliminate, m)

    def substitute(i: Any, x: Any) -> Any:
        k = n - 1 - i
        return x.at[k].set((m[k, n] - jnp.dot(m[k, :n], x)) / m[k, k])

    return jax.lax.fori_loop(0, n, substitute, jnp.zeros(n, a.dtype))


def _newton(nll: Any, u0: Any, d: Any, steps: int) -> tuple[Any, Any, Any]:
    """``steps`` Levenberg-Marquardt-damped Newton iterations on ``nll(u, d)``.

    Returns ``(u, nll(u), hessian at u)`` of the best point visited.
    """
    vg = jax.value_and_grad(nll)
    hess = jax.hessian(nll)

    def at(u: Any) -> tuple[Any, Any, Any]:
        f, g = vg(u, d)
        h = hess(u, d)
        ok = jnp.isfinite(f) & jnp.all(jnp.isfinite(g)) & jnp.all(jnp.isfinite(h))
        return jnp.where(ok, f, jnp.inf), jnp.where(ok, g, 0.0), jnp.where(ok, h, 0.0)

    eye = jnp.eye(u0.shape[0], dtype=u0.dtype)

    def body(carry: Any, _: Any) -> Any:
        u, f, g, h, lam = carry
        scale = jnp.maximum(jnp.abs(jnp.diagonal(h)), 1e-8)
        step = -_solve_small(h + lam * jnp.diag(scale) + 1e-12 * eye, g)
        step = jnp.where(jnp.all(jnp.isfinite(step)), step, -g / scale)
        un = u + step
        fn, gn, hn = at(un)
        better = fn < f
        keep = lambda new, old: jnp.where(better, new, old)  # noqa: E731
        lam = jnp.clip(jnp.where(better, lam * 0.3, lam * 10.0), 1e-9, 1e12)
        return (keep(un, u), keep(fn, f), keep(gn, g), keep(hn, h), lam), None

    f0, g0, h0 = at(u0)
    (u, f, _, h, _), _ = jax.lax.scan(body, (u0, f0, g0, h0, jnp.asarray(1e-3, u0.dtype)),
                                      None, length=steps)
    return u, f, h


def _mean_data(data: Any, in_axes: dict[str, Any]) -> dict[str, Any]:
    """The average spectrum of a group (per-spectrum arrays averaged; ln(n!) redone)."""
    from jax.scipy.special import gammaln

    out = {k: (jnp.mean(v, axis=0) if in_axes[k] == 0 else v) for k, v in data.items()}
    if "lfact" in out and in_axes.get("lfact") == 0:
        out["lfact"] = gammaln(out["counts"] + 1.0)
    if "lfact_bkg" in out and in_axes.get("lfact_bkg") == 0:
        out["lfact_bkg"] = gammaln(out["background"] + 1.0)
    return out


def _build(problem: Problem, steps: int, n_starts: int, in_axes: dict[str, Any],
           n_dev: int) -> Any:
    def nll(u: Any, d: Any) -> Any:
        x, _ = problem.transform(u)
        v = -problem._loglik_values_total(x, [d])
        return jnp.where(jnp.isfinite(v), v, jnp.inf)

    def best_of_screen(u_screen: Any, d: Any, k: int) -> Any:
        vals = jax.vmap(nll, in_axes=(0, None))(u_screen, d)
        return u_screen[jnp.argsort(jnp.where(jnp.isfinite(vals), vals, jnp.inf))[:k]]

    def one(u_screen: Any, u_warm: Any, d: Any) -> Any:
        # starts: the group's average-spectrum fit (close to most spectra's optimum, so
        # Newton converges in a few steps) and this spectrum's best screened draws
        starts = jnp.concatenate([u_warm[None], best_of_screen(u_screen, d, n_starts - 1)])
        us, fs, hs = jax.vmap(lambda u: _newton(nll, u, d, steps))(starts)
        k = jnp.argmin(fs)
        u, h_u = us[k], hs[k]
        x, _ = problem.transform(u)
        # d x / d u (the transform acts parameter by parameter): H_x = H_u / (J J^T)
        jac = jax.jvp(lambda uu: problem.transform(uu)[0], (u,), (jnp.ones_like(u),))[1]
        h_x = h_u / jnp.outer(jac, jac)
        stat = problem._pointwise(u, [d])["statistic"]
        return x, h_x, stat

    def group(u_screen: Any, data: Any) -> Any:
        mean = _mean_data(data, in_axes)
        warm = best_of_screen(u_screen, mean, 4)
        us, fs, _ = jax.vmap(lambda u: _newton(nll, u, mean, 3 * steps))(warm)
        u_warm = us[jnp.argmin(fs)]
        return jax.vmap(one, in_axes=(None, None, in_axes))(u_screen, u_warm, data)

    if n_dev > 1:
        return jax.pmap(group, in_axes=(None, in_axes), devices=jax.local_devices()[:n_dev])
    return jax.jit(group)


def _check_same_setup(first: Any, obs: Any, k: int) -> None:
    name = getattr(obs, "name", None) or f"#{k}"
    for attr in ("counts", "e_lo", "e_hi"):
        a, b = np.shape(getattr(first, attr)), np.shape(getattr(obs, attr))
        if a != b:
            raise FitError(f"observation {name!r}: {attr} has shape {b}, the first has {a}; "
                           "fit_batch needs spectra of one set-up (same channels and grid)")
    if not (np.array_equal(first.e_lo, obs.e_lo) and np.array_equal(first.e_hi, obs.e_hi)):
        raise FitError(f"observation {name!r}: its energy grid differs from the first's; "
                       "fit_batch needs spectra of one set-up")
    if np.shape(first.fold) != np.shape(obs.fold):
        raise FitError(f"observation {name!r}: fold {np.shape(obs.fold)} differs from the "
                       f"first's {np.shape(first.fold)}")


def _same_fold(a: Any, b: Any) -> bool:
    if a is b:
        return True
    fa = a.toarray() if hasattr(a, "toarray") else np.asarray(a)
    fb = b.toarray() if hasattr(b, "toarray") else np.asarray(b)
    return bool(np.array_equal(fa, fb))


def fit_batch(spec: ModelSpec | str, observations: Sequence[Any], *, stat: str = "cstat",
              background: Any = "auto", screen: int = 64, starts: int = 2,
              steps: int = 12, seed: int = 0) -> BatchResult:
    """Maximum-likelihood fits with Laplace errors of many spectra in one compiled call.

    Args:
        spec: model with priors (the priors bound the search and give the starts).
        observations: spectra of one set-up (same channels, energy grid, fold shape).
        stat, background: as in :func:`~jxspec_nb.inference.fit`.
        screen: prior draws evaluated per spectrum (and for the group's average
            spectrum, whose fit is the first start of every spectrum).
        starts: starts polished per spectrum: the average spectrum's best fit, then
            the spectrum's own best ``starts - 1`` screened draws.
        steps: damped Newton iterations per start (3x that for the average spectrum).
        seed: random seed of the prior draws.

    Returns:
        A :class:`BatchResult`.
    """
    if not isinstance(spec, ModelSpec):
        spec = model_with_priors(spec)
    observations = list(observations)
    if not observations:
        raise FitError("no observation to fit")
    if starts < 2 or screen < starts or steps < 1:
        raise FitError(f"need 2 <= starts <= screen and steps >= 1 (got starts={starts}, "
                       f"screen={screen}, steps={steps})")
    first = observations[0]
    problem, _ = get_problem(spec, [first], stat=stat, background=background)
    if problem.dim != problem.n_free:
        raise FitError("fit_batch profiles the background (W-stat); background='bayesian' "
                       "has per-bin rates to sample: use fit(..., method='nuts') instead")
    mode = problem.layouts[0].background
    modes = set()
    for k, obs in enumerate(observations):
        _check_same_setup(first, obs, k)
        modes.add(_background_mode(obs, stat, background))
    if modes != {mode}:
        raise FitError(f"the spectra mix background treatments {sorted(modes)}: give all or "
                       "none of them a background spectrum")
    fold, _, _ = fold_data(first)
    shared = all(_same_fold(first.fold, o.fold) for o in observations[1:])
    per = [counts_data(o, mode, stat) for o in observations]
    if not shared:  # each spectrum its own response (same shape): stack them all
        folds = [fold_data(o)[0] for o in observations]
        for key in fold:
            if key not in ("e_lo", "e_hi"):
                for p, f in zip(per, folds, strict=True):
                    p[key] = f[key]
    n = len(observations)
    n_dev = max(1, min(jax.local_device_count(), n))
    padded = -(-n // n_dev) * n_dev
    stacked = {key: np.stack([p[key] for p in per] + [per[-1][key]] * (padded - n))
               for key in per[0]}
    data = {**{k: v for k, v in fold.items() if k not in stacked}, **stacked}
    if n_dev > 1:
        data = {k: v.reshape((n_dev, padded // n_dev) + v.shape[1:]) if k in stacked else v
                for k, v in data.items()}
    in_axes = {k: (0 if k in stacked else None) for k in data}
    key = ("batch", steps, starts, screen, n_dev, tuple(sorted(in_axes.items())))
    cached = key in problem._fns
    fn = problem.cached(key, lambda: _build(problem, steps, starts, in_axes, n_dev))
    rng = np.random.default_rng(seed)
    x0 = np.column_stack([p.sample(rng, screen) for p in problem.priors])
    u_screen = x_to_u(problem, x0)
    arrays = data
    compile_s = 0.0
    if not cached:  # compile first (timed apart), then run
        t0 = time.perf_counter()
        compiled = fn.lower(u_screen, arrays).compile()
        compile_s = time.perf_counter() - t0
        problem._fns[key] = fn = _Compiled(compiled)
    t0 = time.perf_counter()
    x, hess, stat_v = jax.device_get(fn(u_screen, arrays))
    seconds = time.perf_counter() - t0
    x, hess, stat_v = (np.asarray(a).reshape((padded,) + np.shape(a)[2 if n_dev > 1 else 1:])[:n]
                       for a in (x, hess, stat_v))
    errors = np.full(x.shape, np.nan)
    for i, h in enumerate(hess):
        if np.all(np.isfinite(h)):
            try:
                cov = np.linalg.inv(0.5 * (h + h.T))
            except np.linalg.LinAlgError:
                continue
            var = np.diag(cov)
            errors[i] = np.where(var > 0, np.sqrt(np.abs(var)), np.nan)
    return BatchResult(problem.names, x, errors, stat_v, seconds, compile_s)


class _Compiled:
    """A compiled batch function, called like the jitted / pmapped one."""

    def __init__(self, compiled: Any) -> None:
        self.compiled = compiled

    def __call__(self, u_screen: Any, data: Any) -> Any:
        return self.compiled(u_screen, data)

    def lower(self, *a: Any) -> Any:  # pragma: no cover - never lowered again
        raise RuntimeError("already compiled")
