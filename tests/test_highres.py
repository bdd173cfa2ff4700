"""High-resolution spectroscopy: the Perseus nine-line model on Hitomi SXS / XRISM Resolve.

The real-data fit (SXS, 6.49-6.61 keV, 5 eV Gaussian RMF) runs once with NUTS and
once with VI (module-scoped fixtures); the VI and NUTS posteriors of sigma_v must
agree within one standard deviation.
"""

from __future__ import annotations

import numpy as np
import pytest

from jxspec_nb.highres import (
    BAND,
    C_KM_S,
    FE_HE_ALPHA_LINES,
    PERSEUS_REDSHIFT,
    load_perseus_resolve,
    load_perseus_sxs,
    perseus_init,
    perseus_model_text,
    perseus_spec,
    simulate_sxs,
    velocity_summary,
)


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def sxs(shared_data):
    return load_perseus_sxs(shared_data)


@pytest.fixture(scope="module")
def spec():
    return perseus_spec()


@pytest.fixture(scope="module")
def init(spec, sxs):
    return perseus_init(spec, sxs)


@pytest.fixture(scope="module")
def nuts_result(spec, sxs, init):
    from jxspec_nb.inference import fit

    # 4 chains (run two by two on CI's 2 cores): with 2 x 250 the R-hat of vbroad.Sigma
    # sat near the 1.05 bound and failed on some machines (1.055 seen)
    return fit(spec, sxs, method="nuts", chains=4, warmup=300, samples=300, seed=1,
               progress=False, init=init)


@pytest.fixture(scope="module")
def vi_result(spec, sxs, init):
    from jxspec_nb.inference import fit

    return fit(spec, sxs, method="vi", steps=2500, optimizer="adam", learning_rate=0.01,
               samples=1000, seed=2, progress=False, init=init)


# ------------------------------------------------------------------ line list
def test_nine_lines_with_documented_energies():
    lines = {ln.label: ln for ln in FE_HE_ALPHA_LINES}
    assert len(FE_HE_ALPHA_LINES) == 9 and len(lines) == 9
    assert {k: lines[k].energy for k in "wxyz"} == {"w": 6.7004, "x": 6.6823, "y": 6.6676,
                                                    "z": 6.6366}
    satellites = [ln for ln in FE_HE_ALPHA_LINES if ln.ion == "Fe XXIV"]
    assert len(satellites) == 5
    for ln in satellites:
        assert 6.61 < ln.energy < 6.68, ln
        assert "Bitter" in ln.source
    # every line lands in the fitted observed band at the cluster redshift
    obs_e = np.array([ln.energy for ln in FE_HE_ALPHA_LINES]) / (1 + PERSEUS_REDSHIFT[0])
    assert np.all((obs_e > BAND[0]) & (obs_e < BAND[1]))


def test_model_text_and_spec(spec):
    text = perseus_model_text()
    assert text.splitlines()[0].startswith("vbroad(zashift(vashift:bulk(gaussian:w")
    assert len(spec.free_names) == 22  # Sigma, z, v_bulk, 9 x (energy, norm), baseline
    assert spec.fixed["w.Sigma"] == 0.0
    # the norm prior must hold the w-line posterior of the paper (2.4e-4)
    lo, hi = spec.prior_defs["w.norm"].support
    # Table B.1's floor (1e-5) kept, its ceiling (1e-4) raised above the w line's 2.4e-4
    assert lo == pytest.approx(1e-5) and hi >= 2.4e-4 * 4
    z = spec.prior_defs["zashift.Redshift"]
    assert z.args == PERSEUS_REDSHIFT
    assert spec.prior_defs["bulk.Velocity"].args[1] == pytest.approx(1e-3 * C_KM_S)


def test_joint_spec_has_instrument_parameters():
    spec = perseus_spec(observations=["sxs", "resolve"])
    for name in ("cross.factor[resolve]", "gain.slope[resolve]", "gain.offset[resolve]",
                 "constadd.norm[resolve]"):
        assert name in spec.free_names
    assert not any(n.endswith("[sxs]") for n in spec.free_names)
    with pytest.raises(ValueError, match="unique"):
        perseus_model_text(FE_HE_ALPHA_LINES + FE_HE_ALPHA_LINES[:1])


