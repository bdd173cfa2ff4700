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


@pytest.mark.parametrize("env,expected", [
    ({}, "auto"),  # 512-bit vectors where the CPU has AVX-512
    ({"JXSPEC_NB_VECTOR_WIDTH": "512"}, "512"),
    ({"JXSPEC_NB_VECTOR_WIDTH": "256"}, ""),  # opt out: XLA's default
    ({"XLA_FLAGS": "--xla_cpu_prefer_vector_width=256"}, "user"),  # the user's choice
])
def test_vector_width_flag(env, expected):
    import ast
    import os

    from jxspec_nb._jax import _has_avx512

    code = ("import os, jxspec_nb._jax as j; j.jnp.ones(2).sum(); "
            "print(repr(os.environ.get('XLA_FLAGS', '')))")
    full = {k: v for k, v in os.environ.items()
            if k not in ("JXSPEC_NB_VECTOR_WIDTH", "XLA_FLAGS")} | {"JAX_PLATFORMS": "cpu"} | env
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=full).stdout.splitlines()[-1]
    flags = ast.literal_eval(out)
    if expected == "auto":
        expected = "512" if _has_avx512() else ""
    if expected == "user":
        assert flags == "--xla_cpu_prefer_vector_width=256"
    elif expected == "512":
        assert flags.split().count("--xla_cpu_prefer_vector_width=512") == 1
    else:
        assert "prefer_vector_width" not in flags
