"""Observation: band rule, fold values, area conservation, background, RSP."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from jxspec_nb.data import Observation, load_observation
from jxspec_nb.errors import DataError

ULX = "xmm_epic_pn/ngc7793_ulx4"


@pytest.fixture(scope="module")
def ulx(shared_data) -> Observation:
    # jaxspec 0.4.1's energy grid (every bin the response covers) for the side-by-side check
    return load_observation(
        shared_data / ULX / "PN_spectrum_grp20.fits", band=(0.5, 10.0), energies="response"
    )


def _dense_rmf(path, n_chan):
    with fits.open(path) as hdul:
        data = hdul["MATRIX"].data
        out = np.zeros((n_chan, len(data)))
        for j in range(len(data)):
            values = np.asarray(data["MATRIX"][j], float)
            offset = 0
            for g in range(data["N_GRP"][j]):
                f, n = int(data["F_CHAN"][j][g]), int(data["N_CHAN"][j][g])
                out[f : f + n, j] = values[offset : offset + n]
                offset += n
    return out


def test_ulx4_band_rule_and_fold_values(shared_data, ulx):
    """Independent dense recomputation of exposure x grouping x RMF x ARF (jaxspec rule)."""
    folder = shared_data / ULX
    with fits.open(folder / "PN_spectrum_grp20.fits") as hdul:
        d = hdul["SPECTRUM"].data
        counts, grouping, quality = (np.asarray(d[k]) for k in ("COUNTS", "GROUPING", "QUALITY"))
        exposure = hdul["SPECTRUM"].header["EXPOSURE"]
    with fits.open(folder / "PN.rmf") as hdul:
        e_min = np.asarray(hdul["EBOUNDS"].data["E_MIN"], float)
        e_max = np.asarray(hdul["EBOUNDS"].data["E_MAX"], float)
    arf = np.asarray(fits.getdata(folder / "PN.arf", "SPECRESP")["SPECRESP"], float)
    rmf = _dense_rmf(folder / "PN.rmf", 4096)
    gid = np.cumsum(grouping != -1) - 1
    good = quality == 0
    keep = []
    for g in range(gid[-1] + 1):
        members = np.flatnonzero((gid == g) & good)
        if members.size and e_min[members].min() >= 0.5 and e_max[members].max() <= 10.0:
            keep.append(members)
    assert len(keep) == 104 == ulx.n_groups
    expected = np.array([exposure * (rmf[m] * arf).sum(axis=0) for m in keep])
    assert ulx.fold.shape == (104, 2067)
    np.testing.assert_allclose(ulx.fold_dense(), expected, rtol=1e-10, atol=0)
    assert np.array_equal(ulx.counts, [counts[m].sum() for m in keep])
    assert ulx.counts.sum() == 10131
    assert ulx.channel_lo.min() >= 0.5 and ulx.channel_hi.max() <= 10.0
    assert np.sum(ulx.group_size) == sum(m.size for m in keep)


def test_ulx4_background_ratio(ulx):
    assert ulx.background.sum() == 855
    expected = 2010100 / 6866200  # same exposure and AREASCAL
    np.testing.assert_allclose(ulx.background_ratio, expected, rtol=1e-12)
    assert ulx.background_path == "PNbackground_spectrum.fits"


def test_repr_shows_fold_shape_and_density(ulx):
    text = repr(ulx)
    assert "104 x 2067" in text and "density" in text and "XMM EPN" in text
    assert f"{100 * ulx.density:.2f} %" in text
    assert ulx.density == pytest.approx(ulx.fold.nnz / (104 * 2067))
    html = ulx._repr_html_()
    assert "104" in html


def test_notice_ignore_compose(ulx):
    narrow = ulx.ignore(None, 2.0)
    assert narrow.channel_lo.min() >= 2.0 and narrow.n_groups < ulx.n_groups
    back = narrow.notice(0.5, 10.0)
    assert np.array_equal(back.counts, ulx.counts)
    hard = ulx.ignore(None, 2.0).ignore(7.0, None)
    assert hard.channel_lo.min() >= 2.0 and hard.channel_hi.max() <= 7.0
    with pytest.raises(DataError, match="selects no channel group"):
        ulx.ignore(None, None)
    with pytest.raises(DataError, match="0 <= lo < hi"):
        ulx.notice(5.0, 1.0)


def test_effective_area_conservation(shared_data):
    """Column sums of RMF x ARF ~ ARF where the RMF is normalised (3c273: no bad channel)."""
    obs = load_observation(shared_data / "chandra_acis/3c273/3c273.pi", group="none")
    arf = fits.getdata(shared_data / "chandra_acis/3c273/3c273.arf", "SPECRESP")
    lo = np.asarray(arf["ENERG_LO"], float)
    area = np.asarray(arf["SPECRESP"], float)[np.isin(lo, obs.e_lo)]
    assert obs.fold.shape == (1024, 1090)
    column = np.asarray(obs.fold.sum(axis=0)).ravel() / obs.exposure
    np.testing.assert_allclose(column, area, rtol=1e-5)


def test_rsp_area_in_matrix_no_arf(shared_data):
    folder = shared_data / "rosat_pspc/rass_background"
    obs = load_observation(folder / "xrbg_xspec.pi", rmf=folder / "pspcc_gain1_256.rsp")
    assert obs.arf_path is None
    assert obs.n_groups == 7  # 62 bad channels dropped
    assert not obs.is_poisson and obs.stat_err is not None
    # exposure 1 s: fold column sums are the RSP area (cm^2) over the noticed channels
    assert obs.fold.sum(axis=0).max() == pytest.approx(256.65, rel=0.05)
    assert np.all(obs.e_hi > obs.e_lo)  # the 19 zero-width bins are left out
    with pytest.raises(DataError, match="already includes the effective area"):
        load_observation(
            folder / "xrbg_xspec.pi",
            rmf=folder / "pspcc_gain1_256.rsp",
            arf=shared_data / "chandra_acis/3c273/3c273.arf",
        )


def test_background_second_hdu_and_areascal_ratio(shared_data):
    dg = load_observation(
        shared_data / "chandra_acis/dgtau_csc/acisf04487_001N023_r0009_pha3.fits.gz"
    )
    assert dg.background.sum() == 77 and dg.counts.sum() == 389
    np.testing.assert_allclose(dg.background_ratio, 2.8405338525772e-07 / 6.8489462137222e-06)
    cdfs = load_observation(shared_data / "chandra_acis/cdfs_179/179.pi")
    np.testing.assert_allclose(cdfs.background_ratio, 1 / 32.4418, rtol=1e-6)
    assert cdfs.counts.sum() == 2830 and cdfs.exposure == 3746510.0


def test_noticed_channels_for_band(shared_data):
    cdfs = load_observation(shared_data / "chandra_acis/cdfs_179/179.pi", band=(0.5, 7.0))
    with fits.open(shared_data / "chandra_acis/cdfs_179/cdfs4Ms_179.rmf") as hdul:
        eb = hdul["EBOUNDS"].data
        inside = (eb["E_MIN"] >= 0.5) & (eb["E_MAX"] <= 7.0)
    assert cdfs.n_groups == inside.sum() == 444
    assert cdfs.e_lo.size == 1918


def test_arf_respfile_fallback_and_energy_grid_from_zero(shared_data):
    folder = shared_data / "swift_xrt/2m0259"
    obs = load_observation(folder / "target_sr.pha", arf=folder / "target_sr.arf")
    assert obs.rmf_path.name == "swxpc0to12s6_20130101v014.rmf.gz"
    assert obs.counts.sum() == 58 and obs.background is None
    assert obs.e_lo.min() > 0  # the bin starting at 0 keV is left out


def test_missing_backfile_needs_explicit_none(shared_data):
    path = shared_data / "asca_sis/he1104/s0_mar24_bin.pha"
    with pytest.raises(DataError, match=r"s0_bkg_sky.pha.*bkg=None"):
        load_observation(path)
    obs = load_observation(path, bkg=None, band=(0.5, 10.0), energies="response")
    assert obs.sys_err is not None and obs.background is None
    assert obs.fold.shape[1] == 1176


def test_energies_band_is_default_and_drops_only_zero_columns(shared_data, ulx):
    small = load_observation(shared_data / ULX / "PN_spectrum_grp20.fits", band=(0.5, 10.0))
    assert small.fold.shape[0] == 104 and small.fold.shape[1] < ulx.fold.shape[1]
    np.testing.assert_allclose(small.fold.sum(), ulx.fold.sum(), rtol=1e-12)
    # the band grid is a contiguous slice of the response grid; the rest is all zero
    start = int(np.searchsorted(ulx.e_lo, small.e_lo[0]))
    cols = slice(start, start + small.e_lo.size)
    np.testing.assert_array_equal(ulx.e_lo[cols], small.e_lo)
    np.testing.assert_array_equal(ulx.fold_dense()[:, cols], small.fold_dense())
    assert ulx.fold_dense().sum() == pytest.approx(small.fold_dense().sum(), rel=1e-12)


def test_predicted_counts_and_with_counts(ulx):
    flux = np.full(ulx.e_lo.size, 1e-4)
    pred = ulx.predicted_counts(flux)
    np.testing.assert_allclose(pred, ulx.fold_dense() @ flux)
    sim = ulx.with_counts(np.round(pred))
    assert sim.simulated and sim.is_poisson and sim.background is ulx.background
    with pytest.raises(DataError, match="simulated counts"):
        sim.notice(1.0, 2.0)


def test_type2_row_with_background_columns_equals_type1(shared_data):
    folder = shared_data / "chandra_hetg/3c120"
    arf = folder / "3c120_heg_-1.arf.gz"
    two = load_observation(folder / "3c120_pha2.gz", row=2, rmf="diagonal", arf=arf, band=(1, 7))
    one = load_observation(folder / "3c120_heg_-1.pha.gz", rmf="diagonal", band=(1, 7))
    assert np.array_equal(two.counts, one.counts) and two.n_groups == one.n_groups > 1000
    assert np.array_equal(two.background, one.background)
    assert two.background_path == "BACKGROUND_UP+BACKGROUND_DOWN columns"
    np.testing.assert_allclose(two.background_ratio, 1.0 / (2 * 4.0188284), rtol=1e-6)
    assert (two.fold != one.fold).nnz == 0
