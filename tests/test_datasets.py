"""The packaged ULX-4 dataset through the data layer."""

from __future__ import annotations

import numpy as np
import pytest

from jxspec_nb import datasets
from jxspec_nb.data import Observation


def test_load_default_dataset():
    obs = datasets.load("ngc7793_ulx4")
    assert isinstance(obs, Observation) and obs.name == "ngc7793_ulx4"
    assert obs.fold.shape[0] == 104  # jaxspec 0.4.1's grouped channels, 0.5-10 keV
    assert obs.fold.shape[1] < 2067  # only the energies that reach them
    full = datasets.load("ngc7793_ulx4", energies="response")
    assert full.fold.shape == (104, 2067)  # jaxspec 0.4.1's shape
    assert obs.counts.sum() == 10131 and obs.background.sum() == 855
    assert obs.exposure == pytest.approx(20265.98058616)
    assert obs.telescope == "XMM" and obs.instrument == "EPN"


def test_load_without_background_and_other_band():
    obs = datasets.load("ngc7793_ulx4", bkg=None, band=(0.5, 8.0))
    assert obs.background is None and np.all(obs.background_ratio == 0)
    assert obs.channel_hi.max() <= 8.0 and obs.n_groups < 104


def test_packaged_files_equal_shared_copy(shared_data):
    ds = datasets.files("ngc7793_ulx4")
    for path in (ds.spectrum, ds.background, ds.rmf, ds.arf):
        shared = shared_data / "xmm_epic_pn/ngc7793_ulx4" / path.name
        assert path.read_bytes() == shared.read_bytes()


def test_load_accepts_a_custom_name():
    obs = datasets.load("ngc7793_ulx4", name="ulx4_pn", bkg=None)
    assert obs.name == "ulx4_pn"
