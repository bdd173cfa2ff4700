"""(d) jxspec_nb: the Hitomi SXS Perseus nine-line problem (issue 7), VI and NUTS.

``--method vi``: 10^5 adamw steps, multivariate-normal guide (the paper's set-up);
``--method nuts``: 4 chains x (1000 + 1000). Both start from
:func:`jxspec_nb.highres.perseus_init`. Wall time includes compilation; the
sigma_v / v_bulk posterior comes from :func:`jxspec_nb.highres.velocity_summary`.
jaxspec side: not run (see RESULTS.md).
"""

from __future__ import annotations

import common  # noqa: F401  (sets sys.path)
from common import _util

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
    kw = {"steps": 25_000 if args.quick else 100_000, "optimizer": "adamw", "guide": "mvn"}
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
post = result.idata.posterior
r_hat = float("nan")
if args.method == "nuts":
    import arviz as az
    import numpy as np

    r_hat = max(float(az.rhat(np.asarray(post[n]))) for n in ("vbroad.Sigma", "bulk.Velocity"))
_util.emit(args.out, {
    "side": "jxspec_nb",
    "problem": f"perseus_sxs_{args.method}",
    "fit_kwargs": kw,
    "phases": clock.phases,
    "fit_timings": result.timings,
    "compile_s": meter.total,
    "velocity": _velocity(vs),
    "max_r_hat_sigma_vbulk": r_hat,
    "fold_shape": list(obs.fold.shape),
})
