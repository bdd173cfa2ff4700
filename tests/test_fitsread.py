"""The small FITS reader (jxspec_nb._fitsread) against astropy.io.fits, and its fallback."""

from __future__ import annotations

import gzip
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from _shared import ULX
from astropy.io import fits

from jxspec_nb import _fitsread
from jxspec_nb.data._fits import TableReader, find_hdus, open_fits
from jxspec_nb.errors import DataError

PACKAGE = Path(__file__).resolve().parents[1] / "jxspec_nb"


def _same_as_astropy(path: Path) -> None:
    """Every header value (value and type) and every table column (values, kind,
    shape, unit) read by our reader equals astropy's."""
    ours = _fitsread.read(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = fits.open(path, memmap=False)
        assert len(ours) == len(ref), path
        for a, b in zip(ours, ref, strict=True):
            assert a.name == b.name
            for key in set(b.header.keys()) - {"COMMENT", "HISTORY", "", "CONTINUE"}:
                want = b.header[key]
                want = None if isinstance(want, fits.card.Undefined) else want
                got = a.header.get(key, "missing")
                assert type(got) is type(want) and (got == want or got != got), (path, key)
            assert a.is_table == isinstance(b, fits.BinTableHDU)
            if not a.is_table:
                continue
            assert a.columns.names == list(b.columns.names)
            for name in b.columns.names:
                assert (a.columns[name].unit or "") == (b.columns[name].unit or "")
                x, y = a.data[name], b.data[name]
                if y.dtype == object:
                    assert x.dtype == object and len(x) == len(y)
                    for p, q in zip(x, y, strict=True):
                        assert p.dtype.kind == q.dtype.kind and np.array_equal(p, q), name
                elif y.dtype.kind in "SU":
                    assert [str(v) for v in x] == [str(v).rstrip() for v in y]
                else:
                    y = np.asarray(y)
                    assert x.shape == y.shape and x.dtype.kind == y.dtype.kind, name
                    assert np.array_equal(x, y, equal_nan=y.dtype.kind in "fc"), name


def _fits_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()
                  and p.read_bytes()[:2] in (b"SI", b"\x1f\x8b"))


def test_reads_every_shared_file_as_astropy_does(shared_data):
    """All OGIP files of the shared data (XMM, Chandra, Swift, NuSTAR, ASCA, ROSAT,
    Hitomi, XRISM; gzip, variable-length and fixed matrices, type II) and the packaged
    tables read the same as with astropy, through the small reader itself."""
    files = _fits_files(shared_data) + _fits_files(PACKAGE)
    assert len(files) >= 40
    for path in files:
        _same_as_astropy(path)


