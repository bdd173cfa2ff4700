"""A compact NUTS transition with one call site of the potential.

The No-U-Turn sampler of Hoffman & Gelman (2014) in the form Stan and numpyro use:
multinomial sampling of the trajectory (Betancourt 2017: uniform progressive
sampling inside a subtree, biased progressive sampling when a subtree joins the
trajectory), the generalised U-turn criterion on momentum sums, a tree built by
doubling up to ``max_tree_depth``, and, during warm-up, Stan's windowed adaptation:
dual averaging of the step size (Hoffman & Gelman's gamma = 0.05, t0 = 10,
kappa = 0.75), a dense (or diagonal) inverse mass matrix from Welford estimates
over windows of 25, 50, 100 ... iterations after an initial buffer of 75 and
before a final one of 50, regularised towards 1e-3 times the identity, and a new
step-size search (one leapfrog step, halved or doubled until the acceptance
crosses 0.8) at the start and after each window.

What differs from numpyro's kernel is the shape of the program. Each iteration
is one ``while_loop`` whose body makes exactly one call of the potential's value
and gradient, and a small state machine decides what that call is for: the
gradient at a new starting point (mode 0), a trial of the step-size search
(mode 1), or the next leapfrog step of the tree (mode 2). The subtrees are built
leaf by leaf (the iterative scheme: the momentum sums a U-turn check will need are
kept in ``max_tree_depth`` checkpoints, indexed by the trailing bits of the leaf's
number). So the potential is compiled once per program, there is no separate
program for the initial state (the host builds it: :func:`initial_state`), and the
bookkeeping of a step is a handful of fused operations on ``dim``-sized arrays.

A chain may spend its first warm-up iteration finding the mode instead (``need_mode``,
modes 3 and 4 of the same loop): Newton's method from its starting point, the Hessian
by forward differences of the gradient (``dim`` + 1 evaluations), steps damped
(Levenberg) on the Hessian's absolute eigenvalues and at most 3 long, until the
quadratic model promises less than 1e-4 or after 30 steps. The inverse Hessian at the
end, its variances capped at 4, becomes the first inverse mass matrix, and the chain
restarts from a draw of N(mode, (1.5 sd)^2). Without it Stan's first window of 75
iterations runs on the identity: on ULX-4 those iterations took 40-300 leapfrog steps
each, a quarter to half of the sampling time.
On ULX-4 this program compiles in 0.9 s against 0.53 + 0.89 s for numpyro's init
and sample programs (one thread; ``benchmarks/RESULTS.md``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from ..._jax import jax, jnp

__all__ = ["State", "initial_state", "make_iteration", "adaptation_schedule",
           "threefry2x32"]

_DIVERGENCE = 1000.0  # energy error that ends a trajectory as divergent
_LOG_08 = float(np.log(0.8))  # the step-size search's acceptance threshold
_MAX_SEARCH = 50  # trials of the step-size search
_GAMMA, _T0, _KAPPA = 0.05, 10.0, 0.75  # dual averaging
# the mode search of a chain's first iteration (``need_mode``)
_FD_STEP = 1e-5  # forward-difference step of the Hessian's columns
_MAX_NEWTON = 30  # Newton steps at most
_MAX_DAMPING = 1e6  # Levenberg damping (relative to the largest curvature) that gives up
_NEWTON_TOL = 1e-4  # stop when the quadratic model promises less than this decrease
_MAX_VAR = 4.0  # largest variance of the first mass matrix (flat or concave directions)
_START_SPREAD = 1.5  # the chain starts from N(mode, (1.5 sd)^2): overdispersed, for R-hat


class State(NamedTuple):
    """One chain between iterations (every field an array: exportable, pmap-able)."""

    z: Any  # position, (dim,)
    pe: Any  # potential energy at z
    grad: Any  # its gradient
    key: Any  # PRNG key (2,) uint32
    it: Any  # iterations done (int32)
    log_eps: Any  # log step size in use
    mu: Any  # dual averaging: shrinkage target
    log_eps_bar: Any  # dual averaging: averaged log step size
    h_bar: Any  # dual averaging: averaged acceptance deficit
    da_t: Any  # dual averaging: iterations since its restart
    imm: Any  # inverse mass matrix, (dim, dim) or (dim,)
    chol: Any  # its Cholesky factor (dense) or square root (diagonal)
    w_n: Any  # Welford: count, mean, sum of squared deviations
    w_mean: Any
    w_m2: Any
    need_grad: Any  # bool: pe and grad not yet computed at z
    need_eps: Any  # bool: search a step size at the next iteration
    need_mode: Any  # bool: the next iteration looks for the posterior mode (see above)


def adaptation_schedule(num_warmup: int) -> tuple[np.ndarray, np.ndarray]:
    """Stan's windows: (collect[i], window_end[i]) for warm-up iteration i.

    75 iterations of step size only, windows of 25, 50, 100 ... (the last one
    stretched to the final buffer), 50 iterations of step size only at the end; for
    short warm-ups the buffers are 15 % and 10 % of it. Fewer than 20 iterations
    adapt the step size only.
    """
    collect = np.zeros(max(num_warmup, 1), dtype=bool)
    end = np.zeros(max(num_warmup, 1), dtype=bool)
    if num_warmup < 20:
        return collect, end
    init, term, base = 75, 50, 25
    if init + term + base > num_warmup:
        init, term = int(0.15 * num_warmup), int(0.1 * num_warmup)
        base = num_warmup - init - term
    last = num_warmup - term  # first iteration of the final buffer
    start, size = init, base
    while start < last:
        stop = start + size
        if stop + 2 * size > last:  # the next window would not fit: stretch this one
            stop = last
        collect[start:stop] = True
        end[stop - 1] = True
        start, size = stop, 2 * size
    return collect, end


_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))


def threefry2x32(k0: Any, k1: Any, x0: Any, x1: Any) -> tuple[Any, Any]:
    """Threefry-2x32 with 20 rounds (Salmon et al. 2011), the block cipher behind
    ``jax.random``, written out as plain integer operations: word for word what
    ``jax.random`` computes for the same key and counters (tested), but XLA fuses
    it into the surrounding loop body, where ``jax.random``'s implementation is a
    nested loop of its own per call site (the transition's six call sites were
    ~0.3 s of a cold ULX-4 fit's trace and compile)."""
    u32 = jnp.uint32
    k0, k1, x0, x1 = (jnp.asarray(a, u32) for a in (k0, k1, x0, x1))
    ks = (k0, k1, k0 ^ k1 ^ u32(0x1BD11BDA))
    x0, x1 = x0 + ks[0], x1 + ks[1]
    for i in range(5):
        for r in _ROTATIONS[i % 2]:
            x0 = x0 + x1
            x1 = ((x1 << u32(r)) | (x1 >> u32(32 - r))) ^ x0
        x0 = x0 + ks[(i + 1) % 3]
        x1 = x1 + ks[(i + 2) % 3] + u32(i + 1)
    return x0, x1


def _uniform(hi: Any, lo: Any) -> Any:
    """Uniform float64 in (0, 1) from two random words (53 bits, never 0 or 1)."""
    k = (hi >> 5).astype(jnp.float64) * 2.0**26 + (lo >> 6).astype(jnp.float64)
    return (k + 0.5) * 2.0**-53


def _normal(hi: Any, lo: Any) -> Any:
    return np.sqrt(2.0) * jax.lax.erf_inv(2.0 * _uniform(hi, lo) - 1.0)


def _eigh(h: Any) -> tuple[Any, Any]:
    """Eigenvalues and vectors of a finite-difference Hessian (symmetrised)."""
    w, v = jnp.linalg.eigh(0.5 * (h + h.T))
    return w, v


def _tz(n: Any, cap: int) -> Any:
    """Trailing zero bits of n >= 0 (``cap`` for 0)."""
    low = n & (-n)
    return jnp.where(n == 0, cap, jax.lax.population_count(low - 1))


class _Metric:
    """Kinetic energy of a dense or diagonal inverse mass matrix."""

    def __init__(self, dense: bool) -> None:
        self.dense = dense

    def velocity(self, imm: Any, p: Any) -> Any:
        return imm @ p if self.dense else imm * p

    def momentum(self, chol: Any, xi: Any) -> Any:  # p ~ N(0, imm^-1)
        if self.dense:
            return jax.scipy.linalg.solve_triangular(chol, xi, lower=True, trans="T")
        return xi / chol

    def factor(self, imm: Any) -> Any:
        return jnp.linalg.cholesky(imm) if self.dense else jnp.sqrt(imm)


def initial_state(z0: np.ndarray, imm0: np.ndarray, seeds: np.ndarray,
                  find_mode: bool = False) -> State:
    """States of ``len(z0)`` chains at ``z0`` (chains, dim) with first inverse mass
    matrices ``imm0`` (chains, dim, dim) or (chains, dim), built on the host: the
    first iteration computes the potential there and searches a step size. With
    ``find_mode``, the first iteration instead runs Newton's method from ``z0`` to the
    potential's minimum and replaces ``imm0`` and ``z0`` (see the module docstring)."""
    n, d = z0.shape
    dense = imm0.ndim == 3
    chol = np.linalg.cholesky(imm0) if dense else np.sqrt(imm0)
    f = np.float64
    zeros = np.zeros(n, dtype=f)
    return State(
        z=np.asarray(z0, dtype=f), pe=zeros.copy(), grad=np.zeros((n, d), dtype=f),
        key=np.asarray(seeds, dtype=np.uint32), it=np.zeros(n, dtype=np.int32),
        log_eps=zeros.copy(), mu=np.full(n, np.log(10.0)), log_eps_bar=zeros.copy(),
        h_bar=zeros.copy(), da_t=zeros.copy(), imm=np.asarray(imm0, dtype=f), chol=chol,
        w_n=zeros.copy(), w_mean=np.zeros((n, d), dtype=f), w_m2=np.zeros_like(imm0, dtype=f),
        need_grad=np.ones(n, dtype=bool), need_eps=np.ones(n, dtype=bool),
        need_mode=np.full(n, bool(find_mode)))


def make_iteration(potential: Callable[[Any, Any], Any], num_warmup: int, dense: bool,
                   target: float, max_tree_depth: int) -> Callable[[State, Any], Any]:
    """``iteration(state, data) -> (state, (z, pe, diverging, num_steps, accept_prob,
    step_size))``: one NUTS transition of one chain, with warm-up adaptation while
    ``state.it < num_warmup``. ``potential(z, data)`` is minus the log density."""
    vg = jax.value_and_grad(potential)
    metric = _Metric(dense)
    collect_np, end_np = adaptation_schedule(num_warmup)
    depth = int(max_tree_depth)
    slots = np.arange(1, depth + 1)  # numpy: an eager jnp op compiles a program

    def kinetic(imm: Any, p: Any) -> Any:
        return 0.5 * jnp.dot(p, metric.velocity(imm, p))

    def turning(p_a: Any, v_a: Any, p_b: Any, v_b: Any, rho: Any) -> Any:
        """The generalised U-turn criterion between momenta ``p_a``, ``p_b`` (velocities
        ``v_a``, ``v_b``: the inverse mass matrix times them) with momentum sum ``rho``."""
        rho_adj = rho - 0.5 * (p_a + p_b)
        return (jnp.dot(v_a, rho_adj) <= 0) | (jnp.dot(v_b, rho_adj) <= 0)

    def iteration(s: State, data: Any) -> Any:
        # this iteration's random words: the next key, the leaves' key, 2 x dim
        # normals (momentum, step-size search momentum), the doubling directions
        d = s.z.shape[0]
        w0, w1 = threefry2x32(s.key[0], s.key[1], jnp.zeros(2 + 2 * d + depth, jnp.uint32),
                              jnp.arange(2 + 2 * d + depth, dtype=jnp.uint32))
        key, k_loop = jnp.stack([w0[0], w1[0]]), (w0[1], w1[1])
        normals = _normal(w0[2:2 + 2 * d], w1[2:2 + 2 * d])
        p0 = metric.momentum(s.chol, normals[:d])
        p_search = metric.momentum(s.chol, normals[d:])
        dirs = (w0[2 + 2 * d:] >> 31) == 1
        eps0 = jnp.exp(s.log_eps)
        # velocities are kept beside momenta: a leaf costs two products with the mass
        # matrix (the leapfrog step's and the new momentum's), whatever the tree depth
        v0 = metric.velocity(s.imm, p0)
        k0 = 0.5 * jnp.dot(p0, v0)
        k_search = kinetic(s.imm, p_search)
        f0 = jnp.zeros((), s.z.dtype)
        zero_d = jnp.zeros_like(s.z)
        mode0 = jnp.where(s.need_mode, 3, jnp.where(s.need_grad, 0,
                                                     jnp.where(s.need_eps, 1, 2)))
        eye = jnp.eye(d, dtype=s.z.dtype)
        # loop carry: a flat dict, so that every branch of the state machine is a select
        c = dict(
            mode=mode0, done=jnp.asarray(False),
            pe0=s.pe, g0=s.grad, h0=s.pe + k0, eps=eps0,
            # step-size search
            s_dir=jnp.asarray(0, jnp.int32), s_count=jnp.asarray(0, jnp.int32),
            # trajectory: ends (position, momentum, velocity, gradient), proposal,
            # weights, momentum sum
            zl=s.z, pl=p0, vl=v0, gl=s.grad, zr=s.z, pr=p0, vr=v0, gr=s.grad,
            zp=s.z, pep=s.pe, gp=s.grad, moved=jnp.asarray(False),
            lw=f0, rho=p0,
            # current subtree: depth j, leaf n, its proposal, weight and momentum sum
            j=jnp.asarray(0, jnp.int32), n=jnp.asarray(0, jnp.int32),
            zs=s.z, pes=s.pe, gs=s.grad, lws=jnp.asarray(-jnp.inf), rhos=zero_d,
            ck_p=jnp.zeros((depth,) + s.z.shape), ck_v=jnp.zeros((depth,) + s.z.shape),
            ck_rho=jnp.zeros((depth,) + s.z.shape),
            leaves=jnp.asarray(0, jnp.int32), acc=f0, div=jnp.asarray(False),
            # mode search (modes 3 and 4): the point, its potential and gradient, the
            # Hessian column being differenced (-1: the point itself), eigen-pairs of
            # the Hessian, the damping, the Newton step on trial
            xo=s.z, peo=s.pe, go=s.grad, hj=jnp.asarray(-1, jnp.int32),
            hess=jnp.zeros((d, d), s.z.dtype),
            damp=jnp.asarray(1e-6, s.z.dtype), newton=jnp.asarray(0, jnp.int32),
            delta=zero_d, evals=jnp.asarray(0, jnp.int32), found=jnp.asarray(False),
        )

        def body(c: dict[str, Any]) -> dict[str, Any]:
            mode = c["mode"]
            tree = mode == 2
            right = dirs[jnp.minimum(c["j"], depth - 1)]
            # where this evaluation starts from, and with which step
            m3, m4 = mode == 3, mode == 4
            hj = c["hj"]
            x_opt = c["xo"] + jnp.where(m3, _FD_STEP * eye[jnp.clip(hj, 0, d - 1)]
                                        * (hj >= 0), c["delta"])
            z_a = jnp.where(tree, jnp.where(right, c["zr"], c["zl"]),
                            jnp.where(m3 | m4, x_opt, s.z))
            p_a = jnp.where(tree, jnp.where(right, c["pr"], c["pl"]), p_search)
            g_a = jnp.where(tree, jnp.where(right, c["gr"], c["gl"]), c["g0"])
            eps = jnp.where((mode == 0) | m3 | m4, 0.0,
                            jnp.where(tree, jnp.where(right, c["eps"], -c["eps"]), c["eps"]))
            p_half = p_a - 0.5 * eps * g_a
            z_b = z_a + eps * metric.velocity(s.imm, p_half)
            pe_b, g_b = vg(z_b, data)
            p_b = p_half - 0.5 * eps * g_b
            pe_b = jnp.where(jnp.isnan(pe_b), jnp.inf, pe_b)
            v_b = metric.velocity(s.imm, p_b)
            h_b = pe_b + 0.5 * jnp.dot(p_b, v_b)
            out = dict(c)

            # mode 0: the potential at the starting point
            h0_new = pe_b + k0
            after0 = jnp.where(s.need_eps, 1, 2)
            m0 = mode == 0
            out["pe0"] = jnp.where(m0, pe_b, c["pe0"])
            out["g0"] = jnp.where(m0, g_b, c["g0"])
            for k in ("gl", "gr", "gp", "gs"):
                out[k] = jnp.where(m0, g_b, c[k])
            out["pep"] = jnp.where(m0, pe_b, c["pep"])
            out["pes"] = jnp.where(m0, pe_b, c["pes"])
            out["h0"] = jnp.where(m0, h0_new, c["h0"])

            # mode 1: step-size search (one leapfrog step from the start, momentum p_search)
            m1 = mode == 1
            dh = c["pe0"] + k_search - h_b
            dh = jnp.where(jnp.isnan(dh), -jnp.inf, dh)
            first = c["s_count"] == 0
            s_dir = jnp.where(first, jnp.where(dh > _LOG_08, 1, -1), c["s_dir"])
            crossed = ~first & (((s_dir == 1) & ~(dh > _LOG_08))
                                | ((s_dir == -1) & ~(dh < _LOG_08)))
            stop = crossed | (c["s_count"] + 1 >= _MAX_SEARCH)
            eps_next = jnp.where(stop, c["eps"], c["eps"] * jnp.where(s_dir == 1, 2.0, 0.5))
            out["eps"] = jnp.where(m1, eps_next, c["eps"])
            out["s_dir"] = jnp.where(m1, s_dir, c["s_dir"])
            out["s_count"] = c["s_count"] + m1.astype(jnp.int32)

            # mode 2: a leaf of the current subtree
            lw_b = jnp.where(jnp.isfinite(h_b), c["h0"] - h_b, -jnp.inf)
            diverging = ~(h_b - c["h0"] <= _DIVERGENCE)  # also for NaN
            acc_b = jnp.where(jnp.isfinite(lw_b), jnp.exp(jnp.minimum(lw_b, 0.0)), 0.0)
            leaf = c["leaves"].astype(jnp.uint32)
            r0, r1 = threefry2x32(*k_loop, jnp.stack([leaf, leaf]),
                                  jnp.arange(2, dtype=jnp.uint32))
            u_leaf, u_merge = _uniform(r0, r1)
            lws = jnp.logaddexp(c["lws"], lw_b)
            take = jnp.log(u_leaf) < lw_b - lws  # uniform progressive sampling
            zs = jnp.where(take, z_b, c["zs"])
            pes = jnp.where(take, pe_b, c["pes"])
            gs = jnp.where(take, g_b, c["gs"])
            n, j = c["n"], c["j"]
            # checkpoints: leaf n starts the subtrees of sizes 2^1 .. 2^tz(n) within it
            write = (slots <= _tz(n, depth))[:, None]
            ck_p = jnp.where(write, p_b, c["ck_p"])
            ck_v = jnp.where(write, v_b, c["ck_v"])
            ck_rho = jnp.where(write, c["rhos"], c["ck_rho"])
            rhos = c["rhos"] + p_b
            # ... and ends those of sizes 2^1 .. 2^tz(n + 1): check each for a U-turn
            check = (slots <= jnp.minimum(_tz(n + 1, depth), j))
            turns = jax.vmap(lambda pa, va, ra: turning(pa, va, p_b, v_b, rhos - ra))(
                ck_p, ck_v, ck_rho)
            sub_turn = jnp.any(check & turns)
            # the new leaf is the trajectory's new end on its side
            zl = jnp.where(right, c["zl"], z_b)
            pl = jnp.where(right, c["pl"], p_b)
            vl = jnp.where(right, c["vl"], v_b)
            gl = jnp.where(right, c["gl"], g_b)
            zr = jnp.where(right, z_b, c["zr"])
            pr = jnp.where(right, p_b, c["pr"])
            vr = jnp.where(right, v_b, c["vr"])
            gr = jnp.where(right, g_b, c["gr"])
            complete = n + 1 == (1 << j)
            merge = complete & ~sub_turn & ~diverging
            # biased progressive sampling: the subtree's proposal replaces the trajectory's
            take_sub = merge & (jnp.log(u_merge) < lws - c["lw"])
            lw = jnp.where(merge, jnp.logaddexp(c["lw"], lws), c["lw"])
            rho = jnp.where(merge, c["rho"] + rhos, c["rho"])
            all_turn = turning(pl, vl, pr, vr, rho)
            tree_done = sub_turn | diverging | (merge & (all_turn | (j + 1 >= depth)))
            upd = {
                "zl": zl, "pl": pl, "vl": vl, "gl": gl, "zr": zr, "pr": pr, "vr": vr,
                "gr": gr,
                "zp": jnp.where(take_sub, zs, c["zp"]),
                "pep": jnp.where(take_sub, pes, c["pep"]),
                "gp": jnp.where(take_sub, gs, c["gp"]),
                "moved": c["moved"] | take_sub, "lw": lw, "rho": rho,
                "j": jnp.where(merge, j + 1, j), "n": jnp.where(merge, 0, n + 1),
                "zs": zs, "pes": pes, "gs": gs,
                "lws": jnp.where(merge, -jnp.inf, lws),
                "rhos": jnp.where(merge, zero_d, rhos), "ck_p": ck_p, "ck_v": ck_v,
                "ck_rho": ck_rho,
                "leaves": c["leaves"] + 1, "acc": c["acc"] + acc_b, "div": diverging,
            }
            for k, v in upd.items():
                out[k] = jnp.where(tree, v, out[k])

            # modes 3 and 4: Newton's method with a finite-difference Hessian
            out.update(_newton(c, m3, m4, pe_b, g_b))
            found = out["found"]

            out["mode"] = jnp.where(m0, after0, jnp.where(m1 & stop, 2, out["mode"]))
            out["done"] = (tree & tree_done) | ((m3 | m4) & found)
            return out

        def _newton(c: dict[str, Any], m3: Any, m4: Any, pe_b: Any, g_b: Any) -> dict:
            """The mode search's update after evaluating the potential at ``x_opt``:
            mode 3 fills the Hessian at ``xo`` column by column (its eigen-pairs and the
            next Newton step when complete), mode 4 tries ``xo + delta`` (accepted if
            the potential falls; else more damping)."""
            hj, ok_b = c["hj"], jnp.isfinite(pe_b) & jnp.all(jnp.isfinite(g_b))
            base = m3 & (hj < 0)
            col = m3 & (hj >= 0)
            xo = c["xo"]
            peo = jnp.where(base, pe_b, c["peo"])
            go = jnp.where(base, g_b, c["go"])
            jc = jnp.clip(hj, 0, d - 1)
            column = jnp.where(col, (g_b - go) / _FD_STEP, c["hess"][:, jc])
            hess = jax.lax.dynamic_update_slice(c["hess"], column[:, None], (jnp.int32(0), jc))
            complete = col & (hj == d - 1)
            # trial (mode 4)
            better = m4 & ok_b & (pe_b < c["peo"])
            worse = m4 & ~better
            xo = jnp.where(better, xo + c["delta"], xo)
            peo = jnp.where(better, pe_b, peo)
            go = jnp.where(better, g_b, go)
            damp = jnp.where(better, jnp.maximum(c["damp"] * 0.1, 1e-9),
                             jnp.where(worse, c["damp"] * 10.0, c["damp"]))
            newton = c["newton"] + better.astype(jnp.int32)

            def step(_: Any) -> tuple[Any, Any, Any]:
                # damped Newton step on |eigenvalues| (a descent direction even where the
                # Hessian is not positive definite), at most 3 long; only d-sized results
                # leave the branch (a d x d one would be copied at every leapfrog step)
                hw, hv = _eigh(hess)
                scale = jnp.max(jnp.abs(hw))
                gv = hv.T @ go
                delta = -hv @ (gv / (jnp.abs(hw) + damp * scale + 1e-300))
                delta = delta * jnp.minimum(1.0, 3.0 / (jnp.linalg.norm(delta) + 1e-300))
                return (delta, 0.5 * jnp.sum(gv**2 / (jnp.abs(hw) + 1e-300)),
                        jnp.all(jnp.isfinite(hw)))

            delta, decrement, hw_ok = jax.lax.cond(
                complete | worse, step,
                lambda _: (c["delta"], jnp.asarray(jnp.inf), jnp.asarray(True)), None)
            stop = ((base & ~ok_b) | (complete & ~hw_ok)  # no finite start or Hessian
                    | (complete & ((decrement < _NEWTON_TOL) | (newton >= _MAX_NEWTON)))
                    | (worse & (damp > _MAX_DAMPING)))
            found = (m3 | m4) & stop
            next_mode = jnp.where(base & ok_b, 3, jnp.where(complete, 4,
                                  jnp.where(better, 3, c["mode"])))
            return {
                "xo": xo, "peo": peo, "go": go, "hess": hess,
                "damp": damp, "newton": newton, "delta": delta,
                "hj": jnp.where(base | col, jnp.where(complete, -2, hj + 1),
                                jnp.where(better, 0, hj)),
                "evals": c["evals"] + (m3 | m4).astype(jnp.int32),
                "found": found, "mode": next_mode,
            }

        c = jax.lax.while_loop(lambda c: ~c["done"], body, c)

        searched = s.need_eps  # a search ran in this iteration: restart dual averaging
        log_eps_s = jnp.where(searched, jnp.log(c["eps"]), s.log_eps)  # (exact when kept)
        mu = jnp.where(searched, jnp.log(10.0) + log_eps_s, s.mu)
        h_bar = jnp.where(searched, 0.0, s.h_bar)
        log_eps_bar = jnp.where(searched, 0.0, s.log_eps_bar)
        da_t = jnp.where(searched, 0.0, s.da_t)
        z, pe, grad = (jnp.where(c["moved"], c[a], b) for a, b in
                       (("zp", s.z), ("pep", c["pe0"]), ("gp", c["g0"])))
        accept = c["acc"] / jnp.maximum(c["leaves"], 1)
        it = s.it
        state = s._replace(z=z, pe=pe, grad=grad, key=key, it=it + 1, need_grad=False,
                           need_eps=False, mu=mu, h_bar=h_bar, log_eps_bar=log_eps_bar,
                           da_t=da_t, log_eps=log_eps_s)
        if num_warmup > 0:
            state = jax.lax.cond((it < num_warmup) & ~s.need_mode,
                                 lambda st: _adapt(st, accept), lambda st: st, state)
        # an iteration that searched the mode moves the chain to a draw of the Laplace
        # approximation there, with its covariance as the inverse mass matrix
        state = jax.lax.cond(s.need_mode, lambda st: _from_mode(st, c, normals[:d]),
                             lambda st: st, state)
        # (that iteration reports the mode, its potential and the evaluations it took)
        m = s.need_mode
        return state, (jnp.where(m, c["xo"], state.z), jnp.where(m, c["peo"], state.pe),
                       c["div"], jnp.where(m, c["evals"], c["leaves"]), accept, c["eps"])

    def _from_mode(st: State, c: dict[str, Any], xi: Any) -> State:
        hw, hv = _eigh(c["hess"])
        var = jnp.where(hw > 1.0 / _MAX_VAR, 1.0 / hw, _MAX_VAR)
        root = hv * jnp.sqrt(var)  # root @ root.T = covariance
        cov = root @ root.T
        imm = cov if dense else jnp.diagonal(cov)
        chol = metric.factor(imm)
        z = c["xo"] + _START_SPREAD * root @ xi
        ok = ((c["hj"] == -2) & jnp.isfinite(c["peo"]) & jnp.all(jnp.isfinite(chol))
              & jnp.all(jnp.isfinite(z)))
        return st._replace(z=jnp.where(ok, z, st.z), imm=jnp.where(ok, imm, st.imm),
                           chol=jnp.where(ok, chol, st.chol), need_grad=True,
                           need_eps=True, need_mode=False)

    collect_j, end_j = collect_np, end_np  # constants of the program (numpy)

    def _adapt(st: State, accept: Any) -> State:
        i = st.it - 1
        # dual averaging of the step size
        t = st.da_t + 1.0
        w = 1.0 / (t + _T0)
        h_bar = (1.0 - w) * st.h_bar + w * (target - accept)
        log_eps = st.mu - jnp.sqrt(t) / _GAMMA * h_bar
        eta = t ** (-_KAPPA)
        log_eps_bar = eta * log_eps + (1.0 - eta) * st.log_eps_bar
        last = i == num_warmup - 1
        log_eps = jnp.where(last, log_eps_bar, log_eps)
        # Welford estimates of the covariance within a window
        coll = jnp.asarray(collect_j)[i]
        n = st.w_n + coll
        delta = st.z - st.w_mean
        mean = jnp.where(coll, st.w_mean + delta / jnp.maximum(n, 1.0), st.w_mean)
        delta2 = st.z - mean
        m2 = st.w_m2 + (jnp.outer(delta2, delta) if dense else delta2 * delta)
        m2 = jnp.where(coll, m2, st.w_m2)
        # at a window's end: the regularised covariance becomes the inverse mass matrix
        # (factorised then only: a 109 x 109 Cholesky at every warm-up iteration took
        # ~1 s of a 26 s run with a Bayesian background)
        end = jnp.asarray(end_j)[i]

        def new_metric(_: Any) -> tuple[Any, Any]:
            cov = m2 / jnp.maximum(n - 1.0, 1.0)
            eye = jnp.eye(st.z.shape[0]) if dense else jnp.ones_like(st.z)
            reg = (n / (n + 5.0)) * cov + 1e-3 * (5.0 / (n + 5.0)) * eye
            return reg, metric.factor(reg)

        imm, chol = jax.lax.cond(end, new_metric, lambda _: (st.imm, st.chol), None)
        return st._replace(
            log_eps=log_eps, h_bar=h_bar, log_eps_bar=log_eps_bar, da_t=t,
            imm=imm, chol=chol,
            w_n=jnp.where(end, 0.0, n), w_mean=jnp.where(end, 0.0, mean),
            w_m2=jnp.where(end, 0.0, m2), need_eps=end)

    return iteration
