"""Benchmark of the Hitomi SXS Perseus nine-line problem (issue 7), standalone.

Runs each case in a fresh interpreter (so its wall time includes imports, data
loading and every JAX compilation) and writes one JSON document::

    .venv/bin/python benchmarks/perseus.py                 # -> benchmarks/_out/perseus.json
    .venv/bin/python benchmarks/perseus.py --quick         # 10^4 VI steps, 4 x (300 + 300)
    .venv/bin/python benchmarks/perseus.py --cases vi      # only one case

Cases (all start from :func:`jxspec_nb.highres.perseus_init`):

* ``vi``: 10^5 adamw steps (learning rate 5e-4, the paper's), multivariate-normal guide;
* ``nuts``: 4 chains x (1000 warm-up + 1000 draws), dense mass matrix;
* ``joint``: NUTS 4 x (1000 + 1000) of SXS + Resolve (cross-normalisation, gain, offset).

Each case records wall time (process start to result), the fit's own phase
timings, compile time seen by JAX, peak RSS, sigma_v / v_bulk in km/s, the largest
R-hat, the machine's load average before and after, and whether the persistent
compilation cache was cold (a fresh temporary folder; default) or warm
(``--cache warm``: the same folder, filled by a first untimed run).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
OUT = HERE / "_out" / "perseus.json"
SHARED = Path(os.environ.get("JXSPEC_SHARED_DATA", REPO.parent / "shared" / "data"))


def _case(name: str, quick: bool, seed: int) -> dict:
    """Run one case in this process; return its JSON record."""
    t_start = time.perf_counter()
    import resource

    compile_s = {"backend": 0.0, "trace": 0.0}
    import jax.monitoring as monitoring

    def listener(event: str, duration: float, **_: object) -> None:
        if event == "/jax/core/compile/backend_compile_duration":
            compile_s["backend"] += duration
        elif event == "/jax/core/compile/jaxpr_trace_duration":
            compile_s["trace"] += duration

    monitoring.register_event_duration_secs_listener(listener)

    from jxspec_nb.highres import (
        load_perseus_resolve,
        load_perseus_sxs,
        perseus_init,
        perseus_spec,
        velocity_summary,
    )
    from jxspec_nb.inference import fit

    obs = [load_perseus_sxs(SHARED)]
    if name == "joint":
        obs.append(load_perseus_resolve(SHARED))
        spec = perseus_spec(observations=["sxs", "resolve"])
    else:
        spec = perseus_spec()
    init = perseus_init(spec, obs)
    if name == "vi":
        kw = {"method": "vi", "steps": 10_000 if quick else 100_000, "optimizer": "adamw",
              "learning_rate": 5e-4, "guide": "mvn", "samples": 2000,
              "num_particles": 1}
    else:
        n = 300 if quick else 1000
        kw = {"method": "nuts", "chains": 4, "warmup": n, "samples": n}
    t_fit = time.perf_counter()
    result = fit(spec, obs if len(obs) > 1 else obs[0], seed=seed, progress=False, init=init,
                 **kw)
    fit_wall = time.perf_counter() - t_fit
    vs = velocity_summary(result)
    summary = result.summary()
    record = {
        "case": name,
        "fit_kwargs": kw,
        "wall_s": time.perf_counter() - t_start,
        "fit_wall_s": fit_wall,
        "fit_timings": result.timings,
        "jax_compile_s": compile_s,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "velocity_km_s": vs.as_dict(),
        "max_r_hat": float(summary["r_hat"].max()),
        "r_hat_sigma": float(summary.loc["vbroad.Sigma", "r_hat"]),
        "fold_shapes": [list(o.fold.shape) for o in obs],
        "n_free": len(spec.free_names),
    }
    if result.elbo is not None:
        e = result.elbo
        record["elbo_last1000_mean"] = float(e[-1000:].mean())
        record["elbo_curve_every_1000"] = e[::1000].tolist()
    if "mean_leapfrog_steps" in result.extra:
        record["mean_leapfrog_steps"] = result.extra["mean_leapfrog_steps"]
        record["divergences"] = int(summary.attrs.get("divergences", -1))
    if name == "joint":
        record["instrument"] = {k: float(summary.loc[k, "median"]) for k in summary.index
                                if "[" in k}
    return record


def _spawn(name: str, quick: bool, seed: int, cache_dir: str) -> dict:
    env = dict(os.environ, JAX_ENABLE_X64="1", JAX_PLATFORMS="cpu",
               JXSPEC_NB_CACHE=cache_dir)
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, __file__, "--one", name, "--seed", str(seed)]
        + (["--quick"] if quick else []),
        env=env, capture_output=True, text=True, cwd=REPO)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        return {"case": name, "error": proc.stderr[-3000:], "process_wall_s": wall}
    rec = json.loads(proc.stdout.strip().splitlines()[-1])
    rec["process_wall_s"] = wall
    rec["loadavg_before"] = load_before
    rec["loadavg_after"] = os.getloadavg()
    return rec


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--cases", default="vi,nuts,joint")
    ap.add_argument("--cache", choices=("cold", "warm"), default="cold")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(_case(args.one, args.quick, args.seed), default=float))
        return
    import jax
    import numpy as np

    records = []
    with tempfile.TemporaryDirectory(prefix="jxspec_perseus_cache_") as cache:
        for name in args.cases.split(","):
            if args.cache == "warm":  # fill the persistent cache first (untimed)
                _spawn(name, args.quick, args.seed, cache)
                rec = _spawn(name, args.quick, args.seed, cache)
            else:
                with tempfile.TemporaryDirectory(prefix="cold_") as fresh:
                    rec = _spawn(name, args.quick, args.seed, fresh)
            rec["cache"] = args.cache
            records.append(rec)
            print(f"[perseus] {name}: wall {rec.get('process_wall_s', float('nan')):.1f} s, "
                  f"sigma_v {rec.get('velocity_km_s', {}).get('sigma_v', {}).get('median')}"
                  f" {'ERROR' if 'error' in rec else ''}", file=sys.stderr)
    payload = {
        "problem": "Hitomi SXS Perseus (100040040), 6.49-6.61 keV, 5 eV Gaussian RMF, "
                   "nine-line model of jaxspec paper App. B (jxspec_nb.highres)",
        "quick": args.quick,
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                    "processor": platform.processor(), "python": platform.python_version(),
                    "jax": jax.__version__, "numpy": np.__version__,
                    "backend": jax.default_backend()},
        "targets": {"vi_wall_s": 15.0, "nuts_wall_s": 15.0, "nuts_r_hat": 1.01},
        "cases": records,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=1, default=float))
    print(f"[perseus] wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