def test_line_width_is_sigma_times_observed_energy(spec):
    """Convention: a line's standard deviation is Sigma x its observed energy."""
    edges = np.linspace(6.50, 6.68, 18001)
    z, v, sig = 0.0173, 300.0, 1e-3
    params = {"zashift.Redshift": z, "bulk.Velocity": v, "vbroad.Sigma": sig,
              "w.norm": 1.0, "constadd.norm": 0.0}
    params.update({f"{ln.label}.norm": 0.0 for ln in FE_HE_ALPHA_LINES if ln.label != "w"})
    params.update({f"{ln.label}.LineE": ln.energy for ln in FE_HE_ALPHA_LINES})
    params.update(spec.fixed)
    flux = np.asarray(spec.model.evaluate(params, edges[:-1], edges[1:]))
    mid = 0.5 * (edges[:-1] + edges[1:])
    mean = np.sum(flux * mid) / np.sum(flux)
    sd = np.sqrt(np.sum(flux * (mid - mean) ** 2) / np.sum(flux))
    e_obs = 6.7004 / (1 + z) * (1 - v / C_KM_S)
    assert np.sum(flux) == pytest.approx(1.0, rel=1e-6)
    assert mean == pytest.approx(e_obs, abs=1e-6)
    assert sd == pytest.approx(sig * e_obs, rel=1e-3)


# ------------------------------------------------------------------- data
def test_loaders_build_small_sparse_folds(sxs, shared_data):
    assert sxs.fold.shape == (42, 284)
    assert sxs.fold.nnz < 0.25 * 42 * 284
    assert sxs.channel_lo[0] >= BAND[0] - 1e-3 and sxs.channel_hi[-1] <= BAND[1] + 1e-3
    assert sxs.counts.sum() == 7918
    res = load_perseus_resolve(shared_data)
    assert res.fold.shape == (238, 284)
    assert "4.5 eV" in repr(res)
    assert res.counts.sum() == 14053


def test_init_is_inside_priors_and_finds_the_w_line(spec, sxs, init):
    for name, prior in spec.prior_defs.items():
        lo, hi = prior.support
        assert lo < init[name] < hi, name
    norms = {ln.label: init[f"{ln.label}.norm"] for ln in FE_HE_ALPHA_LINES}
    assert max(norms, key=norms.get) == "w"
    assert 1e-4 < norms["w"] < 5e-4


def test_simulated_sxs_matches_the_real_spectrum_level(sxs):
    sim = simulate_sxs(seed=3)
    assert sim.fold.shape[1] == 284
    total = sim.counts.sum()
    assert abs(total - sxs.counts.sum()) < 5 * np.sqrt(sxs.counts.sum())
    # the brightest bin is the w line (6.5866 keV observed)
    k = int(np.argmax(sim.counts))
    w_obs = 6.7004 / (1 + PERSEUS_REDSHIFT[0])
    assert sim.channel_lo[k] - 0.004 < w_obs < sim.channel_hi[k] + 0.004


# ------------------------------------------------------------- real-data fits
def test_sxs_nuts_fit_physical_units(nuts_result):
    v = velocity_summary(nuts_result)
    # single SXS observation: ~188 km/s, ~45 km/s (paper, 3 obs: 196 +/- 4, 51 +/- 15)
    assert 160 < v.sigma_v.median < 215
    assert 2 < v.sigma_v.sd < 12
    assert -30 < v.v_bulk.median < 120
    assert 8 < v.v_bulk.sd < 40
    assert v.n_draws == 1200
    s = nuts_result.samples()
    assert np.allclose(v.sigma_v.median, np.median(s["vbroad.Sigma"]) * C_KM_S)
    assert nuts_result.summary().loc["vbroad.Sigma", "r_hat"] < 1.05


def test_vi_and_nuts_sigma_v_agree(nuts_result, vi_result):
    a, b = velocity_summary(nuts_result), velocity_summary(vi_result)
    sd = max(a.sigma_v.sd, b.sigma_v.sd)
    assert abs(a.sigma_v.mean - b.sigma_v.mean) < sd
    elbo = vi_result.elbo
    assert elbo.shape == (2500,)
    assert np.mean(elbo[-200:]) > np.mean(elbo[:50])


def test_posterior_predictive_follows_the_lines(nuts_result, sxs):
    pred = nuts_result.predicted_counts(0)
    assert pred.shape == (1200, 42)
    med = np.median(pred, axis=0)
    resid = (sxs.counts - med) / np.sqrt(np.maximum(med, 1.0))
    assert np.sum(resid**2) < 3 * 42  # a good fit: chi2-like sum near the number of bins
    assert abs(int(np.argmax(med)) - int(np.argmax(sxs.counts))) <= 1  # the w line
