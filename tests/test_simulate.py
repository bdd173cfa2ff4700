"""fakeit: Poisson draws of folded counts, one or many observations."""

from __future__ import annotations

import numpy as np
import pytest

from jxspec_nb.data import fakeit, load_observation
from jxspec_nb.errors import DataError

ULX = "xmm_epic_pn/ngc7793_ulx4/PN_spectrum_grp20.fits"


@pytest.fixture(scope="module")
def ulx(shared_data):
    return load_observation(shared_data / ULX, band=(0.5, 10.0))


def _powerlaw_flux(obs, norm=1e-3, index=2.0):
    a = 1.0 - index
    return norm * (obs.e_hi**a - obs.e_lo**a) / a


def test_fakeit_mean_matches_fold(ulx):
    flux = _powerlaw_flux(ulx)
    expected = ulx.fold @ flux + ulx.background_ratio * ulx.background
    draws = np.array([fakeit(ulx, flux, seed=s).counts for s in range(200)])
    assert np.all(draws == np.round(draws))
    mean = draws.mean(axis=0)
    # total over groups: 200 draws -> relative error ~ 1/sqrt(200 * total)
    assert mean.sum() == pytest.approx(expected.sum(), rel=5 * np.sqrt(1 / (200 * expected.sum())))
    z = (mean - expected) / np.sqrt(expected / 200)
    assert np.abs(z).max() < 5


def test_fakeit_is_reproducible_and_keeps_metadata(ulx):
    flux = _powerlaw_flux(ulx)
    a = fakeit(ulx, flux, seed=7)
    b = fakeit(ulx, flux, seed=7)
    assert np.array_equal(a.counts, b.counts) and np.array_equal(a.background, b.background)
    assert a.simulated and a.is_poisson and a.fold is ulx.fold
    assert not np.array_equal(a.counts, fakeit(ulx, flux, seed=8).counts)


def test_fakeit_without_background(ulx):
    flux = _powerlaw_flux(ulx)
    sim = fakeit(ulx, flux, seed=1, background=False)
    assert sim.background is None and np.all(sim.background_ratio == 0)
    assert sim.counts.sum() == pytest.approx((ulx.fold @ flux).sum(), rel=0.05)


def test_fakeit_many_observations(shared_data, ulx):
    other = load_observation(shared_data / "chandra_acis/3c273/3c273.pi", band=(0.5, 7.0))
    sims = fakeit([ulx, other], [_powerlaw_flux(ulx), _powerlaw_flux(other)], seed=3)
    assert len(sims) == 2 and sims[1].counts.shape == other.counts.shape
    with pytest.raises(DataError, match="2 observations but 1"):
        fakeit([ulx, other], [_powerlaw_flux(ulx)])
    with pytest.raises(DataError, match="one value per energy bin"):
        fakeit(ulx, np.ones(3))
    with pytest.raises(DataError, match="finite and >= 0"):
        fakeit(ulx, -_powerlaw_flux(ulx))
