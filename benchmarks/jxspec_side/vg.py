"""(b) jxspec_nb: potential value-and-gradient, model value-and-gradient, fold floor.

Also the side-by-side checks of issues 2 and 3 against jaxspec's dumps
(_out/jaxspec_fold.npz, _out/jaxspec_model.npz, written by jaxspec_side/vg.py).
"""

from __future__ import annotations

import time

import common
from common import _util

args = _util.parse_args({"repeat": 2000})
if args.quick:
    args.repeat = 300
clock = _util.Clock()

with clock("import"):
    import jax
    import jax.numpy as jnp
    import numpy as np

    from jxspec_nb import model_with_priors
    from jxspec_nb.inference.compile import get_problem

with clock("setup"):
    obs = common.ulx4_observation()
    spec = model_with_priors(common.ULX4_SPEC)
    problem, data = get_problem(spec, [obs])


def per_call(fn, *a, repeat: int) -> dict[str, float]:
    """Median over 5 blocks of `repeat/5` calls (first call = compile, excluded)."""
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*a))
    first = time.perf_counter() - t0
    block = max(repeat // 5, 1)
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(block):
            out = fn(*a)
        jax.block_until_ready(out)
        times.append((time.perf_counter() - t0) / block)
    return {"per_call_us": 1e6 * float(np.median(times)), "first_call_s": first}


# ---- potential value and gradient at the same point as jaxspec's
x = np.array([_util.ULX4_POINT[n] for n in problem.names])
u = jnp.asarray(problem.u_from_values(x, data))
pot = per_call(problem.value_and_grad, u, data, repeat=args.repeat)
potential_vg = jax.value_and_grad(lambda uu: problem._log_density(uu, data))
pot.update(_util.in_loop_us(potential_vg, u))
pot_transcendentals = _util.transcendentals(potential_vg, u, obs.e_lo.size)
pot_value = float(problem.value_and_grad(u, data)[0])

# ---- bare model on the RMF's 2067-bin grid (+ gradient), and equality with jaxspec
ref = np.load(_util.OUT_DIR / "jaxspec_model.npz")
e_lo, e_hi = ref["e_lo"], ref["e_hi"]
model = spec.model
weights = jnp.asarray(np.random.default_rng(1).uniform(0.5, 1.5, e_lo.size))
p0 = {k: jnp.asarray(v) for k, v in _util.ULX4_POINT.items()}
vg_model = jax.jit(jax.value_and_grad(lambda p: jnp.sum(weights * model.evaluate(p, e_lo, e_hi))))
mvg = per_call(vg_model, p0, repeat=args.repeat)
mvg.update(_util.in_loop_us(
    jax.value_and_grad(lambda p: jnp.sum(weights * model.evaluate(p, e_lo, e_hi))), p0))
ev = jax.jit(lambda p: model.evaluate(p, e_lo, e_hi))
mev = per_call(ev, p0, repeat=args.repeat)
ours = np.asarray(ev(p0))


def rel(a, b, mask):
    r = np.abs(a / b - 1)[mask]
    return {"max": float(r.max()), "median": float(np.median(r)),
            "worst_bin_keV": float(e_lo[mask][np.argmax(r)])}


significant = ref["converged"] > 1e-6 * ref["converged"].max()  # bins that carry flux
model_cmp = {
    "vs_converged_all_bins": rel(ours, ref["converged"], np.ones_like(significant)),
    "vs_converged_significant": rel(ours, ref["converged"], significant),
    "vs_n2_significant": rel(ours, ref["n2"], significant),
    "n_significant": int(significant.sum()),
    "n_above_1e-6": int((np.abs(ours / ref["converged"] - 1)[significant] > 1e-6).sum()),
}


# ---- fold operator vs jaxspec's (issue 2)
jf = np.load(_util.OUT_DIR / "jaxspec_fold.npz")
F = obs.fold_dense()
J = jf["fold"]
fold_cmp = {"shape_ours": list(F.shape), "shape_jaxspec": list(J.shape),
            "nnz_ours": int(np.count_nonzero(F)), "nnz_jaxspec": int(np.count_nonzero(J))}
# our operator keeps only the energies that reach the noticed channels: match columns
idx = np.searchsorted(jf["in_lo"], obs.e_lo)
idx = np.clip(idx, 0, jf["in_lo"].size - 1)
matched = np.allclose(jf["in_lo"][idx], obs.e_lo, rtol=1e-12) and np.allclose(
    jf["in_hi"][idx], obs.e_hi, rtol=1e-12)
if F.shape[0] == J.shape[0] and matched:
    Jm = J[:, idx]
    rest = np.delete(J, idx, axis=1)
    nz = (Jm != 0) | (F != 0)
    fold_cmp.update(
        energy_columns_matched=True,
        jaxspec_columns_outside_ours_all_zero=bool(np.all(rest == 0)),
        max_rel=float(np.max(np.abs(F[nz] - Jm[nz]) / np.maximum(np.abs(Jm[nz]), 1e-300))),
        max_abs_over_max=float(np.max(np.abs(F - Jm)) / np.abs(Jm).max()),
        same_nonzero_pattern=bool(np.array_equal(F != 0, Jm != 0)),
        counts_equal=bool(np.array_equal(obs.counts, jf["counts"])),
        channel_bounds_equal=bool(np.allclose(obs.channel_lo, jf["out_lo"], rtol=1e-6)
                                  and np.allclose(obs.channel_hi, jf["out_hi"], rtol=1e-6)),
    )
else:
    fold_cmp["energy_columns_matched"] = bool(matched)

# ---- the floor set by the fold operator's nonzeros: one matvec + its transpose, per
# call and (as the potential above) inside a compiled loop; both vectors are loop
# arguments so that neither product is hoisted out of the loop
flux = ev_obs = jax.jit(lambda p: model.evaluate(p, obs.e_lo, obs.e_hi))(p0)
resid = jnp.asarray(np.random.default_rng(2).uniform(0.5, 1.5, F.shape[0]))
Fd = jnp.asarray(F)
Fs = jnp.asarray(F.astype(np.float32))


def dense_mv(f, r):
    return Fd @ f, Fd.T @ r


def dense32_mv(f, r):  # single precision, as the samplers' fold (float64 in and out)
    return ((Fs @ f.astype(jnp.float32)).astype(jnp.float64),
            (Fs.T @ r.astype(jnp.float32)).astype(jnp.float64))


csr = obs.fold.tocsr()
rows = jnp.asarray(np.repeat(np.arange(csr.shape[0]), np.diff(csr.indptr)))
cols, vals = jnp.asarray(csr.indices), jnp.asarray(csr.data)


def sparse_mv(f, r):
    y = jax.ops.segment_sum(vals * f[cols], rows, num_segments=csr.shape[0])
    g = jax.ops.segment_sum(vals * r[rows], cols, num_segments=csr.shape[1])
    return y, g


# the samplers' own fold (float32 row blocks, each restricted to the columns its rows
# reach) and its transpose, as the potential's gradient applies it
from jxspec_nb.inference._model_eval import ObsEval, fold_data  # noqa: E402

fd, f_sparse, fblocks = fold_data(obs)


def samplers_mv(f, r):
    y, transpose = jax.vjp(lambda x: ObsEval.fold(x, fd, f_sparse, fblocks, fast=True), f)
    return y, transpose(r)[0]


floor_impl = {"dense_jax": dense_mv, "dense_f32_jax": dense32_mv, "sparse_jax": sparse_mv,
              "samplers_fold_jax": samplers_mv}
floor_calls = {k: per_call(jax.jit(fn), flux, resid, repeat=args.repeat)["per_call_us"]
               for k, fn in floor_impl.items()}
floor_loop = {k: _util.in_loop_us(lambda fr, fn=fn: fn(*fr), (flux, resid))["in_loop_us"]
              for k, fn in floor_impl.items()}
fnp = np.asarray(flux)
rnp = np.asarray(resid)
t0 = time.perf_counter()
for _ in range(args.repeat):
    csr @ fnp, csr.T @ rnp
floor_scipy_us = 1e6 * (time.perf_counter() - t0) / args.repeat

_util.emit(
    args.out,
    {
        "side": "jxspec_nb",
        "problem": "ulx4_vg",
        "phases": clock.phases,
        "potential_vg": pot,
        "potential_value": pot_value,
        "potential_transcendentals": pot_transcendentals,
        "potential_names": list(problem.names),
        "model_vg": mvg,
        "model_eval": mev,
        "model_compare": model_cmp,
        "fold_compare": fold_cmp,
        "fold_nnz": int(csr.nnz),
        "fold_density": float(csr.nnz / (csr.shape[0] * csr.shape[1])),
        "floor": {
            **{f"{k}_us": v for k, v in floor_calls.items()},
            **{f"{k}_in_loop_us": v for k, v in floor_loop.items()},
            "scipy_csr_us": floor_scipy_us,
            "min_us": min(floor_calls.values()),
            "min_in_loop_us": min(floor_loop.values()),
            "min_in_loop_impl": min(floor_loop, key=floor_loop.get),
        },
        "versions": _util.versions("jax", "jaxlib", "numpyro", "jxspec_nb"),
    },
)
