"""(b) jaxspec 0.4.1: potential value-and-gradient and model value-and-gradient on ULX-4.

Also dumps, for the side-by-side checks of issues 2 and 3:
  _out/jaxspec_fold.npz   transfer matrix (dense), in/out energies, folded counts
  _out/jaxspec_model.npz  tbabs*(powerlaw+bbodyrad) photon flux on the RMF's 2067 bins
                          at ULX4_POINT for n_points = 2 (jaxspec's default) and converged
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
    common.setup_jax(1)
    import jax
    import jax.numpy as jnp
    import numpy as np
    from astropy.io import fits
    from jaxspec.fit import MCMCFitter
    from numpyro.infer.util import initialize_model, unconstrain_fn

with clock("setup"):
    obs = common.ulx4_obsconf()
    fitter = MCMCFitter(common.ulx4_model(), common.ulx4_prior(), obs)
    model_fn = fitter.transformed_numpyro_model


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


# ---- potential (what NUTS differentiates): transformed model, unconstrained space
point = {common.JAXSPEC_NAMES[k]: v for k, v in _util.ULX4_POINT.items()}
info, potential_fn, _, _ = initialize_model(jax.random.PRNGKey(0), model_fn)
z0 = info.z
try:
    z_point = unconstrain_fn(model_fn, (), {}, {**z0, **point})
    if set(z_point) == set(z0):
        z0 = z_point
except Exception as exc:  # the reparametrised sites may not accept constrained values
    print("[jaxspec vg] using init point:", exc)
vg_potential = jax.jit(jax.value_and_grad(potential_fn))
pot = per_call(vg_potential, z0, repeat=args.repeat)
pot.update(_util.in_loop_us(jax.value_and_grad(potential_fn), z0))
pot_transcendentals = _util.transcendentals(jax.value_and_grad(potential_fn), z0, 2067)  # RMF bins
pot_value = float(vg_potential(z0)[0])

# ---- bare spectral model: photon flux on the RMF's 2067-bin grid (+ gradient)
with fits.open(_util.ULX4_DIR / "PN.rmf") as hdul:
    mat = hdul["MATRIX"].data
    e_lo = np.asarray(mat["ENERG_LO"], dtype=np.float64)
    e_hi = np.asarray(mat["ENERG_HI"], dtype=np.float64)
spectral = common.ulx4_model()
mparams = {k.removeprefix("spectrum."): v for k, v in point.items()}
weights = jnp.asarray(np.random.default_rng(1).uniform(0.5, 1.5, e_lo.size))


def flux(p, n_points=2):
    return spectral.photon_flux(e_lo, e_hi, params=p, n_points=n_points)


vg_model = jax.jit(jax.value_and_grad(lambda p: jnp.sum(weights * flux(p))))
mvg = per_call(vg_model, mparams, repeat=args.repeat)
mvg.update(_util.in_loop_us(jax.value_and_grad(lambda p: jnp.sum(weights * flux(p))), mparams))
model_eval = jax.jit(flux)
mev = per_call(model_eval, mparams, repeat=args.repeat)

values = {"n2": np.asarray(flux(mparams, 2))}
for n in (64, 256, 1024, 4096):
    values[f"n{n}"] = np.asarray(jax.jit(lambda p, n=n: flux(p, n))(mparams))
# trapezoid error ~ 1/n^2: Richardson-extrapolated limit of jaxspec's own definition
values["converged"] = (16.0 * values["n4096"] - values["n1024"]) / 15.0
conv = float(np.max(np.abs(values["n4096"] / values["converged"] - 1)))
np.savez(
    _util.OUT_DIR / "jaxspec_model.npz",
    e_lo=e_lo,
    e_hi=e_hi,
    point=np.array([_util.ULX4_POINT[k] for k in _util.ULX4_POINT]),
    names=np.array(list(_util.ULX4_POINT)),
    **values,
)

# ---- fold operator (issue 2)
tm = obs.transfer_matrix.data
dense = np.asarray(tm.todense(), dtype=np.float64)
np.savez(
    _util.OUT_DIR / "jaxspec_fold.npz",
    fold=dense,
    in_lo=obs.in_energies[0],
    in_hi=obs.in_energies[1],
    out_lo=obs.out_energies[0],
    out_hi=obs.out_energies[1],
    counts=np.asarray(obs.folded_counts.data, dtype=np.float64),
)

_util.emit(
    args.out,
    {
        "side": "jaxspec",
        "problem": "ulx4_vg",
        "phases": clock.phases,
        "potential_vg": pot,
        "potential_value": pot_value,
        "potential_transcendentals": pot_transcendentals,
        "potential_point": {k: np.asarray(v).tolist() for k, v in z0.items()},
        "model_vg": mvg,
        "model_eval": mev,
        "model_n4096_vs_converged_max_rel": conv,
        "model_n2_vs_converged_max_rel": float(
            np.max(np.abs(values["n2"] / values["converged"] - 1))
        ),
        "fold_shape": list(dense.shape),
        "fold_density": float(np.count_nonzero(dense) / dense.size),
        "versions": _util.versions("jax", "jaxlib", "numpyro", "jaxspec"),
    },
)
