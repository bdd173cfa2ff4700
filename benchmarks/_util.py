"""Stdlib-only helpers shared by both sides of the benchmark (jaxspec venv and ours).

Each benchmark script runs in a fresh interpreter, records its phases with
:class:`Clock`, and finishes with :func:`emit`, which writes one JSON document to
the path given as the script's ``--out`` argument (and prints a one-line digest).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
ULX4_DIR = REPO / "jxspec_nb" / "datasets" / "ngc7793_ulx4"
SHARED_DATA = Path(os.environ.get("JXSPEC_SHARED_DATA", REPO.parent / "shared" / "data"))
OUT_DIR = HERE / "_out"

#: ULX-4 problem of issue 4: 0.5-10 keV, file grouping, no background, and the priors
#: of the jaxspec paper's Appendix A cookbook.
ULX4_BAND = (0.5, 10.0)
ULX4_PRIORS = {
    # our name: (distribution, low, high) ; jaxspec name in jaxspec_side/common.py
    "tbabs.nH": ("Uniform", 0.0, 1.0),
    "powerlaw.PhoIndex": ("Uniform", 0.0, 3.0),
    "powerlaw.norm": ("LogUniform", 1e-5, 1e-1),
    "bbodyrad.kT": ("Uniform", 0.0, 3.0),
    "bbodyrad.norm": ("LogUniform", 1e-3, 1.0),
}
#: parameter values at which model values / gradients are compared (near the posterior)
ULX4_POINT = {
    "tbabs.nH": 0.12,
    "powerlaw.PhoIndex": 1.6,
    "powerlaw.norm": 2.0e-4,
    "bbodyrad.kT": 0.8,
    "bbodyrad.norm": 0.25,
}

#: settings shared by both sides for problem (c)
METHOD_CONFIG = {
    "aies": {"chains": 32, "warmup": 1000, "samples": 1000},
    "ns": {"live_points": 1000, "samples": 1000},
    "vi": {"steps": 10_000, "samples": 1000, "lr": 5e-4},
}

T_START = time.perf_counter()


def parse_args(extra: dict[str, Any] | None = None) -> argparse.Namespace:
    """``--out PATH`` plus ``--quick`` and any extra ``--name value`` options."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--quick", action="store_true")
    for name, default in (extra or {}).items():
        parser.add_argument(f"--{name}", type=type(default), default=default)
    return parser.parse_args()


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class Clock:
    """Named wall-clock phases: ``with clock("setup"): ...``.

    ``ends`` holds the time on the system's monotonic clock (``time.monotonic()``,
    shared by all processes and not moved by wall-clock adjustments) at which each phase
    last ended: run.py subtracts its own launch time from ``ends["summary"]`` to get the
    time from launching the process to the printed summary (the issues' "whole process
    from import to printed summary", without the benchmark's own bookkeeping
    afterwards). (The wall clock, used before, stepped by 7 s during one run of
    session12_methods on this virtual machine.)
    """

    def __init__(self) -> None:
        self.phases: dict[str, float] = {}
        self.ends: dict[str, float] = {}
        self._name: str | None = None

    def __call__(self, name: str) -> Clock:
        self._name = name
        return self

    def __enter__(self) -> Clock:
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._name is not None
        self.phases[self._name] = self.phases.get(self._name, 0.0) + (
            time.perf_counter() - self._t0
        )
        self.ends[self._name] = time.monotonic()


class CompileMeter:
    """Sums JAX's own compile-duration events (trace + lower + backend compile).

    Registered once per process; ``total`` grows as JAX compiles. Nested traces may
    be counted twice, so treat the trace part as an upper bound; ``backend`` alone is
    XLA's compile time.
    """

    def __init__(self) -> None:
        import jax.monitoring as monitoring

        self.trace = 0.0
        self.lower = 0.0
        self.backend = 0.0
        self.count = 0

        def listener(event: str, duration: float, **_: Any) -> None:
            if event == "/jax/core/compile/jaxpr_trace_duration":
                self.trace += duration
            elif event == "/jax/core/compile/jaxpr_to_mlir_module_duration":
                self.lower += duration
            elif event == "/jax/core/compile/backend_compile_duration":
                self.backend += duration
                self.count += 1

        monitoring.register_event_duration_secs_listener(listener)

    @property
    def total(self) -> float:
        return self.trace + self.lower + self.backend

    def snapshot(self) -> dict[str, float]:
        return {
            "trace_s": self.trace,
            "lower_s": self.lower,
            "backend_s": self.backend,
            "total_s": self.total,
            "n_compiles": self.count,
        }


def in_loop_us(fn: Any, arg: Any, n: int = 2000, blocks: int = 7) -> dict[str, float]:
    """Cost of ``fn(arg)`` inside one compiled loop, as a sampler sees it (no dispatch).

    ``fn`` returns a pytree (e.g. value and gradient); ``n`` evaluations run in a
    ``lax.fori_loop`` whose carry perturbs the argument and consumes every output
    leaf, so nothing is hoisted or dropped. The minimum over ``blocks`` runs of the
    loop, divided by ``n``, is reported (both sides use this same function).
    """
    import jax
    import jax.numpy as jnp

    def loop(a: Any) -> Any:
        def body(i: Any, c: Any) -> Any:
            out = fn(jax.tree.map(lambda x: x + 1e-12 * c, a))
            return c + sum(jnp.sum(leaf) for leaf in jax.tree.leaves(out)) * 1e-30
        return jax.lax.fori_loop(0, n, body, jnp.zeros(()))

    run = jax.jit(loop)
    jax.block_until_ready(run(arg))
    times = []
    for _ in range(blocks):
        t0 = time.perf_counter()
        jax.block_until_ready(run(arg))
        times.append(time.perf_counter() - t0)
    times.sort()
    return {"in_loop_us": 1e6 * times[0] / n, "in_loop_median_us": 1e6 * times[len(times) // 2] / n}


def transcendentals(fn: Any, arg: Any, grid_size: int) -> dict[str, float]:
    """XLA's count of transcendental operations (exp, log, pow, ...) in ``jit(fn)(arg)``,
    and what one float64 exponential costs in a compiled loop over ``grid_size``
    elements (the size of the model's elementwise fusions). Their product is the time
    the compiled program must spend in transcendentals whatever else is done."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    analysis = jax.jit(fn).lower(arg).compile().cost_analysis()
    if isinstance(analysis, list):  # older jax: one dict per program
        analysis = analysis[0]
    count = float(analysis.get("transcendentals", float("nan")))
    x = jnp.asarray(np.linspace(-1.0, 2.0, grid_size))
    exp_us = in_loop_us(lambda a: jnp.exp(a * x), jnp.asarray(0.3))["in_loop_us"]
    ns_per_exp = 1e3 * exp_us / grid_size
    return {"count": count, "exp_ns": ns_per_exp, "floor_us": count * ns_per_exp / 1e3}


def versions(*names: str) -> dict[str, str]:
    from importlib import metadata

    out = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


def emit(path: Path, payload: dict[str, Any]) -> None:
    """Write the JSON result (adds process wall time so far and peak RSS)."""
    payload = dict(payload)
    payload.setdefault("process_s_in_script", time.perf_counter() - T_START)
    payload.setdefault("peak_rss_mb", peak_rss_mb())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=1, default=_jsonable))
    print(f"[bench] wrote {path}", file=sys.stderr)


def _jsonable(x: Any) -> Any:
    try:
        import numpy as np

        if isinstance(x, np.ndarray):
            return x.tolist()
        if isinstance(x, np.generic):
            return x.item()
    except ImportError:  # pragma: no cover
        pass
    return str(x)
