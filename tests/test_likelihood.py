"""Fit statistics against hand computations, and the joint-fit parameter plumbing."""

import numpy as np
import pytest
from scipy.optimize import minimize_scalar
from scipy.special import gammaln

from jxspec_nb.errors import FitError
from jxspec_nb.inference import likelihood as lk
from jxspec_nb.inference import model_with_priors
from jxspec_nb.inference._synthetic import ToyModel, toy_observation
from jxspec_nb.inference.compile import get_problem

D = np.array([0.0, 1.0, 3.0, 10.0, 25.0])
M = np.array([0.4, 1.5, 2.0, 12.0, 20.0])


def test_cstat_is_xspec_cash():
    ll, dev, expected = lk.cstat(D, M)
    xspec = 2 * np.sum(M - D + np.where(D > 0, D * np.log(np.where(D > 0, D, 1) / M), 0))
    assert float(dev.sum()) == pytest.approx(xspec, rel=1e-12)
    assert np.allclose(ll, D * np.log(M) - M - gammaln(D + 1))
    assert np.array_equal(np.asarray(expected), M)


def test_wstat_profiles_the_background():
    bkg = np.array([0.0, 2.0, 5.0, 1.0, 30.0])
    ratio = np.array([0.2, 0.2, 0.5, 0.1, 1.3])
    ll, dev, total = lk.wstat(D, bkg, M, ratio)
    for i in range(D.size):
        # maximise the joint Poisson likelihood over the background rate numerically
        def nll(b, i=i):
            mu_s, mu_b = M[i] + ratio[i] * b, b
            return -(D[i] * np.log(mu_s) - mu_s + (bkg[i] * np.log(mu_b) if bkg[i] else 0) - mu_b)
        res = minimize_scalar(nll, bounds=(1e-12, 100), method="bounded",
                              options={"xatol": 1e-12})
        b_hat = float(lk.profile_background(D[i], bkg[i], M[i], ratio[i]))
        assert b_hat == pytest.approx(res.x, abs=1e-5)
        assert float(total[i]) == pytest.approx(M[i] + ratio[i] * b_hat)
    # XSPEC's W-stat in its own notation (ts = 1, tb = 1 / ratio, model rate = M)
    ts, tb = 1.0, 1.0 / ratio
    S, B, m = D, bkg, M
    d = np.sqrt(((ts + tb) * m - S - B) ** 2 + 4 * (ts + tb) * B * m)
    f = (S + B - (ts + tb) * m + d) / (2 * (ts + tb))
    f = np.where(B == 0, np.maximum(S / (ts + tb) - m, 0.0), f)
    w = 2 * (ts * m + (ts + tb) * f - np.where(S > 0, S * np.log(ts * m + ts * f), 0)
             - np.where(B > 0, B * np.log(tb * f + 1e-300), 0)
             - np.where(S > 0, S * (1 - np.log(np.where(S > 0, S, 1))), 0)
             - np.where(B > 0, B * (1 - np.log(np.where(B > 0, B, 1))), 0))
    assert float(dev.sum()) == pytest.approx(float(w.sum()), rel=1e-9)


def test_wstat_gradient_is_finite_far_from_the_data():
    """A model far below the data over empty background bins (a sampler's start from
    the prior): finite gradients, equal to finite differences (they were NaN, and
    NUTS chains started there never moved)."""
    import jax
    import jax.numpy as jnp

    src = jnp.array([12.0, 30.0, 7.0, 0.0, 5.0])
    bkg = jnp.array([0.0, 0.0, 3.0, 0.0, 1.0])
    ratio = jnp.array([0.13, 0.13, 0.13, 0.13, 0.13])

    def total(mu):
        return jnp.sum(lk.wstat(src, bkg, mu, ratio)[0])

    for mu in (jnp.array([0.01, 0.02, 0.05, 0.0, 0.3]), jnp.array([11.0, 29.0, 8.0, 0.1, 4.0]),
               jnp.full(5, 1e-3)):
        g = np.asarray(jax.grad(total)(mu))
        assert np.all(np.isfinite(g))
        for i in range(mu.size):
            h = 1e-6 * max(float(mu[i]), 1e-3)
            if float(mu[i]) - h <= 0:
                continue
            e = jnp.zeros(mu.size).at[i].set(h)
            fd = (float(total(mu + e)) - float(total(mu - e))) / (2 * h)
            assert g[i] == pytest.approx(fd, rel=1e-5, abs=1e-6)


