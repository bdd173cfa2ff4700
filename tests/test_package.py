import subprocess
import sys

import pytest

import jxspec_nb
from jxspec_nb import datasets
from jxspec_nb.errors import DataError, JxspecError, ModelError


def test_import_is_cheap():
    """`import jxspec_nb` must not pull in jax, numpyro or matplotlib."""
    code = (
        "import sys, jxspec_nb; "
        "mods = ('jax', 'numpyro', 'matplotlib', 'arviz', 'astropy'); "
        "heavy = [m for m in mods if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_lazy_attribute_unknown_name():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        jxspec_nb.nope  # noqa: B018


def test_error_hierarchy_messages():
    err = DataError("EXPOSURE must be > 0, got 0", path="a.pha", hdu="SPECTRUM", keyword="EXPOSURE")
    assert str(err) == "[a.pha, HDU 'SPECTRUM', EXPOSURE] EXPOSURE must be > 0, got 0"
    assert isinstance(err, JxspecError) and isinstance(err, ValueError)
    merr = ModelError("unknown component 'bbodyrd'", line=1, col=10, source="tbabs*(po+bbodyrd)",
                      suggestion="bbodyrad")
    assert str(merr) == "line 1, column 10: unknown component 'bbodyrd' (did you mean 'bbodyrad'?)"
    assert merr.pointer().splitlines()[1] == " " * 9 + "^"


def test_packaged_dataset_files_exist():
    ds = datasets.files("ngc7793_ulx4")
    for path in (ds.spectrum, ds.background, ds.rmf, ds.arf):
        assert path.is_file() and path.stat().st_size > 10_000
    with pytest.raises(DataError, match="unknown dataset 'm87'"):
        datasets.files("m87")


@pytest.mark.parametrize("env,expected", [
    ({}, "cores"),  # one CPU device per core (at most 8)
    ({"JXSPEC_NB_CPU_DEVICES": "1"}, "1"),  # opt out
    ({"XLA_FLAGS": "--xla_force_host_platform_device_count=3"}, "3"),  # the user's choice
])
def test_cpu_devices_one_per_core_unless_told_otherwise(env, expected):
    import os

    from jxspec_nb._jax import MAX_CPU_DEVICES, _cpu_count

    code = "import jxspec_nb._jax as j; print(j.jax.local_device_count())"
    full = {k: v for k, v in os.environ.items()
            if k not in ("JXSPEC_NB_CPU_DEVICES", "XLA_FLAGS")} | {"JAX_PLATFORMS": "cpu"} | env
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=full).stdout.split()[-1]
    want = str(min(_cpu_count(), MAX_CPU_DEVICES)) if expected == "cores" else expected
    assert out == want


@pytest.mark.parametrize("env,width,reduction", [
    ({}, "auto", True),  # 512-bit vectors where the CPU has AVX-512; sums not split
    ({"JXSPEC_NB_VECTOR_WIDTH": "512"}, "512", True),
    ({"JXSPEC_NB_VECTOR_WIDTH": "256"}, "", True),  # XLA's default width
    ({"JXSPEC_NB_XLA_TUNING": "off"}, "", False),  # neither
    ({"XLA_FLAGS": "--xla_cpu_prefer_vector_width=256"}, "user", True),  # the user's choice
    ({"XLA_FLAGS": "--xla_disable_hlo_passes=foo"}, "auto", "user"),
])
def test_cpu_compiler_flags(env, width, reduction):
    import ast
    import os

    from jxspec_nb._jax import _has_avx512

    code = ("import os, jxspec_nb._jax as j; j.jnp.ones(2).sum(); "
            "print(repr(os.environ.get('XLA_FLAGS', '')))")
    full = {k: v for k, v in os.environ.items()
            if k not in ("JXSPEC_NB_VECTOR_WIDTH", "JXSPEC_NB_XLA_TUNING", "XLA_FLAGS")}
    full |= {"JAX_PLATFORMS": "cpu"} | env
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=full).stdout.splitlines()[-1]
    flags = ast.literal_eval(out).split()
    if width == "auto":
        width = "512" if _has_avx512() else ""
    widths = [f for f in flags if "prefer_vector_width" in f]
    if width == "user":
        assert widths == ["--xla_cpu_prefer_vector_width=256"]
    elif width == "512":
        assert widths == ["--xla_cpu_prefer_vector_width=512"]
    else:
        assert widths == []
    passes = [f for f in flags if "disable_hlo_passes" in f]
    if reduction == "user":
        assert passes == ["--xla_disable_hlo_passes=foo"]
    elif reduction:
        assert passes == ["--xla_disable_hlo_passes=tree_reduction_rewriter"]
    else:
        assert passes == []


