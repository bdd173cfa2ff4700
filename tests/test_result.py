"""FitResult: summary, InferenceData, save/load round trip, LOO/WAIC, fluxes, interrupts."""

import dataclasses
import warnings

import numpy as np
import pytest

from jxspec_nb.inference import fit, model_with_priors
from jxspec_nb.inference._synthetic import toy_observation
from jxspec_nb.results import FitResult, load_result
from jxspec_nb.results._diagnostics import ess_bulk, ess_tail, rhat

TRUTH = {"tbabs.nH": 0.5, "powerlaw.PhoIndex": 1.8, "powerlaw.norm": 1e-3}
SPEC = """tbabs*powerlaw
tbabs.nH ~ Uniform(0, 2)
powerlaw.PhoIndex ~ Uniform(0, 4)
powerlaw.norm ~ LogUniform(1e-5, 1)"""


@pytest.fixture(scope="module")
def result():
    spec = model_with_priors(SPEC)  # the real model on a small synthetic response
    obs = toy_observation(spec.model, TRUTH, seed=11, exposure=1e4)
    assert obs.counts.sum() > 300
    return fit(spec, obs, chains=4, warmup=500, samples=500, seed=1, progress=False)


def test_summary_table_and_text(result):
    s = result.summary()
    assert list(s.columns) == ["median", "q16", "q84", "mean", "sd", "r_hat", "ess_bulk",
                               "ess_tail"]
    assert list(s.index) == ["tbabs.nH", "powerlaw.PhoIndex", "powerlaw.norm"]
    assert s.attrs["divergences"] == 0
    assert (s["q16"] < s["median"]).all() and (s["median"] < s["q84"]).all()
    text = repr(result)
    assert "cstat = " in text and "/ 37 dof" in text and "powerlaw.PhoIndex" in text
    assert isinstance(result, FitResult) and result.method == "nuts"


def test_diagnostics_match_arviz(result):
    import arviz as az

    post = result.idata.posterior
    r, eb, et = az.rhat(post), az.ess(post, method="bulk"), az.ess(post, method="tail")
    for name in result.spec.free_names:
        x = result.draws.posterior[name]
        assert rhat(x) == pytest.approx(float(r[name]), abs=1e-8)
        assert ess_bulk(x) == pytest.approx(float(eb[name]), rel=1e-8)
        assert ess_tail(x) == pytest.approx(float(et[name]), rel=1e-8)


def test_inference_data_groups(result):
    idata = result.idata
    for group in ("posterior", "sample_stats", "log_likelihood", "posterior_predictive",
                  "observed_data"):
        assert group in idata.groups()
    assert idata.posterior["powerlaw.norm"].shape == (4, 500)
    assert idata.log_likelihood["counts"].shape == (4, 500, 40)
    assert idata.sample_stats["diverging"].dtype == bool
    assert np.array_equal(idata.observed_data["counts"].values, result.observed_counts(0))
    assert result.predicted_counts(0).shape == (2000, 40)
    assert result.predicted_counts(0, replicated=True).shape == (2000, 40)
    # replicated counts scatter around the expected ones
    rep = result.predicted_counts(0, replicated=True).mean(axis=0)
    assert np.allclose(rep, result.predicted_counts(0).mean(axis=0), rtol=0.2, atol=1.0)


def test_save_load_exact_round_trip(result, tmp_path):
    rich = dataclasses.replace(result, elbo=np.linspace(-10.0, -1.0, 7) / 3.0,
                               extra={"covariance": np.eye(3) / 7.0, "note": "x", "n": 3},
                               log_evidence=-87.123456789, log_evidence_err=0.1 / 3)
    path = tmp_path / "fit.nc"
    rich.save(path)
    again = load_result(path)
    for group in rich.idata.groups():
        assert getattr(again.idata, group).identical(getattr(rich.idata, group)), group
    for field in ("method", "stat", "fit_statistic", "dof", "log_evidence",
                  "log_evidence_err", "best_fit", "timings", "background"):
        assert getattr(again, field) == getattr(rich, field), field
    assert np.array_equal(again.elbo, rich.elbo)
    assert np.array_equal(again.extra["covariance"], rich.extra["covariance"])
    assert again.extra["note"] == "x" and again.extra["n"] == 3
    assert again.spec.text == rich.spec.text
    for name, arr in rich.draws.posterior.items():
        assert np.array_equal(again.draws.posterior[name], arr)
    assert again.summary().equals(rich.summary())
    assert not path.read_bytes().startswith(b"\x80")  # never a pickle


@pytest.mark.filterwarnings("ignore:For one or more samples")
def test_model_comparison_and_ppc(result):
    loo = result.loo()
    waic = result.waic()
    assert np.isfinite(loo.elpd_loo) and np.isfinite(waic.elpd_waic)
    assert loo.elpd_loo == pytest.approx(waic.elpd_waic, abs=2.0)
    p = result.ppc_pvalue()
    assert 0.02 < p < 0.98


def test_flux_from_posterior(result):
    photon = result.flux(0.5, 8.0, energy=False)
    energy = result.flux(0.5, 8.0)
    assert photon["q16"] < photon["median"] < photon["q84"]
    assert energy["samples"].shape == (2000,)
    s = result.samples()
    model = result.spec.model
    params = {k: s[k][:3] for k in result.spec.free_names}
    direct = [float(model.photon_flux({k: v[i] for k, v in params.items()}, 0.5, 8.0))
              for i in range(3)]
    assert np.allclose(photon["samples"][:3], direct, rtol=1e-10)


class _Interrupt:
    def __init__(self, after):
        self.after, self.calls, self.finished = after, 0, None

    def start(self, **kw):
        pass

    def update(self, *, chain, done, info):
        self.calls += 1
        assert {"step_size", "accept_prob", "divergences"} <= set(info)
        if self.calls > self.after:
            raise KeyboardInterrupt

    def finish(self, *, interrupted=False):
        self.finished = interrupted


def test_keyboard_interrupt_keeps_samples(result):
    spec, obs = result.spec, result.observations[0]
    progress = _Interrupt(after=4 * 6)  # raised in the 7th chunk: 700 iterations, 200 kept
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        part = fit(spec, obs, chains=4, warmup=500, samples=500, seed=1, progress=progress)
    assert any("interrupted" in str(w.message) for w in caught)
    assert progress.finished is True and part.extra["interrupted"] is True
    assert part.draws.shape == (4, 200)
    # the draws kept are the first draws of the uninterrupted run (same seed)
    assert np.array_equal(part.draws.posterior["powerlaw.PhoIndex"],
                          result.draws.posterior["powerlaw.PhoIndex"][:, :200])
