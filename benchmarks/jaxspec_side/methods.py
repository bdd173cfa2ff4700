"""(c) jaxspec 0.4.1: AIES, nested sampling (jaxns 2.6) and VI on ULX-4.

``--method aies|ns|vi``; settings from ``_util.METHOD_CONFIG`` (jaxspec's defaults
for NS and VI: 1000 live points, 10^4 Adam steps at 5e-4 with a multivariate-normal
guide).
"""

from __future__ import annotations

import common
from common import _util

args = _util.parse_args({"method": "aies", "seed": 0})
cfg = dict(_util.METHOD_CONFIG[args.method])
if args.quick:
    cfg = {k: (v // 4 if isinstance(v, int) and k != "chains" else v) for k, v in cfg.items()}
clock = _util.Clock()

with clock("import"):
    common.setup_jax(1)
    import jax  # noqa: F401
    from jaxspec.fit import MCMCFitter, NSFitter, VIFitter

    meter = _util.CompileMeter()

with clock("setup"):
    obs = common.ulx4_obsconf()
    cls = {"aies": MCMCFitter, "ns": NSFitter, "vi": VIFitter}[args.method]
    fitter = cls(common.ulx4_model(), common.ulx4_prior(), obs)

extra: dict = {}
with clock("fit"):
    if args.method == "aies":
        result = fitter.fit(
            rng_key=args.seed,
            sampler="aies",
            num_chains=cfg["chains"],
            num_warmup=cfg["warmup"],
            num_samples=cfg["samples"],
            mcmc_kwargs={"progress_bar": False, "chain_method": "vectorized"},
        )
    elif args.method == "ns":
        result = fitter.fit(
            rng_key=args.seed,
            num_live_points=cfg["live_points"],
            num_samples=cfg["samples"],
            verbose=False,
        )
        extra = {
            k: result.inference_data.attrs.get(k)
            for k in ("log_Z_mean", "log_Z_uncert", "total_num_likelihood_evaluations")
        }
    else:
        import numpyro

        result = fitter.fit(
            rng_key=args.seed,
            num_steps=cfg["steps"],
            num_samples=cfg["samples"],
            optimizer=numpyro.optim.Adam(step_size=cfg["lr"]),
            svi_kwargs={"progress_bar": False},
        )

with clock("summary"):  # the same printed table as our side's result.summary()
    import arviz as az

    print(az.summary(result.inference_data, var_names=list(common.JAXSPEC_NAMES.values())))

fit_s = clock.phases["fit"]
_util.emit(
    args.out,
    {
        "side": "jaxspec",
        "problem": f"ulx4_{args.method}",
        "config": cfg,
        "phases": clock.phases,
        "phase_end_monotonic": clock.ends,
        "compile_s": meter.total,
        "compile_detail": meter.snapshot(),
        "posterior": common.posterior_stats(result.inference_data, fit_s),
        "extra": extra,
        "versions": _util.versions("jax", "numpyro", "jaxspec", "jaxns"),
    },
)
