"""Batch fitting (issue 6 item 4): N fakeit spectra of ULX-4 in one compiled, vmapped
maximum-likelihood + Laplace fit.

    .venv/bin/python benchmarks/batch.py [--n 1000] [--seed 0]

Draws N Poisson spectra of tbabs*(powerlaw+bbodyrad) folded through the packaged
ULX-4 EPIC-pn response (0.5-10 keV, file grouping, no background) at fixed truths,
fits them all with :func:`jxspec_nb.inference.fit_batch`, and reports throughput
(first call including compilation, second call compiled) and, per parameter, the
pulls (best - truth) / error: their mean and sd, and how often |pull| < 1.
Writes benchmarks/_out/batch.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

TRUTH = {
    "tbabs.nH": 0.095,
    "powerlaw.PhoIndex": 2.03,
    "powerlaw.norm": 2.6e-4,
    "bbodyrad.kT": 0.74,
    "bbodyrad.norm": 0.196,
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--screen", type=int, default=64)
    parser.add_argument("--starts", type=int, default=2)
    parser.add_argument("--steps", type=int, default=12)
    args = parser.parse_args()

    from jxspec_nb import datasets
    from jxspec_nb.__main__ import DEMO_MODEL
    from jxspec_nb.data import fakeit
    from jxspec_nb.inference import fit_batch, model_with_priors

    obs = datasets.load("ngc7793_ulx4", bkg=None)
    spec = model_with_priors(DEMO_MODEL)
    flux = np.asarray(spec.model.evaluate(TRUTH, obs.e_lo, obs.e_hi))
    rng = np.random.default_rng(args.seed)
    fakes = [fakeit(obs, flux, seed=rng, background=False) for _ in range(args.n)]

    t0 = time.perf_counter()
    first = fit_batch(spec, fakes, seed=args.seed, screen=args.screen, starts=args.starts,
                      steps=args.steps)  # + compile
    first_wall = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = fit_batch(spec, fakes, seed=args.seed + 1, screen=args.screen, starts=args.starts,
                    steps=args.steps)
    second_wall = time.perf_counter() - t0

    out = {
        "n_spectra": args.n,
        "first_call_s": first_wall,
        "compile_s": first.compile_seconds,
        "devices": __import__("jax").local_device_count(),
        "compiled_call_s": second_wall,
        "spectra_per_s_compiled": args.n / second_wall,
        "spectra_per_s_first": args.n / first_wall,
        "median_cstat": float(np.median(res.statistic)),
        "parameters": {},
    }
    truths = np.array([TRUTH[n] for n in res.names])
    ok = np.all(np.isfinite(res.errors) & (res.errors > 0), axis=1)
    pulls = (res.best[ok] - truths) / res.errors[ok]
    for k, name in enumerate(res.names):
        out["parameters"][name] = {
            "truth": float(truths[k]),
            "median_best": float(np.median(res.best[:, k])),
            "pull_mean": float(np.mean(pulls[:, k])),
            "pull_sd": float(np.std(pulls[:, k])),
            "frac_within_1sigma": float(np.mean(np.abs(pulls[:, k]) < 1)),
        }
    out["n_finite_errors"] = int(ok.sum())
    dest = Path(__file__).resolve().parent / "_out"
    dest.mkdir(exist_ok=True)
    (dest / "batch.json").write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
