"""OGIP reading: one test per quirk listed in ../shared/data/README.md."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from jxspec_nb.data import read_arf, read_pha, read_rmf, resolve_pointer
from jxspec_nb.errors import DataError


def test_pha_type1_counts_exposure_grouping_columns_win(shared_data):
    # XMM pn: GROUPING/QUALITY columns coexist with QUALITY=0 keyword; columns win
    s = read_pha(shared_data / "xmm_epic_pn/ngc7793_ulx4/PN_spectrum_grp20.fits")
    assert s.counts.sum() == 11526
    assert s.exposure == pytest.approx(20265.98058616)
    assert s.n_channels == 4096 and s.channel[0] == 0
    assert (s.quality != 0).sum() == 1116
    assert s.grouping is not None and (s.grouping == 1).sum() == 1230
    assert s.backscal[0] == 2010100 and s.areascal[0] == 1.0
    assert (s.respfile, s.ancrfile, s.backfile) == (
        "PN.rmf",
        "PN.arf",
        "PNbackground_spectrum.fits",
    )
    assert s.is_poisson


def test_pha_channels_start_at_one_and_stat_err_with_poisserr_false(shared_data):
    s = read_pha(shared_data / "chandra_acis/3c273/3c273.pi")
    assert s.channel[0] == 1 and s.n_channels == 1024
    assert s.counts.sum() == 736
    assert s.stat_err is not None and s.stat_err.size == 1024
    assert s.is_poisson  # integer COUNTS: POISSERR=F only means STAT_ERR is supplied
    # grouping column wins over GROUPING=0 keyword: 46 groups
    assert (s.grouping == 1).sum() == 46


def test_rate_spectrum_net_not_poisson(shared_data):
    s = read_pha(shared_data / "rosat_pspc/rass_background/xrbg_xspec.pi")
    assert s.exposure == 1.0
    assert s.counts.sum() == pytest.approx(0.00109, rel=1e-2)
    assert not s.is_poisson and s.hduclas2 == "NET"
    assert s.stat_err is not None and np.all(s.stat_err >= 0)
    assert (s.quality != 0).sum() == 62
    assert s.respfile is None and s.ancrfile is None and s.backfile is None  # 'none'


def test_sys_err_column_and_empty_hduclas2(shared_data):
    s = read_pha(shared_data / "asca_sis/he1104/s0_mar24_bin.pha")
    assert s.hduclas2 == ""
    assert s.sys_err is not None and s.sys_err.size == 512
    assert s.counts.sum() == 1688 and (s.quality != 0).sum() == 16
    assert s.backfile == "s0_bkg_sky.pha"


def test_per_channel_backscal_areascal_columns(shared_data):
    s = read_pha(shared_data / "xmm_rgs/mrk421/P0871591801R1S004SRSPEC1003.FIT.gz")
    b = read_pha(shared_data / "xmm_rgs/mrk421/P0871591801R1S004BGSPEC1003.FIT.gz")
    assert s.counts.sum() == 865618 and b.counts.sum() == 23834
    assert (s.areascal == 0).sum() == 575  # per-channel column, no keyword
    assert b.hduclas2 == "BKG" and np.ptp(b.backscal) > 0
    assert (s.quality != 0).sum() == 612


def test_background_in_second_hdu_of_same_file(shared_data):
    path = shared_data / "chandra_acis/dgtau_csc/acisf04487_001N023_r0009_pha3.fits.gz"
    src = read_pha(path)
    bkg = read_pha(path, background=True)
    assert src.hdu == 1 and bkg.hdu == 8  # both EXTNAME SPECTRUM -> named by index
    assert src.counts.sum() == 389 and bkg.counts.sum() == 77
    assert bkg.backscal[0] == pytest.approx(6.8489462137222e-06)
    assert src.backfile == "acisf04487_001N023_r0009_pha3.fits"  # names itself, saved .gz
    assert resolve_pointer(src.backfile, path.parent, keyword="BACKFILE", source=path) == path


@pytest.mark.parametrize("row, order", [(2, "heg_-1"), (3, "heg_1"), (8, "meg_-1"), (9, "meg_1")])
def test_type2_rows_equal_type1_files(shared_data, row, order):
    folder = shared_data / "chandra_hetg/3c120"
    two = read_pha(folder / "3c120_pha2.gz", row=row)
    one = read_pha(folder / f"3c120_{order}.pha.gz")
    assert np.array_equal(two.counts, one.counts)
    assert np.array_equal(two.background_columns[0], one.background_columns[0])
    assert two.exposure == one.exposure and two.n_channels == 8192
    assert two.background_columns[1][0] == pytest.approx(2 * 4.0188284)


def test_type2_requires_row(shared_data):
    with pytest.raises(DataError, match=r"type II file with 12 spectra.*SPEC_NUM=3"):
        read_pha(shared_data / "chandra_hetg/3c120/3c120_pha2.gz")
    with pytest.raises(DataError, match="out of range"):
        read_pha(shared_data / "chandra_hetg/3c120/3c120_pha2.gz", row=12)


def test_rmf_variable_length_matrix_ebounds_first(shared_data):
    # cdfs: EBOUNDS is HDU 1 and MATRIX HDU 2; F_CHAN/N_CHAN are PI(5) VLAs, TLMIN=1
    rmf = read_rmf(shared_data / "chandra_acis/cdfs_179/cdfs4Ms_179.rmf")
    assert rmf.matrix.shape == (1024, 1918) and not rmf.includes_area
    assert rmf.channel[0] == 1
    colsum = rmf.matrix.sum(axis=0)
    assert np.median(colsum) == pytest.approx(1.0, abs=2e-3)


def test_rmf_fixed_vector_fchan_and_dense_equivalence(shared_data):
    # XMM pn: F_CHAN/N_CHAN 18I fixed vectors, MATRIX 1PE VLA, TLMIN4 = 0
    path = shared_data / "xmm_epic_pn/ngc7793_ulx4/PN.rmf"
    rmf = read_rmf(path)
    assert rmf.matrix.shape == (4096, 2067)
    with fits.open(path) as hdul:
        data = hdul["MATRIX"].data
        for j in (0, 500, 1500, 2066):  # decode a few rows independently
            dense = np.zeros(4096)
            values = np.asarray(data["MATRIX"][j], float)
            offset = 0
            for g in range(data["N_GRP"][j]):
                f, n = int(data["F_CHAN"][j][g]), int(data["N_CHAN"][j][g])
                dense[f : f + n] = values[offset : offset + n]
                offset += n
            assert np.array_equal(rmf.matrix[:, [j]].toarray().ravel(), dense)


def test_rmf_fixed_length_rows_scalar_fchan(shared_data):
    # Swift XRT: MATRIX 1024E full rows, scalar F_CHAN/N_CHAN, grid starting at 0 keV
    rmf = read_rmf(shared_data / "swift_xrt/2m0259/swxpc0to12s6_20130101v014.rmf.gz")
    assert rmf.matrix.shape == (1024, 2400)
    assert rmf.energ_lo[0] == 0.0
    assert np.all(rmf.matrix.data != 0)  # zero padding is not stored


def test_rsp_specresp_matrix_zero_padded(shared_data):
    rsp = read_rmf(shared_data / "rosat_pspc/rass_background/pspcc_gain1_256.rsp")
    assert rsp.includes_area  # HDUCLAS3 = FULL, ext 'SPECRESP MATRIX'
    assert rsp.matrix.shape == (256, 729)
    assert rsp.matrix.sum(axis=0).max() == pytest.approx(256.65, rel=1e-3)
    zero_width = rsp.energ_hi == rsp.energ_lo
    assert zero_width.sum() == 19  # repeated energies at edges are accepted


def test_rmf_and_arf_share_gz_grid(shared_data):
    folder = shared_data / "chandra_acis/dgtau_csc"
    rmf = read_rmf(folder / "acisf04487_001N022_r0009_rmf3.fits.gz")
    arf = read_arf(folder / "acisf04487_001N022_r0009_arf3.fits.gz")
    assert rmf.n_energies == arf.energ_lo.size == 900
    assert np.allclose(rmf.energ_lo, arf.energ_lo)
    assert arf.specresp.max() == pytest.approx(669, rel=1e-2)


def test_arf_grid_from_zero_and_ciao_grid_respfile(shared_data):
    arf = read_arf(shared_data / "hitomi_sxs/perseus/ah100040040sxs.arf.gz")
    assert arf.energ_lo.size == 32768 and arf.energ_lo[0] == 0.0
    arf2 = read_arf(shared_data / "chandra_acis/3c273/3c273.arf")
    assert arf2.respfile.startswith("grid(")
    assert resolve_pointer(arf2.respfile, shared_data, keyword="RESPFILE", source=arf2.path) is None


def test_pointer_resolution_gz_none_and_missing(shared_data):
    folder = shared_data / "hitomi_sxs/perseus"
    src = folder / "ah100040040sxs_src_grp.pha.gz"
    assert resolve_pointer("ah100040040sxs.arf", folder, keyword="ANCRFILE", source=src) == (
        folder / "ah100040040sxs.arf.gz"
    )
    for value in (None, "none", "NONE", "  "):
        assert resolve_pointer(value, folder, keyword="BACKFILE", source=src) is None
    with pytest.raises(DataError, match=r"RESPFILE.*ah100040040sxs.rmf.gz.*rmf=PATH") as err:
        resolve_pointer("ah100040040sxs.rmf.gz", folder, keyword="RESPFILE", source=src)
    assert err.value.path == str(src) and err.value.keyword == "RESPFILE"