def _child_flag(env: dict, expr: str, option: str) -> tuple[str, list[str]]:
    """In a fresh process with ``env``: the printed value of ``expr`` (a JAX computation,
    so that XLA starts and reads its options) and the values ``XLA_FLAGS`` gives
    ``option`` there."""
    import os

    code = (f"import os, jxspec_nb._jax as j; print({expr}); "
            "print(os.environ.get('XLA_FLAGS', ''))")
    full = {k: v for k, v in os.environ.items() if k not in ("JXSPEC_NB_XLA_TUNING", "XLA_FLAGS")}
    full |= {"JAX_PLATFORMS": "cpu"} | env
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=full).stdout.splitlines()
    return out[-2], [f.split("=")[1] for f in out[-1].split() if option in f]


@pytest.mark.parametrize("env,expected", [
    ({}, "auto"),  # added where jaxlib is a version known to take the option
    ({"JXSPEC_NB_XLA_TUNING": "off"}, None),
    ({"XLA_FLAGS": "--xla_cpu_use_fusion_emitters=true"}, "true"),  # the user's choice
])
def test_fusion_emitter_flag_only_where_known(env, expected):
    """XLA stops the process on an option it does not know: the emitter option is
    added only for the jaxlib versions checked, and the process then runs."""
    from jxspec_nb._jax import _FUSION_EMITTER_FLAG_VERSIONS, _jaxlib_version

    value, got = _child_flag(env, "float(j.jnp.ones(3).sum())", "use_fusion_emitters")
    assert value == "3.0"
    if expected == "auto":
        expected = "false" if _jaxlib_version() in _FUSION_EMITTER_FLAG_VERSIONS else None
    assert got == ([] if expected is None else [expected])


@pytest.mark.parametrize("env,expected", [
    ({}, "auto"),
    ({"JXSPEC_NB_XLA_TUNING": "off"}, None),
    ({"XLA_FLAGS": "--xla_cpu_experimental_ynn_fusion_type=LIBRARY_FUSION_TYPE_DOT"},
     "LIBRARY_FUSION_TYPE_DOT"),  # the user's choice
])
def test_ynn_fusions_limited_to_dots_where_known(env, expected):
    """YNNPACK gets single matrix products only (its elementwise fusions ran a batched
    model slower), on the jaxlib versions known to take the option; the process runs."""
    from jxspec_nb._jax import _YNN_FLAG_VERSIONS, _jaxlib_version

    value, got = _child_flag(
        env, "float(j.jax.vmap(lambda a: a @ a)(j.jnp.ones((2, 3, 3))).sum())", "ynn_fusion_type")
    assert value == "54.0"
    if expected == "auto":
        expected = ("LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT"
                    if _jaxlib_version() in _YNN_FLAG_VERSIONS else None)
    assert got == ([] if expected is None else [expected])


def test_unsplit_sums_keep_their_precision():
    """The CPU compiler runs without its tree-reduction pass here (jxspec_nb._jax):
    sums of float32 and float64 values must stay as accurate as numpy's."""
    import numpy as np

    from jxspec_nb._jax import jax, jnp

    rng = np.random.default_rng(3)
    for n in (1490, 100_000):
        x = rng.random(n).astype(np.float32)
        exact = np.sum(x.astype(np.float64))
        assert abs(float(jax.jit(jnp.sum)(x)) / exact - 1) < 2e-7
        x64 = rng.standard_normal(n) + 10.0
        assert abs(float(jax.jit(jnp.sum)(x64)) / np.sum(x64) - 1) < 1e-13
