"""(a) jaxspec 0.4.1: ULX-4 NUTS, 4 chains x (warmup + samples), whole process.

``--n-points N`` sets jaxspec's quadrature points per bin (default 2, jaxspec's).
Phases: import, setup (data + model + fitter), the MCMC run split into JAX compile
time (JAX's own compile events) and sampling, post-processing (jaxspec's
predictive / log-likelihood pass inside ``fit``), and the printed summary.
"""

from __future__ import annotations

import time

import common  # noqa: F401  (sets sys.path and the pooch cache)
from common import _util

args = _util.parse_args({"chains": 4, "warmup": 1000, "samples": 1000, "seed": 0,
                         "n_points": 2})
if args.quick:
    args.warmup, args.samples = 300, 300
clock = _util.Clock()

with clock("import"):
    common.setup_jax(args.chains)
    import arviz as az
    import jax
    import numpyro
    from jaxspec.fit import MCMCFitter

    meter = _util.CompileMeter()

with clock("setup"):
    obs = common.ulx4_obsconf()
    # n_points: jaxspec's per-bin quadrature (default 2); the reference run for the
    # posterior-agreement check uses more, so that its model is converged
    fitter = MCMCFitter(common.ulx4_model(), common.ulx4_prior(), obs, n_points=args.n_points)

# time MCMC.run itself (compile + sampling) inside jaxspec's fit
_run = numpyro.infer.MCMC.run
mcmc_wall: dict[str, float] = {}


def _timed_run(self, *a, **k):
    k.setdefault("extra_fields", ("num_steps", "diverging"))
    c0, t0 = meter.total, time.perf_counter()
    out = _run(self, *a, **k)
    jax.block_until_ready((self.get_samples(), self.get_extra_fields()))
    mcmc_wall["run"] = time.perf_counter() - t0
    mcmc_wall["compile"] = meter.total - c0
    mcmc_wall["n_steps"] = float(self.get_extra_fields()["num_steps"].mean())
    mcmc_wall["divergences"] = int(self.get_extra_fields()["diverging"].sum())
    return out


numpyro.infer.MCMC.run = _timed_run

with clock("fit"):
    result = fitter.fit(
        rng_key=args.seed,
        num_chains=args.chains,
        num_warmup=args.warmup,
        num_samples=args.samples,
        mcmc_kwargs={"progress_bar": False},
    )

with clock("summary"):
    print(az.summary(result.inference_data, var_names=list(common.JAXSPEC_NAMES.values())))

sampling = mcmc_wall["run"] - mcmc_wall["compile"]
_util.emit(
    args.out,
    {
        "side": "jaxspec",
        "problem": "ulx4_nuts",
        "config": vars(args) | {"out": str(args.out), "chain_method": "parallel (4 host devices)"},
        "phases": clock.phases,
        "phase_end_monotonic": clock.ends,
        "mcmc_run_s": mcmc_wall["run"],
        "compile_s": mcmc_wall["compile"],
        "sampling_s": sampling,
        "postprocess_s": clock.phases["fit"] - mcmc_wall["run"],
        "mean_steps_per_iter": mcmc_wall["n_steps"],
        "divergences": mcmc_wall["divergences"],
        "compile_detail": meter.snapshot(),
        "posterior": common.posterior_stats(result.inference_data, sampling),
        "versions": _util.versions("jax", "jaxlib", "numpyro", "jaxspec", "arviz"),
    },
)
