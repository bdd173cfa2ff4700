"""Lowered NUTS programs kept across processes (jax.export): the second process does not
trace the sampler or the log density, and samples exactly what the first did."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from jxspec_nb.inference import model_with_priors
from jxspec_nb.inference._synthetic import ToyModel, toy_observation

SPEC = """tbabs*powerlaw
tbabs.nH ~ Uniform(0, 1)
powerlaw.PhoIndex ~ Uniform(0, 3)
powerlaw.norm ~ LogUniform(1e-5, 0.1)
"""

SCRIPT = """
import json, sys
from pathlib import Path
from jxspec_nb import datasets
from jxspec_nb.inference import fit, model_with_priors, trace_counts
obs = datasets.load("ngc7793_ulx4", band=(0.5, 10), bkg=None)
opts = (dict(chains=2, warmup=80, samples=60, chunk=40, kernel=sys.argv[4])
        if sys.argv[3] == "nuts" else dict(steps=300, samples=100))
res = fit(model_with_priors(sys.argv[1]), obs, method=sys.argv[3], seed=3, progress=False,
          **opts)
stored = sorted(p.name.split(".", 1)[1] for p in Path(sys.argv[2]).rglob("*.jxexport"))
print(json.dumps({"counts": trace_counts(), "stored": stored,
                  "nH": res.draws.posterior["tbabs.nH"].tolist(),
                  "compile": res.timings.get("compile"),
                  "numpyro_imported": "numpyro" in sys.modules,
                  "pandas_imported": "pandas" in sys.modules}))
"""


def _run(cache, method="nuts", spec=SPEC, kernel="native"):
    env_code = f"import os; os.environ['JXSPEC_NB_CACHE'] = {str(cache)!r}\n"
    out = subprocess.run([sys.executable, "-c", env_code + SCRIPT, spec, str(cache), method,
                          kernel],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("kernel", ["native", "numpyro"])
def test_second_process_reads_the_programs_back_and_samples_the_same(tmp_path, kernel):
    """The native kernel stores one program (its initial state comes from the host),
    numpyro's two."""
    cache = tmp_path / "cache"
    first = _run(cache, kernel=kernel)
    assert first["counts"].get("log_density", 0) >= 1  # traced here
    # what summary() needs was imported while the step compiled (not after the fit)
    assert first["pandas_imported"]
    assert first["stored"] == (["init.jxexport"] if kernel == "numpyro" else []) + [
        "pointwise.jxexport", "step.jxexport"]
    second = _run(cache, kernel=kernel)
    assert second["counts"].get("log_density", 0) == 0  # read back: nothing traced
    assert second["counts"].get("pointwise", 0) == 0
    assert not second["numpyro_imported"]  # numpyro's kernels are not even built
    assert np.array_equal(second["nH"], first["nH"])
    # damaged files are dropped and traced afresh, with the same draws
    for path in cache.rglob("*.jxexport"):
        path.write_bytes(b"not a program")
    third = _run(cache, kernel=kernel)
    assert third["counts"].get("log_density", 0) >= 1
    assert np.array_equal(third["nH"], first["nH"])
    assert all(p.stat().st_size > 1000 for p in cache.rglob("*.jxexport"))


def test_vi_programs_and_mode_search_are_read_back(tmp_path):
    """VI: the SVI init, step and draw programs and the value-and-gradient of the mode
    search are stored; a second process traces nothing and gets the same draws."""
    cache = tmp_path / "cache"
    first = _run(cache, "vi")
    assert first["counts"].get("log_density", 0) >= 1
    assert first["stored"] == ["draw.jxexport", "init.jxexport", "pointwise.jxexport",
                               "step.jxexport", "value_and_grad_flat.jxexport"]
    second = _run(cache, "vi")
    assert second["counts"].get("log_density", 0) == 0
    assert second["counts"].get("pointwise", 0) == 0
    assert not second["numpyro_imported"]  # the guide and SVI are not even built
    assert np.array_equal(second["nH"], first["nH"])


def test_mle_programs_are_read_back(tmp_path):
    """MLE: the statistic's value-and-gradient and Hessian are stored; a second process
    traces nothing and finds the same optimum."""
    cache = tmp_path / "cache"
    first = _run(cache, "mle")
    assert first["counts"].get("loglik_values", 0) >= 1
    assert {"mle_nll_vg.jxexport", "mle_hessian.jxexport"} <= set(first["stored"])
    second = _run(cache, "mle")
    assert second["counts"].get("loglik_values", 0) == 0
    assert second["counts"].get("pointwise", 0) == 0
    assert np.array_equal(second["nH"], first["nH"])


def test_program_key_names_everything_the_program_depends_on(monkeypatch, tmp_path):
    from jxspec_nb import datasets
    from jxspec_nb.inference import _exported
    from jxspec_nb.inference.compile import enable_persistent_cache, get_problem

    enable_persistent_cache()
    obs = datasets.load("ngc7793_ulx4", band=(0.5, 10), bkg=None)
    narrow = datasets.load("ngc7793_ulx4", band=(1.0, 8.0), bkg=None)
    what = ("nuts", (100, 50, True, 0.8, 10), 2, "sequential")

    def key(text, o=obs, stat="cstat", w=what):
        prob, data = get_problem(model_with_priors(text), [o], stat=stat)
        return _exported.program_key(prob, data, w)

    base = key(SPEC)
    assert base is not None and base == key(SPEC)
    others = [key(SPEC.replace("Uniform(0, 3)", "Uniform(0, 3.5)")),  # a prior
              key(SPEC.replace("tbabs.nH ~ Uniform(0, 1)", "tbabs.nH = 0.05")),  # fixed
              key(SPEC, o=narrow),  # another grid and channel set
              key(SPEC, stat="chi2"),
              key(SPEC, w=("nuts", (100, 50, False, 0.8, 10), 2, "sequential"))]
    assert len({base, *others}) == 1 + len(others)
    # models with code from outside the package are never stored
    toy = ToyModel()
    prob, data = get_problem(model_with_priors(toy, {"toyabs.nH": "Uniform(0, 2)",
                                                     "powerlaw.PhoIndex": "Uniform(0, 4)",
                                                     "powerlaw.norm": "LogUniform(1e-5, 1)"}),
                             [toy_observation(toy, {"toyabs.nH": 0.5, "powerlaw.PhoIndex": 1.8,
                                                    "powerlaw.norm": 1e-3}, seed=1)])
    assert _exported.program_key(prob, data, what) is None
    monkeypatch.setenv("JXSPEC_NB_CACHE", "off")
    prob, data = get_problem(model_with_priors(SPEC), [obs])
    assert _exported.program_key(prob, data, what) is None


@pytest.mark.parametrize("name", ["init", "step"])
def test_load_ignores_missing_programs(name):
    from jxspec_nb.inference import _exported

    assert _exported.load(None, name) is None
    assert _exported.load("0" * 40, name) is None
