"""(c) jxspec_nb: AIES, nested sampling (jaxns 3) and VI on ULX-4, plus MLE.

``--method aies|ns|vi|mle``; settings from ``_util.METHOD_CONFIG`` (the same as
the jaxspec side: 32 walkers x (1000 + 1000); 10^4 VI steps), each method's own
defaults otherwise (NS: jaxns 3's live points; VI: adam 5e-3 decayed, from the mode).
"""

from __future__ import annotations

import common
from common import _util

args = _util.parse_args({"method": "aies", "seed": 0})
cfg = dict(_util.METHOD_CONFIG.get(args.method, {}))
if args.quick:
    cfg = {k: (v // 4 if isinstance(v, int) and k != "chains" else v) for k, v in cfg.items()}
clock = _util.Clock()

with clock("import"):
    from jxspec_nb import fit, model_with_priors

    meter = _util.CompileMeter()

with clock("setup"):
    obs = common.ulx4_observation()
    spec = model_with_priors(common.ULX4_SPEC)

kw: dict = {"method": args.method, "seed": args.seed, "progress": False}
if args.method == "aies":
    kw.update(chains=cfg["chains"], warmup=cfg["warmup"], samples=cfg["samples"])
elif args.method == "ns":
    kw.update(samples=cfg["samples"])  # jaxns 3 defaults (live points chosen by jaxns)
elif args.method == "vi":
    # same number of steps as jaxspec; our default optimiser (adam 5e-3, decayed)
    kw.update(steps=cfg["steps"], samples=cfg["samples"])
with clock("fit"):
    try:
        result = fit(spec, obs, **kw)
    except TypeError as exc:  # an option name the method does not take: its defaults
        print(f"[bench] {args.method}: {exc}; rerunning with the method's defaults")
        kw = {k: v for k, v in kw.items() if k in ("method", "seed", "progress")}
        result = fit(spec, obs, **kw)
with clock("summary"):
    print(result.summary())

fit_s = clock.phases["fit"]
payload = {
    "side": "jxspec_nb",
    "problem": f"ulx4_{args.method}",
    "config": cfg,
    "fit_kwargs": {k: v for k, v in kw.items() if k != "progress"},
    "phases": clock.phases,
        "phase_end_monotonic": clock.ends,
    "fit_timings": result.timings,
    "compile_s": meter.total,
    "compile_detail": meter.snapshot(),
    "extra": {"log_evidence": result.log_evidence, "log_evidence_err": result.log_evidence_err,
              "fit_statistic": result.fit_statistic, "dof": result.dof},
    "versions": _util.versions("jax", "numpyro", "jxspec_nb", "jaxns", "optax"),
}
if args.method != "mle":
    payload["posterior"] = common.posterior_stats(result, fit_s)
else:
    payload["best_fit"] = result.best_fit
_util.emit(args.out, payload)
