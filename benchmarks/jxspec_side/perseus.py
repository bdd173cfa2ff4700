"""(d) jxspec_nb: the Hitomi SXS Perseus nine-line problem (issue 7), VI and NUTS.

``--method vi``: 10^5 adamw steps, multivariate-normal guide (the paper's set-up);
``--method nuts``: 4 chains x (1000 + 1000). Both start from
:func:`jxspec_nb.highres.perseus_init`. Wall time includes compilation; the
sigma_v / v_bulk posterior comes from :func:`jxspec_nb.highres.velocity_summary`.
``--prepare DIR`` writes what jaxspec_side/perseus.py needs and exits: the full
32768-channel Gaussian RMF (5 eV FWHM on the ARF grid, :func:`jxspec_nb.data.write_rmf`)
and ``perseus_problem.json`` (files, band, the nine lines, every prior, the start).
VI: 10^5 adamw steps at 5e-4 (decayed tenfold over the run), one ELBO particle
(numpyro's and jaxspec's default), multivariate-normal guide.
"""

from __future__ import annotations

import sys

import common  # noqa: F401  (sets sys.path)
from common import _util

if "--prepare" in sys.argv:  # inputs of the jaxspec side, then exit
    import json
    from pathlib import Path

    from jxspec_nb.data import write_rmf
    from jxspec_nb.data._rmf import read_arf
    from jxspec_nb.data.ogip import read_pha
    from jxspec_nb.data.responses import rmf_from_spec
    from jxspec_nb.highres import (
        _SXS,
        BAND,
        FE_HE_ALPHA_LINES,
        _find,
        load_perseus_sxs,
        perseus_init,
        perseus_spec,
    )

    dest = Path(sys.argv[sys.argv.index("--prepare") + 1]).resolve()
    dest.mkdir(parents=True, exist_ok=True)
    root = str(_util.SHARED_DATA)
    pha_path, arf_path = _find(root, _SXS[0], _SXS[1]), _find(root, _SXS[0], _SXS[2])
    pha, arf = read_pha(pha_path), read_arf(arf_path)
    rmf = rmf_from_spec("gaussian:5eV", arf, pha.channel.size, int(pha.channel[0]))
    rmf_path = write_rmf(rmf, dest / "perseus_sxs_5eV.rmf", telescope="HITOMI",
                         instrument="SXS")
    spec = perseus_spec()
    obs = load_perseus_sxs(root)
    problem = {
        "pha": str(pha_path), "arf": str(arf_path), "rmf": str(rmf_path), "band": BAND,
        "lines": [[ln.label, ln.energy] for ln in FE_HE_ALPHA_LINES],
        "priors": {n: [d.kind, list(d.args), d.low, d.high]
                   for n, d in spec.prior_defs.items()},
        "init": perseus_init(spec, obs), "noticed_groups": int(obs.fold.shape[0]),
    }
    (dest / "perseus_problem.json").write_text(json.dumps(problem, indent=1))
    print(f"wrote {rmf_path} and perseus_problem.json")
    sys.exit(0)

args = _util.parse_args({"method": "vi", "seed": 0})
clock = _util.Clock()
with clock("import"):
    from jxspec_nb import fit
    from jxspec_nb.highres import load_perseus_sxs, perseus_init, perseus_spec, velocity_summary

    meter = _util.CompileMeter()

with clock("setup"):
    obs = load_perseus_sxs(str(_util.SHARED_DATA))
    spec = perseus_spec()
    init = perseus_init(spec, obs)

if args.method == "vi":
    kw = {"steps": 25_000 if args.quick else 100_000, "optimizer": "adamw", "guide": "mvn",
          "learning_rate": 5e-4, "num_particles": 1, "samples": 2000}
else:
    n = 300 if args.quick else 1000
    kw = {"chains": 4, "warmup": n, "samples": n}
with clock("fit"):
    result = fit(spec, obs, method=args.method, seed=args.seed, progress=False, init=init, **kw)
vs = velocity_summary(result)


def _velocity(v) -> dict | str:
    try:
        return v.as_dict()
    except Exception:  # noqa: BLE001  (a summary we cannot serialise: keep its text)
        return str(v)


print(vs)
extra = {}
if args.method == "nuts":
    summary = result.summary()
    extra = {"max_r_hat": float(summary["r_hat"].max()),
             "min_ess_bulk": float(summary["ess_bulk"].min()),
             "divergences": int(summary.attrs.get("divergences", -1)),
             "mean_leapfrog_steps": result.extra.get("mean_leapfrog_steps")}
_util.emit(args.out, {
    "side": "jxspec_nb",
    "problem": f"perseus_sxs_{args.method}",
    "fit_kwargs": kw,
    "phases": clock.phases,
    "phase_end_monotonic": clock.ends,
    "fit_timings": result.timings,
    "compile_s": meter.total,
    "velocity": _velocity(vs),
    "fold_shape": list(obs.fold.shape),
    **extra,
})