def test_chi2_data_and_model_variance():
    var = np.maximum(D, 1.0)
    ll, dev, _ = lk.chi2(D, M, var)
    assert float(dev.sum()) == pytest.approx(np.sum((D - M) ** 2 / var))
    assert np.allclose(ll, -0.5 * ((D - M) ** 2 / var + np.log(2 * np.pi * var)))
    ll, dev, _ = lk.chi2(D, M, None)
    assert float(dev.sum()) == pytest.approx(np.sum((D - M) ** 2 / M))


def test_poisson_background_given_rates():
    bkg, rate, ratio = np.array([4.0, 0.0]), np.array([3.5, 0.2]), 0.25
    ll, dev, total = lk.poisson_background(D[:2], bkg, M[:2], ratio * rate, rate)
    ref = sum(d * np.log(m) - m - gammaln(d + 1)
              for d, m in [*zip(D[:2], M[:2] + ratio * rate), *zip(bkg, rate)])
    assert float(ll.sum()) == pytest.approx(ref)


@pytest.fixture(scope="module")
def toy():
    model = ToyModel()
    truth = {"toyabs.nH": 0.5, "powerlaw.PhoIndex": 1.8, "powerlaw.norm": 1e-3}
    return model, truth


def test_problem_log_density_by_hand(toy):
    model, truth = toy
    obs = toy_observation(model, truth, seed=3)
    spec = model_with_priors(model, {"toyabs.nH": "Uniform(0, 2)",
                                     "powerlaw.PhoIndex": "Uniform(0, 4)",
                                     "powerlaw.norm": "LogUniform(1e-5, 1)"})
    prob, data = get_problem(spec, [obs])
    x = np.array([0.4, 1.9, 2e-3])
    u = prob.u_from_values(x, data)
    mu = obs.fold @ np.asarray(model.evaluate(dict(zip(spec.free_names, x)), obs.e_lo, obs.e_hi))
    ll_hand = np.sum(obs.counts * np.log(mu) - mu - gammaln(obs.counts + 1))
    assert float(prob.loglik_values(x, data)) == pytest.approx(ll_hand, rel=1e-10)
    pw = prob.pointwise(np.asarray([u]), data)
    assert float(pw["statistic"][0]) == pytest.approx(
        2 * np.sum(mu - obs.counts + np.where(obs.counts > 0, obs.counts * np.log(
            np.where(obs.counts > 0, obs.counts, 1) / mu), 0)), rel=1e-10)
    assert np.allclose(pw["values"][0], x)
    assert prob.dof == obs.counts.size - 3
    # the samplers' path folds in single precision: same log-likelihood to ~1e-7
    fast = float(prob._loglik_values_total(x, data, fast=True))
    assert fast == pytest.approx(ll_hand, rel=1e-6) and fast != float(ll_hand)
    assert data[0]["fold_fast"].dtype == np.float32 if "fold_fast" in data[0] else \
        data[0]["fold0_fast"].dtype == np.float32


def test_joint_fit_overrides_cross_factor_gain_and_ties(toy):
    model, truth = toy
    a = toy_observation(model, truth, seed=1, name="a")
    b = toy_observation(model, truth, seed=2, name="b")
    spec = model_with_priors(model, {
        "toyabs.nH": "Uniform(0, 2)", "powerlaw.PhoIndex": "Uniform(0, 4)",
        "powerlaw.norm": "LogUniform(1e-5, 1)",
        "powerlaw.PhoIndex[b]": "1.1 * powerlaw.PhoIndex",
        "cross.factor[1]": "Uniform(0.5, 1.5)",
        "gain.slope[b]": 1.02, "gain.offset[b]": 0.01,
    })
    prob, data = get_problem(spec, [a, b])
    assert prob.names == ("toyabs.nH", "powerlaw.PhoIndex", "powerlaw.norm", "cross.factor[1]")
    x = np.array([0.4, 1.9, 2e-3, 0.8])
    free = dict(zip(prob.names, x))
    pa, ia = prob.evals[0].params(free)
    pb, ib = prob.evals[1].params(free)
    assert float(pa["powerlaw.PhoIndex"]) == 1.9 and ia["cross.factor"] == 1.0
    assert float(pb["powerlaw.PhoIndex"]) == pytest.approx(1.9 * 1.1)
    assert float(ib["cross.factor"]) == 0.8 and ib["gain.slope"] == 1.02
    flux_b = model.evaluate(pb, b.e_lo / 1.02 - 0.01, b.e_hi / 1.02 - 0.01)
    mu_b = 0.8 * (b.fold @ np.asarray(flux_b))
    mu_a = a.fold @ np.asarray(model.evaluate(pa, a.e_lo, a.e_hi))
    ref = sum(np.sum(o.counts * np.log(m) - m - gammaln(o.counts + 1))
              for o, m in ((a, mu_a), (b, mu_b)))
    assert float(prob.loglik_values(x, data)) == pytest.approx(ref, rel=1e-10)
    assert prob.dof == 2 * a.counts.size - 4
    bad = model_with_priors(model, {"toyabs.nH": 0.1, "powerlaw.PhoIndex": 2.0,
                                    "powerlaw.norm": "LogUniform(1e-5, 1)",
                                    "gain.slope[c]": 1.0})
    with pytest.raises(FitError, match=r"\[c\] matches no observation"):
        get_problem(bad, [a, b])


