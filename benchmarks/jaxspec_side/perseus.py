"""(d) jaxspec 0.4.1: the Hitomi SXS Perseus nine-line problem, VI and NUTS.

The same problem as jxspec_side/perseus.py, from the inputs it writes with
``--prepare`` (``--problem PATH`` to its ``perseus_problem.json``): the SXS spectrum
and ARF, the same 5 eV Gaussian RMF as an OGIP file, the 6.49-6.61 keV band, the
nine lines, every prior and the same start. jaxspec 0.4.1 has no velocity
broadening or shift operators, so the nine lines are one user component
(``NineLines``, an ``AdditiveComponent`` as jaxspec's docs describe) computing
exactly what jxspec_nb's ``vbroad(zashift(vashift(gaussian x 9))) + constadd`` does:
observed energy E (1 - v/c) / (1 + z), width Sigma x that energy, bin integrals
from the normal CDF; the baseline is jaxspec's ``Additiveconstant``.

``--method vi``: 10^5 adamw steps at 5e-4 decayed tenfold, one ELBO particle,
multivariate-normal guide started at the same point; ``--method nuts``: 4 chains x
(1000 + 1000) from the same start (jaxspec's default chain method, 4 host devices).
"""

from __future__ import annotations

import json
from pathlib import Path

import common
from common import _util

args = _util.parse_args({"method": "vi", "seed": 0, "problem": ""})
problem = json.loads(Path(args.problem).read_text())
LINES = [(lab, float(e)) for lab, e in problem["lines"]]
C_KM_S = 299792.458
clock = _util.Clock()

with clock("import"):
    common.setup_jax(4)
    import flax.nnx as nnx
    import jax.numpy as jnp
    import numpy as np
    import numpyro
    import numpyro.distributions as dist
    from jax.scipy.special import ndtr
    from jaxspec.data import ObsConfiguration
    from jaxspec.fit import MCMCFitter, VIFitter
    from jaxspec.model.abc import AdditiveComponent
    from jaxspec.model.additive import Additiveconstant

    meter = _util.CompileMeter()


class NineLines(AdditiveComponent):
    """Nine Gaussian lines with a common velocity broadening, redshift and bulk shift."""

    def __init__(self):
        self.Sigma = nnx.Param(6e-4)
        self.Redshift = nnx.Param(0.017284)
        self.Velocity = nnx.Param(0.0)
        for lab, energy in LINES:
            setattr(self, f"E_{lab}", nnx.Param(energy))
            setattr(self, f"norm_{lab}", nnx.Param(1e-4))

    def integrated_continuum(self, e_low, e_high):
        shift = (1.0 - self.Velocity / C_KM_S) / (1.0 + self.Redshift)
        total = 0.0
        for lab, _ in LINES:
            centre = getattr(self, f"E_{lab}") * shift
            width = self.Sigma * centre
            cdf = ndtr((e_high - centre) / width) - ndtr((e_low - centre) / width)
            total = total + getattr(self, f"norm_{lab}") * cdf
        return total


def their_name(ours: str) -> str:
    comp, par = ours.split(".")
    if comp == "constadd":
        return "spectrum.additiveconstant_1.norm"
    if comp in ("vbroad", "zashift", "bulk"):
        return f"spectrum.ninelines_1.{par}"
    return f"spectrum.ninelines_1.{'E' if par == 'LineE' else 'norm'}_{comp}"


def prior_of(kind: str, a: list, low, high):
    if kind == "TruncatedNormal":
        return dist.TruncatedNormal(a[0], a[1], low=low, high=high)
    return getattr(dist, kind)(*a)


with clock("setup"):
    lo, hi = problem["band"]
    obs = ObsConfiguration.from_pha_file(problem["pha"], rmf_path=problem["rmf"],
                                         arf_path=problem["arf"], low_energy=lo,
                                         high_energy=hi)
    model = NineLines() + Additiveconstant()
    prior = {their_name(n): prior_of(*v) for n, v in problem["priors"].items()}
    cls = VIFitter if args.method == "vi" else MCMCFitter
    fitter = cls(model, prior, obs)
    start = {their_name(n): jnp.asarray(v) for n, v in problem["init"].items()
             if n in problem["priors"]}

extra: dict = {"noticed_groups": int(np.asarray(obs.folded_counts).shape[-1]),
               "expected_groups": problem["noticed_groups"]}
with clock("fit"):
    from numpyro.infer.initialization import init_to_value

    if args.method == "vi":
        import optax
        from numpyro.infer.autoguide import AutoMultivariateNormal

        steps = 25_000 if args.quick else 100_000
        guide = AutoMultivariateNormal(fitter.transformed_numpyro_model,
                                       init_loc_fn=init_to_value(values=start),
                                       init_scale=0.1)
        result = fitter.fit(rng_key=args.seed, num_steps=steps, num_samples=2000,
                            optimizer=numpyro.optim.optax_to_numpyro(
                                optax.adamw(optax.exponential_decay(5e-4, steps, 0.1))),
                            guide=guide, svi_kwargs={"progress_bar": False})
    else:
        n = 300 if args.quick else 1000
        result = fitter.fit(rng_key=args.seed, num_chains=4, num_warmup=n, num_samples=n,
                            kernel_kwargs={"init_strategy": init_to_value(values=start)},
                            mcmc_kwargs={"progress_bar": False})

post = result.inference_data.posterior
fit_s = clock.phases["fit"]


def key_of(ours: str) -> str:
    name = their_name(ours)
    for k in (name, name.removeprefix("spectrum.")):
        if k in post:
            return k
    raise KeyError(f"{name} not in the posterior: {list(post.keys())[:5]} ...")


sigma = np.asarray(post[key_of("vbroad.Sigma")]) * C_KM_S
vbulk = np.asarray(post[key_of("bulk.Velocity")])
velocity = {}
for label, arr in (("sigma_v", sigma), ("v_bulk", vbulk)):
    flat = arr.reshape(-1)
    q16, q50, q84 = np.quantile(flat, [0.16, 0.5, 0.84])
    velocity[label] = {"median": q50, "q16": q16, "q84": q84, "mean": flat.mean(),
                       "sd": flat.std()}
if args.method == "nuts":
    import arviz as az

    extra["max_r_hat"] = max(float(az.rhat(np.asarray(post[key_of(n)])))
                             for n in problem["priors"])
    stats = getattr(result.inference_data, "sample_stats", None)  # jaxspec keeps none
    if stats is not None and "diverging" in stats:
        extra["divergences"] = int(np.asarray(stats["diverging"]).sum())
    extra["min_ess_bulk"] = min(float(az.ess(np.asarray(post[key_of(n)]), method="bulk"))
                                for n in problem["priors"])
print(velocity, extra)
_util.emit(
    args.out,
    {
        "side": "jaxspec",
        "problem": f"perseus_sxs_{args.method}",
        "phases": clock.phases,
        "phase_end_monotonic": clock.ends,
        "compile_s": meter.total,
        "velocity": velocity,
        "extra": extra,
        "fit_s": fit_s,
        "versions": _util.versions("jax", "numpyro", "jaxspec"),
    },
)
