"""Error corpus: damaged copies of real files must raise a DataError that names the
file (and HDU / keyword / column) and says what would be right."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from astropy.io import fits

from jxspec_nb.data import load_observation, read_arf, read_pha, read_rmf
from jxspec_nb.errors import DataError

ULX = "xmm_epic_pn/ngc7793_ulx4"


@pytest.fixture()
def ulx_copy(shared_data, tmp_path):
    """A writable copy of the four ULX-4 files."""
    for name in ("PN_spectrum_grp20.fits", "PNbackground_spectrum.fits", "PN.rmf", "PN.arf"):
        shutil.copy(shared_data / ULX / name, tmp_path / name)
        (tmp_path / name).chmod(0o644)
    return tmp_path


def _edit(path, hdu, **changes):
    """Rewrite ``path`` with column / keyword changes in ``hdu``."""
    with fits.open(path) as hdul:
        table = hdul[hdu]
        for key, value in changes.items():
            if key.startswith("col_"):
                column = key[4:]
                data = np.array(table.data[column])
                table.data[column] = value(data)
            else:
                table.header[key] = value
        hdul.writeto(path, overwrite=True)


def _check(err: DataError, path, *, hdu=None, keyword=None):
    assert err.path is not None and str(path) in err.path
    text = str(err)
    assert str(path) in text
    if hdu is not None:
        assert err.hdu == hdu
    if keyword is not None:
        assert err.keyword == keyword and keyword in text


def test_truncated_and_non_fits(ulx_copy):
    spec = ulx_copy / "PN_spectrum_grp20.fits"
    spec.write_bytes(spec.read_bytes()[:20_000])
    with pytest.raises(DataError, match="truncated") as err:
        load_observation(spec)
    _check(err.value, spec)
    text = ulx_copy / "notes.pha"
    text.write_text("this is not a FITS file\n" * 20)
    with pytest.raises(DataError, match="not a FITS file") as err:
        read_pha(text)
    _check(err.value, text)
    with pytest.raises(DataError, match="file not found"):
        read_pha(ulx_copy / "nope.pha")


def test_missing_hdu(ulx_copy):
    rmf = ulx_copy / "PN.rmf"
    with fits.open(rmf) as hdul:
        fits.HDUList([hdul[0], hdul["MATRIX"]]).writeto(rmf, overwrite=True)
    with pytest.raises(DataError, match=r"no EBOUNDS extension.*'MATRIX'") as err:
        load_observation(ulx_copy / "PN_spectrum_grp20.fits")
    _check(err.value, rmf)
    arf = ulx_copy / "PN.arf"
    with fits.open(arf) as hdul:
        fits.HDUList([hdul[0]]).writeto(arf, overwrite=True)
    with pytest.raises(DataError, match="no SPECRESP extension") as err:
        read_arf(arf)
    _check(err.value, arf)


def test_missing_column(ulx_copy):
    spec = ulx_copy / "PN_spectrum_grp20.fits"
    with fits.open(spec) as hdul:
        hdul["SPECTRUM"].columns.del_col("COUNTS")
        hdul.writeto(spec, overwrite=True)
    with pytest.raises(DataError, match="neither a COUNTS nor a RATE column") as err:
        read_pha(spec)
    _check(err.value, spec, hdu="SPECTRUM", keyword="COUNTS")


def test_nan_counts_and_nan_matrix_and_arf(ulx_copy):
    spec = ulx_copy / "PN_spectrum_grp20.fits"
    with fits.open(spec) as hdul:
        cols = hdul["SPECTRUM"].columns
        counts = np.array(hdul["SPECTRUM"].data["COUNTS"], float)
        counts[100] = np.nan
        new = [c if c.name != "COUNTS" else fits.Column("COUNTS", "D", array=counts) for c in cols]
        table = fits.BinTableHDU.from_columns(new, header=hdul["SPECTRUM"].header)
        fits.HDUList([hdul[0], table]).writeto(spec, overwrite=True)
    with pytest.raises(DataError, match="NaN/inf") as err:
        read_pha(spec)
    _check(err.value, spec, hdu="SPECTRUM", keyword="COUNTS")
    arf = ulx_copy / "PN.arf"
    _edit(arf, "SPECRESP", col_SPECRESP=lambda a: np.where(np.arange(a.size) == 5, np.inf, a))
    with pytest.raises(DataError, match="NaN/inf") as err:
        read_arf(arf)
    _check(err.value, arf, hdu="SPECRESP", keyword="SPECRESP")


def test_nan_in_rmf_matrix(shared_data, tmp_path):
    rmf = tmp_path / "r.rsp"
    shutil.copy(shared_data / "rosat_pspc/rass_background/pspcc_gain1_256.rsp", rmf)
    rmf.chmod(0o644)
    _edit(rmf, "SPECRESP MATRIX", col_MATRIX=lambda m: np.where(m == m.max(), np.nan, m))
    with pytest.raises(DataError, match="NaN/inf") as err:
        read_rmf(rmf)
    _check(err.value, rmf, hdu="SPECRESP MATRIX", keyword="MATRIX")


def test_zero_exposure(ulx_copy):
    spec = ulx_copy / "PN_spectrum_grp20.fits"
    _edit(spec, "SPECTRUM", EXPOSURE=0.0)
    with pytest.raises(DataError, match="EXPOSURE = 0.0 s; it must be > 0") as err:
        load_observation(spec)
    _check(err.value, spec, hdu="SPECTRUM", keyword="EXPOSURE")


def test_energies_not_increasing(ulx_copy):
    arf = ulx_copy / "PN.arf"
    _edit(
        arf, "SPECRESP", col_ENERG_LO=lambda a: a[::-1].copy(), col_ENERG_HI=lambda a: a[::-1] + 0
    )
    with pytest.raises(DataError, match="do not increase") as err:
        read_arf(arf)
    _check(err.value, arf, hdu="SPECRESP", keyword="ENERG_LO")
    rmf = ulx_copy / "PN.rmf"
    _edit(rmf, "MATRIX", col_ENERG_HI=lambda a: np.where(np.arange(a.size) == 10, a - 1.0, a))
    with pytest.raises(DataError, match="ENERG_HI") as err:
        read_rmf(rmf)
    _check(err.value, rmf, hdu="MATRIX", keyword="ENERG_HI")


def test_channel_counts_disagree(shared_data):
    spec = shared_data / "chandra_acis/3c273/3c273.pi"
    with pytest.raises(DataError, match="1024 channels but the response PN.rmf has 4096") as err:
        load_observation(spec, rmf=shared_data / ULX / "PN.rmf", arf=None, bkg=None)
    _check(err.value, spec, keyword="CHANNEL")
    with pytest.raises(DataError, match="background has 4096 channels") as err:
        load_observation(spec, bkg=shared_data / ULX / "PNbackground_spectrum.fits")
    _check(err.value, shared_data / ULX / "PNbackground_spectrum.fits", keyword="CHANNEL")


def test_arf_rmf_grids_disagree(shared_data, ulx_copy):
    other = shared_data / "chandra_acis/3c273/3c273.arf"
    with pytest.raises(DataError, match="ARF has 1090 energy bins but PN.rmf has 2067") as err:
        load_observation(ulx_copy / "PN_spectrum_grp20.fits", arf=other)
    _check(err.value, other, keyword="ENERG_LO")
    arf = ulx_copy / "PN.arf"
    _edit(arf, "SPECRESP", col_ENERG_LO=lambda a: a * 1.01, col_ENERG_HI=lambda a: a * 1.01)
    with pytest.raises(DataError, match="ARF energy grid differs from PN.rmf at bin 0") as err:
        load_observation(ulx_copy / "PN_spectrum_grp20.fits")
    _check(err.value, arf)


@pytest.mark.parametrize("bad", [-3, 2.5])
def test_negative_or_fractional_counts_with_poisson(ulx_copy, bad):
    spec = ulx_copy / "PN_spectrum_grp20.fits"
    with fits.open(spec) as hdul:
        header = hdul["SPECTRUM"].header
        counts = np.array(hdul["SPECTRUM"].data["COUNTS"], float)
        counts[7] = bad
        cols = [
            c if c.name != "COUNTS" else fits.Column("COUNTS", "D", array=counts)
            for c in hdul["SPECTRUM"].columns
        ]
        fits.HDUList([hdul[0], fits.BinTableHDU.from_columns(cols, header=header)]).writeto(
            spec, overwrite=True
        )
    with pytest.raises(DataError, match="POISSERR = T .*negative or non-integer") as err:
        load_observation(spec)
    _check(err.value, spec, hdu="SPECTRUM", keyword="COUNTS")


def test_band_selects_no_channel(shared_data):
    spec = shared_data / ULX / "PN_spectrum_grp20.fits"
    with pytest.raises(DataError, match=r"selects no channel group.*usable groups span") as err:
        load_observation(spec, band=(20.0, 30.0))
    _check(err.value, spec, hdu="SPECTRUM")
    with pytest.raises(DataError, match="0 <= lo < hi"):
        load_observation(spec, band=(5.0, 1.0))


def test_missing_referenced_files(shared_data, tmp_path):
    spec = tmp_path / "PN_spectrum_grp20.fits"
    shutil.copy(shared_data / ULX / "PN_spectrum_grp20.fits", spec)
    with pytest.raises(DataError, match=r"'PN.arf' named by ANCRFILE not found") as err:
        load_observation(spec)
    _check(err.value, spec, hdu="SPECTRUM", keyword="ANCRFILE")
    with pytest.raises(DataError, match=r"'PN.rmf' named by RESPFILE not found.*rmf=PATH") as err:
        load_observation(spec, arf=shared_data / ULX / "PN.arf")
    _check(err.value, spec, keyword="RESPFILE")
    with pytest.raises(DataError, match=r"BACKFILE not found.*bkg=None") as err:
        load_observation(spec, arf=shared_data / ULX / "PN.arf", rmf=shared_data / ULX / "PN.rmf")
    _check(err.value, spec, keyword="BACKFILE")
    with pytest.raises(DataError, match="no response: RESPFILE is none") as err:
        load_observation(shared_data / "swift_xrt/2m0259/target_sr.pha")
    _check(err.value, shared_data / "swift_xrt/2m0259/target_sr.pha", keyword="RESPFILE")


def test_rmf_pointing_outside_ebounds(ulx_copy):
    rmf = ulx_copy / "PN.rmf"
    _edit(rmf, "MATRIX", TLMIN4=5)  # F_CHAN would count from 5: first groups fall off
    with pytest.raises(DataError, match="outside the 4096 EBOUNDS channels") as err:
        read_rmf(rmf)
    _check(err.value, rmf, hdu="MATRIX", keyword="F_CHAN")
