"""(a) jxspec_nb: ULX-4 NUTS, 4 chains x (warmup + samples), whole process.

Same phases as jaxspec_side/nuts.py: import, setup (data + model + priors),
fit (compile from JAX's compile events, sampling from the fit's own timer),
post-processing and the printed summary. ``JXSPEC_NB_CACHE`` (set by run.py)
selects a cold or warm persistent compilation cache.
"""

from __future__ import annotations

import common
from common import _util

args = _util.parse_args({"chains": 4, "warmup": 1000, "samples": 1000, "seed": 0,
                          "start": "auto"})
if args.quick:
    args.warmup, args.samples = 300, 300
clock = _util.Clock()

with clock("import"):
    import jxspec_nb
    from jxspec_nb import fit, model_with_priors

    meter = _util.CompileMeter()

with clock("setup"):
    obs = common.ulx4_observation()
    spec = model_with_priors(common.ULX4_SPEC)

with clock("fit"):
    result = fit(spec, obs, method="nuts", chains=args.chains, warmup=args.warmup,
                 samples=args.samples, seed=args.seed, progress=False,
                 start=args.start)

with clock("summary"):
    print(result.summary())

t = result.timings
sampling = t.get("sampling", float("nan"))
_util.emit(
    args.out,
    {
        "side": "jxspec_nb",
        "problem": "ulx4_nuts",
        "config": vars(args) | {"out": str(args.out)},
        "phases": clock.phases,
        "phase_end_monotonic": clock.ends,
        "fit_timings": t,
        "compile_s": meter.total,
        "compile_detail": meter.snapshot(),
        "sampling_s": sampling,
        "mean_steps_per_iter": result.extra.get("mean_leapfrog_steps"),
        "divergences": int(result.idata.sample_stats["diverging"].values.sum()),
        "posterior": common.posterior_stats(result, sampling),
        "versions": _util.versions("jax", "jaxlib", "numpyro", "jxspec_nb", "arviz"),
        "jxspec_nb_file": jxspec_nb.__file__,
    },
)
