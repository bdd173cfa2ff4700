"""Synthetic responses: Gaussian (lazy, sparse), diagonal, shortcuts, write_rmf."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from jxspec_nb.data import (
    diagonal_rmf,
    gaussian_rmf,
    load_observation,
    read_arf,
    read_rmf,
    write_rmf,
)
from jxspec_nb.errors import DataError

HITOMI = "hitomi_sxs/perseus"
XRISM = "xrism_resolve/perseus"


def test_gaussian_rmf_normalised_with_right_width():
    edges = np.linspace(6.0, 7.0, 2001)  # 0.5 eV channels
    rmf = gaussian_rmf(edges, 0.005)
    column = rmf.rows(np.arange(2000)).toarray()[:, 1000]  # photon at 6.50025 keV
    assert column.sum() == pytest.approx(1.0, abs=1e-8)  # 6-sigma kernel
    centres = 0.5 * (edges[:-1] + edges[1:])
    mean = (column * centres).sum() / column.sum()
    sigma = np.sqrt((column * (centres - mean) ** 2).sum() / column.sum())
    assert mean == pytest.approx(6.50025, abs=1e-9)
    # FWHM 5 eV plus the 0.5 eV channel width in quadrature (top-hat variance w^2/12)
    expected = np.sqrt((0.005 / 2.3548200450309493) ** 2 + 0.0005**2 / 12)
    assert sigma == pytest.approx(expected, rel=1e-3)
    assert rmf.fwhm_channels()[1000] == pytest.approx(10.0)


def test_gaussian_rows_subset_equals_full_and_energy_dependent_fwhm():
    edges = np.linspace(1.0, 2.0, 401)
    rmf = gaussian_rmf(edges, lambda e: 0.01 * np.sqrt(e), energy_edges=np.linspace(0.9, 2.1, 601))
    full = rmf.to_sparse().toarray()
    pick = np.array([3, 50, 51, 399])
    np.testing.assert_array_equal(rmf.rows(pick).toarray(), full[pick])
    assert full.shape == (400, 600)
    assert rmf.energy_coverage().sum() < 600  # far-off energies reach no channel


def test_diagonal_rmf_identity_and_mapped():
    rmf = diagonal_rmf(np.linspace(1.0, 2.0, 11))
    assert np.array_equal(rmf.matrix.toarray(), np.eye(10))
    mapped = diagonal_rmf(np.linspace(1.0, 2.0, 21), np.linspace(1.0, 2.0, 6))
    assert np.array_equal(mapped.matrix.sum(axis=1), np.full(5, 4.0))


def test_write_rmf_roundtrip(tmp_path):
    rmf = gaussian_rmf(np.linspace(6.0, 6.2, 101), 0.01, first_channel=1)
    path = write_rmf(rmf, tmp_path / "g.rmf", telescope="TEST")
    back = read_rmf(path)
    assert back.channel[0] == 1 and not back.includes_area
    np.testing.assert_allclose(back.matrix.toarray(), rmf.to_sparse().toarray(), rtol=1e-6)


def test_hitomi_band_touches_only_needed_rows(shared_data):
    folder = shared_data / HITOMI
    arf = read_arf(folder / "ah100040040sxs.arf.gz")
    rmf = gaussian_rmf((arf.energ_lo, arf.energ_hi), 0.005)
    asked: list[int] = []
    original = rmf._rows

    def counting(index):
        asked.extend(np.asarray(index).tolist())
        return original(index)

    spy = dataclasses.replace(rmf, _rows=counting)
    obs = load_observation(folder / "ah100040040sxs_src_grp.pha.gz", rmf=spy, band=(6.49, 6.61))
    assert len(asked) == int(obs.group_size.sum()) < 300  # of 32768 channels
    assert obs.fold.nnz < 50_000
    assert obs.channel_lo.min() >= 6.49 and obs.channel_hi.max() <= 6.61
    assert obs.counts.sum() == 7918


def test_hitomi_full_spectrum_shortcut(shared_data):
    folder = shared_data / HITOMI
    obs = load_observation(
        folder / "ah100040040sxs_src_grp.pha.gz", rmf="gaussian:5eV", energies="response"
    )
    assert obs.fold.shape[1] == 32767  # the 0-0.5 eV bin is left out
    assert obs.counts.sum() == 119744  # 119760 minus the 414 bad channels' counts
    assert obs.background is None and obs.exposure == pytest.approx(68133.515625)


def test_xrism_fold_conserves_arf_inside_band(shared_data):
    folder = shared_data / XRISM
    arf_path = folder / "rsl_standard_GVclosed.arf"
    obs = load_observation(
        folder / "xa_merged_p0px1000_Hp.pi.gz",
        rmf="gaussian:4.5eV",
        arf=arf_path,
        band=(6.4, 6.7),
        energies="band",
    )
    arf = read_arf(arf_path)
    mid = (obs.e_lo > 6.5) & (obs.e_hi < 6.6)  # far (> 20 sigma) from the band edges
    area = arf.specresp[np.isin(arf.energ_lo, obs.e_lo)][mid]
    column = np.asarray(obs.fold.sum(axis=0)).ravel()[mid] / obs.exposure
    np.testing.assert_allclose(column, area, rtol=1e-9)
    assert obs.fold.shape[1] < 1000  # energies="band" keeps the grid small


def test_diagonal_shortcut_nustar_and_grating(shared_data):
    folder = shared_data / "nustar_fpma/vela_x1"
    obs = load_observation(folder / "nu90402339002A01_sr.pha", rmf="diagonal", band=(3, 79))
    arf = read_arf(folder / "nu90402339002A01_sr.arf")
    column = np.asarray(obs.fold.sum(axis=0)).ravel() / obs.exposure
    inside = column > 0
    np.testing.assert_allclose(
        column[inside], arf.specresp[np.isin(arf.energ_lo, obs.e_lo)][inside]
    )
    assert obs.background.sum() > 0 and obs.counts.sum() > 1e6
    np.testing.assert_allclose(obs.background_ratio, 0.00346390427866689 / 0.0020214313779087)


def test_shortcut_errors(shared_data):
    spec = shared_data / HITOMI / "ah100040040sxs_src_grp.pha.gz"
    with pytest.raises(DataError, match="32768 channels and the ARF 60000 bins"):
        load_observation(
            spec, rmf="gaussian:5eV", arf=shared_data / XRISM / "rsl_standard_GVclosed.arf"
        )
    with pytest.raises(DataError, match="not understood"):
        load_observation(spec, rmf="gaussian:five")
    with pytest.raises(DataError, match="no ARF"):
        load_observation(spec, rmf="diagonal", arf=None)
    with pytest.raises(DataError, match="FWHM must be finite and > 0"):
        gaussian_rmf(np.linspace(1, 2, 11), 0.0)
