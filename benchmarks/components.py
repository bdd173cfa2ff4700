"""What each spectral component costs inside a fit (jxspec_nb only).

    .venv/bin/python benchmarks/components.py [--repeat 300]

For every additive component X (and every multiplicative M) the NUTS potential of
``tbabs*(powerlaw + X)`` (``M*powerlaw``) on the ULX-4 EPIC-pn response (0.5-10 keV,
2067 model bins, file grouping): its value and gradient per call from Python, the
way a sampler's host loop or scipy calls it (dispatch included), after one call that
compiles. Components are evaluated at every quadrature node or bin edge of the grid
at every step, so this is the number to watch when writing one. Prints a markdown
table and writes benchmarks/_out/components.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

ADDITIVE = {
    "bbodyrad": "bbodyrad.kT ~ Uniform(0.1, 3)",
    "bbody": "bbody.kT ~ Uniform(0.1, 3)",
    "zbbody": "zbbody.kT ~ Uniform(0.1, 3)",
    "diskbb": "diskbb.Tin ~ Uniform(0.1, 3)",
    "cutoffpl": "cutoffpl.PhoIndex ~ Uniform(0, 3)\ncutoffpl.HighECut ~ Uniform(1, 100)",
    "bknpower": "bknpower.PhoIndx1 ~ Uniform(0, 3)\nbknpower.BreakE ~ Uniform(1, 8)\n"
                "bknpower.PhoIndx2 ~ Uniform(0, 3)",
    "logpar": "logpar.alpha ~ Uniform(0, 3)\nlogpar.beta ~ Uniform(-1, 1)",
    "grbm": "grbm.alpha ~ Uniform(-2, 0)\ngrbm.beta ~ Uniform(-4, -2.1)\n"
            "grbm.tem ~ Uniform(1, 300)",
    "bremss": "bremss.kT ~ Uniform(0.1, 30)",
    "gaussian": "gaussian.LineE ~ Uniform(6, 7)\ngaussian.Sigma ~ Uniform(0.01, 0.5)",
    "lorentz": "lorentz.LineE ~ Uniform(6, 7)\nlorentz.Width ~ Uniform(0.01, 0.5)",
}
MULTIPLICATIVE = {
    "tbabs": "tbabs.nH ~ Uniform(0, 1)",
    "phabs": "phabs.nH ~ Uniform(0, 1)",
    "wabs": "wabs.nH ~ Uniform(0, 1)",
    "ztbabs (fixed z)": "ztbabs.nH ~ Uniform(0, 1)\nztbabs.Redshift = 0.1",
    "ztbabs (free z)": "ztbabs.nH ~ Uniform(0, 1)\nztbabs.Redshift ~ Uniform(0, 0.2)",
    "highecut": "highecut.cutoffE ~ Uniform(1, 10)\nhighecut.foldE ~ Uniform(1, 50)",
    "gabs": "gabs.LineE ~ Uniform(5, 7)\ngabs.Sigma ~ Uniform(0.01, 1)\n"
            "gabs.Strength ~ Uniform(0, 1)",
    "zedge": "zedge.edgeE ~ Uniform(5, 8)\nzedge.MaxTau ~ Uniform(0, 2)",
    "cabs": "cabs.nH ~ Uniform(0, 1)",
    "expabs": "expabs.LowECut ~ Uniform(0, 2)",
}
BASE = ("powerlaw.PhoIndex ~ Uniform(0, 3)\n"
        "powerlaw.norm ~ LogUniform(1e-5, 1e-1)\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=300)
    args = parser.parse_args()

    from jxspec_nb import datasets, model_with_priors
    from jxspec_nb._jax import jax, jnp
    from jxspec_nb.inference.compile import get_problem

    obs = datasets.load("ngc7793_ulx4", bkg=None, band=(0.5, 10.0))
    rows = []
    cases = [(f"tbabs*(powerlaw + {c})", c,
              "tbabs.nH ~ Uniform(0, 1)\n" + BASE + f"{c}.norm ~ LogUniform(1e-5, 1)\n" + p)
             for c, p in ADDITIVE.items()]
    cases += [(f"{m.split()[0]}*powerlaw", m, BASE + p) for m, p in MULTIPLICATIVE.items()]
    for expr, label, priors in cases:
        problem, data = get_problem(model_with_priors(f"{expr}\n{priors}"), [obs])
        u = jnp.asarray(problem.initial_u())
        vg = jax.jit(jax.value_and_grad(problem._log_density))
        jax.block_until_ready(vg(u, data))
        best = float("inf")
        for _ in range(3):  # best of three rounds
            t0 = time.perf_counter()
            for _ in range(args.repeat):
                out = vg(u, data)
            jax.block_until_ready(out)
            best = min(best, (time.perf_counter() - t0) / args.repeat)
        rows.append({"model": expr, "component": label, "vg_us": best * 1e6})
        print(f"| `{expr}` | {label} | {best * 1e6:.1f} us |", flush=True)
    out = HERE / "_out"
    out.mkdir(exist_ok=True)
    (out / "components.json").write_text(json.dumps(
        {"rows": rows, "versions": {"jax": jax.__version__}}, indent=1))


if __name__ == "__main__":
    main()