def test_background_modes(toy):
    model, truth = toy
    obs = toy_observation(model, truth, seed=4, background_rate=30.0, ratio=0.2)
    spec = model_with_priors(model, {"toyabs.nH": "Uniform(0, 2)",
                                     "powerlaw.PhoIndex": "Uniform(0, 4)",
                                     "powerlaw.norm": "LogUniform(1e-5, 1)"})
    x = np.array([0.4, 1.9, 2e-3])
    mu = obs.fold @ np.asarray(model.evaluate(dict(zip(spec.free_names, x)), obs.e_lo, obs.e_hi))
    prob, data = get_problem(spec, [obs])  # auto -> W-stat
    assert prob.layouts[0].background == "wstat"
    _, dev, _ = lk.wstat(obs.counts, obs.background, mu, obs.background_ratio)
    pw = prob.pointwise(np.asarray([prob.u_from_values(x, data)]), data)
    assert float(pw["statistic"][0]) == pytest.approx(float(dev.sum()), rel=1e-10)
    # Bayesian background: one rate per bin, sampled
    prob_b, data_b = get_problem(spec, [obs], background="bayesian")
    assert prob_b.dim == 3 + obs.counts.size and prob_b.dof == obs.counts.size - 3
    u = prob_b.u_from_values(x, data_b)
    rates = np.maximum(obs.background, 0.5)
    _, dev_b, _ = lk.poisson_background(obs.counts, obs.background, mu,
                                        obs.background_ratio * rates, rates)
    pwb = prob_b.pointwise(np.asarray([u]), data_b)
    assert float(pwb["statistic"][0]) == pytest.approx(float(dev_b.sum()), rel=1e-6)
    # chi2 with the background subtracted
    prob_c, data_c = get_problem(spec, [obs], stat="chi2")
    net = obs.counts - obs.background_ratio * obs.background
    var = np.maximum(obs.counts, 1) + obs.background_ratio ** 2 * np.maximum(obs.background, 1)
    pwc = prob_c.pointwise(np.asarray([prob_c.u_from_values(x, data_c)]), data_c)
    assert float(pwc["statistic"][0]) == pytest.approx(np.sum((net - mu) ** 2 / var))
    # a background spectral model (flat continuum) folded through the same response
    bspec = model_with_priors(model, {"toyabs.nH": 0.0, "powerlaw.PhoIndex": 0.0,
                                      "powerlaw.norm": "LogUniform(1e-8, 1)"})
    prob_m, data_m = get_problem(spec, [obs], background=bspec)
    assert prob_m.names[-1] == "bkg.powerlaw.norm"
    assert prob_m.dof == 2 * obs.counts.size - 4
    with pytest.raises(FitError, match="does not go with"):
        get_problem(spec, [obs], stat="chi2", background="bayesian")
    with pytest.raises(FitError, match="unknown stat"):
        get_problem(spec, [obs], stat="cash")


def test_wstat_nuts_on_chandra_converges_from_prior_draws(shared_data):
    """Chandra 3C 273 with its background (W-stat, the default): chains start from
    prior draws, some with a model far below the data; with NaN gradients there two
    of four chains never moved (R-hat 3)."""
    from jxspec_nb import fit, load_observation

    obs = load_observation(shared_data / "chandra_acis/3c273/3c273.pi", band=(0.5, 7.0))
    spec = model_with_priors("tbabs*powerlaw\ntbabs.nH ~ Uniform(0, 1)\n"
                             "powerlaw.PhoIndex ~ Uniform(0, 4)\n"
                             "powerlaw.norm ~ LogUniform(1e-5, 1)")
    res = fit(spec, obs, chains=4, warmup=300, samples=300, seed=0, progress=False)
    summary = res.summary()
    assert res.stat == "wstat"  # the background was profiled
    assert summary["r_hat"].max() < 1.02
    assert summary.loc["powerlaw.PhoIndex", "median"] == pytest.approx(2.05, abs=0.1)
