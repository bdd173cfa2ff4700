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

Four XLA settings for the CPU, added to ``XLA_FLAGS`` before JAX starts its
backends (measured on ULX-4, 2-core Xeon with AVX-512; ``benchmarks/RESULTS.md``):

- on CPUs with AVX-512, 512-bit vectors (``--xla_cpu_prefer_vector_width=512``;
  XLA's default is 256): 41.6 -> 36.8 microseconds;
- without an accelerator plugin installed, XLA's ``tree_reduction_rewriter`` pass
  off (``--xla_disable_hlo_passes=tree_reduction_rewriter``): the CPU compiler
  splits each sum of a few thousand elements into three kernels (windows of 32,
  then their sums, then the total), and the gradient of a spectral model is such
  sums, one per parameter: 67 -> 43 kernels, 36.8 -> 31.0 microseconds, and
  compiles ~15 % faster. Large sums are not split either way; sums of ~1500
  float32 values measured as accurate without it (2e-8 against 6e-8 relative);
- with jaxlib 0.6-0.10 (releases whose libraries define the option, timed with 0.10;
  an option XLA does not know stops the process, so other versions go without it
  until checked) and no accelerator plugin, XLA's older LLVM emitters for fused
  loops instead of its MLIR fusion emitters (``--xla_cpu_use_fusion_emitters=false``):
  programs compile in about 30-40 % less time and run as fast (NUTS step 1.28 -> 0.89
  s to compile, 32 -> 30 microseconds a leapfrog step; the NUTS fit of a new problem
  5.2 -> 4.3 s; exp, log, expm1, erfc, lgamma unchanged to the last bit on 42 000
  arguments). jaxns' depth loop is the exception (6.3 -> 8.8 s, while jaxns' other
  programs compile in half the time): nested sampling compiles that one program with
  the fusion emitters on (a per-program option; ``inference.methods.nested``).
- with jaxlib 0.9-0.10 and no accelerator plugin, YNNPACK (XLA's CPU library
  backend) for single matrix products only
  (``--xla_cpu_experimental_ynn_fusion_type=LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT``):
  by default XLA also hands it fusions of elementwise operations and reductions,
  which it runs slower than XLA's own loops once a model is batched (``vmap``): the
  ULX-4 likelihood over 25 points at once 24 -> 14 microseconds a point, nested
  sampling (which evaluates 25 points at a time) 24.5 -> 17.8 s warm and 40.4 ->
  33.7 s cold, AIES 6.7 -> 5.8 s, ``fit_batch`` 58 -> 86 spectra/s; single
  evaluations (NUTS) unchanged.

``XLA_FLAGS_ADDED`` lists what this process added.

Sums then round in a different order (relative changes ~1e-8 in a log-likelihood).
``JXSPEC_NB_XLA_TUNING=off`` adds none; ``JXSPEC_NB_VECTOR_WIDTH=256`` keeps
XLA's vector width only; a setting of the same option in ``XLA_FLAGS`` is left alone.
All are CPU compiler options, written into this process's ``XLA_FLAGS``: processes it
starts inherit them.
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


_ACCELERATOR_PLUGINS = ("jax_cuda12_plugin", "jax_cuda13_plugin", "jax_rocm60_plugin",
                        "jax_rocm7_plugin", "libtpu", "jax_plugins")


def _accelerator_plugin() -> bool:
    """True when a GPU or TPU plugin for JAX is installed (its compiler has its own
    reduction passes: leave them alone)."""
    import importlib.util

    if os.environ.get("JAX_PLATFORMS", "").strip().lower() == "cpu":
        return False
    return any(importlib.util.find_spec(name) is not None for name in _ACCELERATOR_PLUGINS)


# jaxlib (major, minor) releases known to take --xla_cpu_use_fusion_emitters: 0.9.2 and
# 0.10.2 run with it; the libraries of 0.6.2, 0.7.2 and 0.8.3 (and 0.5.3) define it
_FUSION_EMITTER_FLAG_VERSIONS = {(0, 6), (0, 7), (0, 8), (0, 9), (0, 10)}
# ... and --xla_cpu_experimental_ynn_fusion_type: 0.10.2 runs with it, 0.9.2 defines it
_YNN_FLAG_VERSIONS = {(0, 9), (0, 10)}
_YNN_DOTS_ONLY = "--xla_cpu_experimental_ynn_fusion_type=LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT"


def _jaxlib_version() -> tuple[int, int] | None:
    """(major, minor) of the jaxlib that ``import jax`` loaded."""
    import jaxlib

    try:
        major, minor = str(jaxlib.__version__).split(".")[:2]
        return int(major), int(minor)
    except (AttributeError, ValueError):
        return None


def configure_cpu_codegen() -> list[str]:
    """Add the CPU compiler settings of the module docstring to ``XLA_FLAGS``.

    Returns the flags added: none when JAX's backends already started or
    ``JXSPEC_NB_XLA_TUNING=off``; each one unless the user set that option.
    """
    flags = os.environ.get("XLA_FLAGS", "")
    if os.environ.get("JXSPEC_NB_XLA_TUNING", "").strip().lower() in ("off", "0", "no"):
        return []
    try:
        from jax._src import xla_bridge

        if xla_bridge.backends_are_initialized():
            return []
    except (ImportError, AttributeError):
        return []
    added = []
    width = os.environ.get("JXSPEC_NB_VECTOR_WIDTH", "").strip()
    if "xla_cpu_prefer_vector_width" not in flags and width not in ("256", "0", "default") \
            and (width == "512" or _has_avx512()):
        added.append("--xla_cpu_prefer_vector_width=512")
    plugin = _accelerator_plugin()
    if "xla_disable_hlo_passes" not in flags and not plugin:
        added.append("--xla_disable_hlo_passes=tree_reduction_rewriter")
    if "xla_cpu_use_fusion_emitters" not in flags and not plugin \
            and _jaxlib_version() in _FUSION_EMITTER_FLAG_VERSIONS:
        added.append("--xla_cpu_use_fusion_emitters=false")
    if "xla_cpu_experimental_ynn_fusion_type" not in flags and not plugin \
            and _jaxlib_version() in _YNN_FLAG_VERSIONS:
        added.append(_YNN_DOTS_ONLY)
    if added:
        os.environ["XLA_FLAGS"] = " ".join([flags, *added]).strip()
    return added


XLA_FLAGS_ADDED = configure_cpu_codegen()  # what this process added to XLA_FLAGS

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
