"""Command line: ``python -m jxspec_nb demo`` fits the packaged ULX-4 spectrum."""

from __future__ import annotations

import argparse
import sys
import time

DEMO_MODEL = """
tbabs*(powerlaw + bbodyrad)
tbabs.nH ~ Uniform(0, 1)
powerlaw.PhoIndex ~ Uniform(0, 3)
powerlaw.norm ~ LogUniform(1e-5, 1e-1)
bbodyrad.kT ~ Uniform(0, 3)
bbodyrad.norm ~ LogUniform(1e-3, 1)
"""


def demo(argv: list[str] | None = None) -> int:
    """Load NGC 7793 ULX-4 (EPIC-pn, 0.5-10 keV), print it, fit it with NUTS."""
    parser = argparse.ArgumentParser(prog="python -m jxspec_nb demo")
    parser.add_argument("--method", default="nuts", help="nuts, aies, ns, vi or mle")
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from jxspec_nb import datasets

    t0 = time.perf_counter()
    obs = datasets.load("ngc7793_ulx4", bkg=None)
    print(obs)
    print(f"loaded in {time.perf_counter() - t0:.2f} s\n")

    from jxspec_nb.inference import fit, model_with_priors

    spec = model_with_priors(DEMO_MODEL)
    print(spec)
    result = fit(
        spec,
        obs,
        method=args.method,
        chains=args.chains,
        warmup=args.warmup,
        samples=args.samples,
        seed=args.seed,
    )
    print(result)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help"}:
        print("usage: python -m jxspec_nb demo [--method nuts] [--chains 4] ...")
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "demo":
        return demo(rest)
    print(f"unknown command {command!r}; the only command is 'demo'", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
