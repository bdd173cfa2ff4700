"""Grouping: file GROUPING, minimum counts, Kaastra & Bleeker optimal binning."""

from __future__ import annotations

import numpy as np
import pytest

from jxspec_nb.data import load_observation, min_counts_flags, optimal_flags
from jxspec_nb.data.grouping import group_ids, optimal_widths, parse_group
from jxspec_nb.errors import DataError

ULX = "xmm_epic_pn/ngc7793_ulx4/PN_spectrum_grp20.fits"


@pytest.fixture(scope="module")
def ulx(shared_data):
    return load_observation(shared_data / ULX, band=(0.5, 10.0), bkg=None)


def test_group_ids_and_zero_flag():
    assert group_ids(np.array([1, -1, 0, 1, -1, -1]), 6).tolist() == [0, 0, 1, 2, 2, 2]
    assert group_ids(None, 3).tolist() == [0, 1, 2]


def test_min_counts_never_spans_bad_channels_and_merges_tail():
    counts = np.array([5.0, 30, 1, 1, 30, 2, 50, 3])
    good = np.array([True, True, True, True, True, True, False, True])
    flags = min_counts_flags(counts, good, 20)
    gid = group_ids(flags, counts.size)
    assert flags.tolist() == [1, -1, 1, -1, -1, -1, 1, 1]
    sums = np.bincount(gid[good], weights=counts[good])
    assert sums.tolist() == [35.0, 34.0, 0.0, 3.0]  # bad channel alone; last run short


def test_min_counts_on_real_spectrum(ulx):
    grouped = ulx.regroup("min:25")
    assert grouped.grouping == "min:25"
    assert grouped.counts.min() >= 25
    assert grouped.n_groups < ulx.regroup("none").n_groups
    # the band rule is replayed on the new groups
    assert grouped.channel_lo.min() >= 0.5 and grouped.channel_hi.max() <= 10.0
    back = grouped.regroup(None)
    assert np.array_equal(back.counts, ulx.counts)


def test_optimal_widths_formula():
    counts = np.full(200, 1000.0)
    fwhm = np.full(200, 10.0)
    widths = optimal_widths(counts, np.ones(200, bool), fwhm)
    n_r = 10_000.0  # ~ counts in one resolution element (10 or 11 channels)
    x = np.log(n_r * (1 + 0.2 * np.log(20.0)))
    r = (0.08 + 7.0 / x + 1.8 / x**2) / (1 + 5.9 / x)
    assert widths[100] == int(np.floor(r * 10)) or widths[100] == int(np.floor(r * 10)) + 1
    low = optimal_widths(np.full(200, 0.1), np.ones(200, bool), fwhm)
    assert np.all(low == 10)  # x <= 2.119: one bin per FWHM


def test_optimal_flags_respect_minimum_width():
    fwhm = np.full(50, 4.0)
    flags = optimal_flags(np.full(50, 0.01), np.ones(50, bool), fwhm)
    sizes = np.bincount(group_ids(flags, 50))
    assert np.all(sizes[:-1] == 4) and sizes.sum() == 50


def test_optimal_on_real_spectrum(ulx):
    opt = ulx.regroup("optimal")
    assert opt.grouping == "optimal"
    ungrouped = ulx.regroup("none")
    assert 20 < opt.n_groups < ungrouped.n_groups / 3
    # the pn FWHM grows with energy: so do the optimal groups
    width = opt.channel_hi - opt.channel_lo
    assert np.median(width[opt.channel_lo > 5]) > np.median(width[opt.channel_hi < 2])


def test_parse_group_errors():
    assert parse_group("min:20") == ("min", 20.0)
    assert parse_group("optimal") == ("optimal", None)
    assert parse_group(None) == ("file", None)
    with pytest.raises(DataError, match="not understood"):
        parse_group("min20counts")
    with pytest.raises(DataError, match="must be > 0"):
        parse_group("min:0")