def test_formats_scaling_and_long_strings(tmp_path):
    """Column types, repeat counts, TDIM, unsigned and scaled integers, logical and
    string columns, P and Q variable-length arrays, CONTINUE long strings, quotes,
    undefined values and D exponents, in a plain and a gzip file."""
    n = 5
    rng = np.random.default_rng(0)
    cols = [
        fits.Column("L", "L", array=np.array([True, False, True, True, False])),
        fits.Column("B", "B", array=np.arange(n, dtype=np.uint8)),
        fits.Column("I", "I", array=np.arange(n, dtype=np.int16) - 2, unit="chan"),
        fits.Column("U", "I", bzero=32768, array=np.array([0, 1, 40000, 65535, 7],
                                                           dtype=np.uint16)),
        fits.Column("J", "3J", array=rng.integers(-9, 9, (n, 3)).astype(np.int32)),
        fits.Column("K", "K", array=np.arange(n, dtype=np.int64) * 2**40),
        fits.Column("E", "E", array=rng.normal(size=n).astype(np.float32), unit="keV"),
        fits.Column("D", "6D", dim="(3,2)", array=rng.normal(size=(n, 2, 3))),
        fits.Column("C", "C", array=rng.normal(size=n) + 1j * rng.normal(size=n)),
        fits.Column("A", "8A", array=np.array(["a", "bb  ", "", "quote'", "12345678"])),
        fits.Column("PE", "PE()", array=np.array(
            [rng.normal(size=k).astype(np.float32) for k in (0, 3, 1, 7, 2)], dtype=object)),
        fits.Column("QJ", "QJ()", array=np.array(
            [np.arange(k, dtype=np.int32) for k in (4, 0, 2, 1, 3)], dtype=object)),
    ]
    hdu = fits.BinTableHDU.from_columns(cols, name="Mixed")
    hdu.header["LONGSTR"] = "x" * 150 + " end"
    hdu.header["QUOTED"] = "it's"
    hdu.header["BIGINT"] = 2**40
    hdu.header["NEG"] = -0.25
    hdu.header["UNDEF"] = None
    hdu.header["FLAG"] = False
    hdu.header["DEXP"] = 1500.0
    hdul = fits.HDUList([fits.PrimaryHDU(), hdu])
    plain = tmp_path / "mixed.fits"
    hdul.writeto(plain)
    text = plain.read_bytes()
    value = f"{1500.0!r:>20}".encode()  # as astropy wrote it; now a Fortran exponent
    assert text.count(b"DEXP    = " + value) == 1
    plain.write_bytes(text.replace(b"DEXP    = " + value, b"DEXP    = " + b"1.5D+03".rjust(20)))
    packed = tmp_path / "mixed.fits.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    for path in (plain, packed):
        _same_as_astropy(path)
    got = _fitsread.read(packed)["mixed"]
    assert got.header["LONGSTR"] == "x" * 150 + " end" and got.header["QUOTED"] == "it's"
    assert got.data["U"].tolist() == [0, 1, 40000, 65535, 7]
    assert got.data["D"].shape == (n, 2, 3) and got.header["DEXP"] == 1500.0
    # TSCAL / TZERO: physical = raw * TSCAL + TZERO (float), and signed bytes
    raw = np.array([0, 1, -2], dtype=np.int16)
    assert _fitsread._scaled(raw, 0.5, 3.0).tolist() == [3.0, 3.5, 2.0]
    assert _fitsread._scaled(np.array([0, 255], np.uint8), None, -128).tolist() == [-128, 127]


def test_header_value_forms():
    assert _fitsread._value("'PN      '  / comment") == "PN"
    assert _fitsread._value("'it''s'") == "it's"
    assert _fitsread._value("                   1.5D+03 / fortran") == 1500.0
    assert _fitsread._value("   -12") == -12 and _fitsread._value(" T") is True
    assert _fitsread._value("   / no value") is None
    assert _fitsread._value("'no closing quote   ") == "no closing quote"
    with pytest.raises(_fitsread.Unsupported):
        _fitsread._value("(1.0, 2.0)")  # complex keyword values: astropy reads them


def test_unsupported_and_damaged_files_fall_back_to_astropy(tmp_path):
    """An ASCII table is not for the small reader: open_fits hands it to astropy, and
    the data layer reads it the same; a truncated file is a ValueError here and a
    DataError naming the file from open_fits."""
    table = fits.TableHDU.from_columns([fits.Column("CHANNEL", "I4", array=np.arange(4)),
                                        fits.Column("COUNTS", "I6", array=np.arange(4) * 3)],
                                       name="SPECTRUM")
    path = tmp_path / "ascii.fits"
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(path)
    with pytest.raises(_fitsread.Unsupported):
        _fitsread.read(path)
    with open_fits(path) as hdul:
        hdu = find_hdus(hdul, ("SPECTRUM",))[0]
        assert TableReader(hdul, hdu, path).column("COUNTS").tolist() == [0, 3, 6, 9]

    good = tmp_path / "good.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(
        [fits.Column("X", "D", array=np.arange(2000.0))], name="T")]).writeto(good)
    cut = tmp_path / "cut.fits"
    cut.write_bytes(good.read_bytes()[:2880 * 3])
    with pytest.raises(ValueError, match="truncated|ends inside"):
        _fitsread.read(cut)
    with pytest.raises(DataError, match="cut.fits"):
        open_fits(cut)


def test_loading_a_spectrum_does_not_import_astropy(shared_data):
    """The small reader spares a fit astropy's import (~0.2 s of a cold fit)."""
    spectrum = str(shared_data / ULX)
    model = "tbabs*powerlaw\\ntbabs.nH = 0.1\\npowerlaw.PhoIndex = 2\\npowerlaw.norm = 1"
    code = ("import sys, jxspec_nb\n"
            f"jxspec_nb.load_observation({spectrum!r}, band=(0.5, 10))\n"
            f"jxspec_nb.model_with_priors('{model}').model.prepare([1.0], [2.0])\n"
            "print('astropy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"
