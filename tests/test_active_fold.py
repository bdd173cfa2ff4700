"""Low-count spectra: the samplers fold only the channels with counts (the others
through their column sums), with the same log-density and gradient."""

import dataclasses

import numpy as np
import pytest

from jxspec_nb.inference import fit, model_with_priors
from jxspec_nb.inference._synthetic import ToyModel, toy_observation
from jxspec_nb.inference.compile import Problem, get_problem

TRUTH = {"toyabs.nH": 0.5, "powerlaw.PhoIndex": 1.8, "powerlaw.norm": 1e-3}
PRIORS = {"toyabs.nH": "Uniform(0, 2)", "powerlaw.PhoIndex": "Uniform(0, 4)",
          "powerlaw.norm": "LogUniform(1e-5, 1)"}


def _full(prob, obs):
    """The same problem with every channel folded (no active-rows layout)."""
    layouts = tuple(dataclasses.replace(lay, active=None) for lay in prob.layouts)
    return Problem(prob.spec, layouts, prob.stat, prob.bkg_spec, [(obs.e_lo, obs.e_hi)])


@pytest.mark.parametrize("background", [None, 0.02])
def test_active_rows_give_the_same_log_density_and_gradient(background):
    import jax.numpy as jnp

    model = ToyModel()
    obs = toy_observation(model, TRUTH, n_chan=400, exposure=1000.0, seed=3,
                          background_rate=background)
    spec = model_with_priors(model, PRIORS)
    prob, data = get_problem(spec, [obs])
    lay, d = prob.layouts[0], data[0]
    active = obs.counts > 0
    if background is not None:
        assert lay.background == "wstat"
        active |= obs.background > 0
    n_active = int(active.sum())
    assert 8 < n_active < 100  # a low-count spectrum: most channels are empty
    size = d["act_counts"].shape[0]
    assert lay.active == (False, ()) and size >= n_active and size & (size - 1) == 0
    assert float(np.sum(d["act_counts"])) == float(obs.counts.sum())
    full = _full(prob, obs)
    for x in ([0.5, 1.8, 1e-3], [0.05, 3.5, 2e-5], [1.9, 0.3, 0.5]):
        u = jnp.asarray(prob.u_from_values(np.array(x), data))
        v, g = prob.value_and_grad(u, data)
        v_ref, g_ref = full.value_and_grad(u, data)
        assert float(v) == pytest.approx(float(v_ref), abs=1e-6 * max(1.0, abs(float(v_ref))))
        assert np.allclose(np.asarray(g), np.asarray(g_ref), rtol=1e-5, atol=1e-6)
        # nested sampling's likelihood takes the same path
        xv = jnp.asarray(x)
        ll_ref = float(full._loglik_values_total(xv, data, fast=True))
        assert float(prob._loglik_values_total(xv, data, fast=True)) == pytest.approx(
            ll_ref, abs=1e-6 * max(1.0, abs(ll_ref)))


def test_active_rows_only_when_they_save_work():
    model = ToyModel()
    spec = model_with_priors(model, PRIORS)
    bright = toy_observation(model, TRUTH, n_chan=400, exposure=1e4, seed=3)
    prob, data = get_problem(spec, [bright])
    assert prob.layouts[0].active is None and "act_counts" not in data[0]
    # chi2 and a Bayesian background have terms in every channel
    faint = toy_observation(model, TRUTH, n_chan=400, exposure=1000.0, seed=3,
                            background_rate=0.02)
    for kw in ({"stat": "chi2"}, {"background": "bayesian"}):
        prob, _ = get_problem(spec, [faint], **kw)
        assert prob.layouts[0].active is None, kw


def test_faint_spectra_of_one_source_share_the_problem():
    """Padding to a power of two: two faint spectra with different empty channels
    have one layout (one compiled log-density), and a fit on them agrees with the
    truth."""
    model = ToyModel()
    spec = model_with_priors(model, PRIORS)
    a = toy_observation(model, TRUTH, n_chan=400, exposure=1000.0, seed=4)
    b = toy_observation(model, TRUTH, n_chan=400, exposure=1000.0, seed=5)
    assert not np.array_equal(a.counts > 0, b.counts > 0)
    pa, da = get_problem(spec, [a])
    pb, db = get_problem(spec, [b])
    assert pa is pb and da[0]["act_counts"].shape == db[0]["act_counts"].shape
    res = fit(spec, a, chains=2, warmup=300, samples=300, seed=0, progress=False)
    s = res.summary()
    for name, value in TRUTH.items():
        assert abs(s.loc[name, "median"] - value) < 3 * s.loc[name, "sd"], name
    assert s["r_hat"].max() < 1.05
