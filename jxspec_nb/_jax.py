"""The one place where jxspec_nb imports JAX, with float64 enabled.

Every module that computes with JAX imports ``jax`` and ``jnp`` from here, so
that double precision is switched on before the first array is created::

    from jxspec_nb._jax import jax, jnp

    x = jnp.asarray(1.0)
    assert x.dtype == jnp.float64

It also gives the CPU one JAX device per core (at most 8), when JAX has not
started its backends yet: NUTS chains then run in parallel, one group of chains
per core (measured 2.6x faster sampling with 2 devices on 2 cores than all chains
on one). ``JXSPEC_NB_CPU_DEVICES=1`` keeps JAX's single CPU device; a user's own
``XLA_FLAGS=--xla_force_host_platform_device_count=N`` or ``jax_num_cpu_devices``
setting is left alone. Nothing changes when JAX was already in use.

On CPUs with AVX-512 it asks XLA for 512-bit vectors
(``--xla_cpu_prefer_vector_width=512``; XLA's default is 256): the ULX-4 potential's
value and gradient then takes 36.8 instead of 41.6 microseconds and a NUTS leapfrog
step about 10 % less (2-core Xeon with AVX-512; ``benchmarks/RESULTS.md``). Sums over
bins then round in a different order (relative changes ~1e-8 in a log-likelihood).
``JXSPEC_NB_VECTOR_WIDTH=256`` (or any ``xla_cpu_prefer_vector_width`` in
``XLA_FLAGS``) keeps XLA's choice.
"""

from __future__ import annotations

import os

import jax

jax.config.update("jax_enable_x64", True)

MAX_CPU_DEVICES = 8


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


def configure_cpu_devices() -> int:
    """Ask JAX for one CPU device per core (see the module docstring).

    Returns the number requested, or 0 when the setting was left as it was.
    """
    env = os.environ.get("JXSPEC_NB_CPU_DEVICES", "").strip()
    if "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", ""):
        return 0
    try:
        from jax._src import xla_bridge

        if xla_bridge.backends_are_initialized() or jax.config.jax_num_cpu_devices != -1:
            return 0
        n = int(env) if env else min(_cpu_count(), MAX_CPU_DEVICES)
    except (ImportError, AttributeError, ValueError):
        return 0
    if n < 2:
        return 0
    jax.config.update("jax_num_cpu_devices", n)
    return n


configure_cpu_devices()


def _has_avx512() -> bool:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return "avx512f" in line.split()
    except OSError:  # not Linux: leave XLA's default
        pass
    return False


def configure_cpu_codegen() -> str | None:
    """Ask XLA for 512-bit vectors on AVX-512 CPUs (see the module docstring).

    Returns the flag added to ``XLA_FLAGS``, or None when nothing changed (JAX's
    backends already started, the user chose, or the CPU lacks AVX-512).
    """
    flags = os.environ.get("XLA_FLAGS", "")
    width = os.environ.get("JXSPEC_NB_VECTOR_WIDTH", "").strip()
    if "xla_cpu_prefer_vector_width" in flags or width in ("256", "0", "default"):
        return None
    try:
        from jax._src import xla_bridge

        if xla_bridge.backends_are_initialized():
            return None
    except (ImportError, AttributeError):
        return None
    if width != "512" and not _has_avx512():
        return None
    flag = "--xla_cpu_prefer_vector_width=512"
    os.environ["XLA_FLAGS"] = f"{flags} {flag}".strip()
    return flag


configure_cpu_codegen()

import jax.numpy as jnp  # noqa: E402
import jax.scipy.special as jsp  # noqa: E402

__all__ = ["jax", "jnp", "jsp", "is_concrete"]


def is_concrete(*arrays: object) -> bool:
    """True when none of ``arrays`` is a JAX tracer (their values are known now).

    Example:
        >>> import numpy as np
        >>> is_concrete(np.zeros(3))
        True
    """
    return not any(isinstance(a, jax.core.Tracer) for a in arrays)
