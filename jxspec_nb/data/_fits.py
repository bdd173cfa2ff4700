"""Small FITS helpers that turn every malformed input into a DataError.

Private to :mod:`jxspec_nb.data`. Files are read by :mod:`jxspec_nb._fitsread` (binary
tables, no astropy import: ~0.2 s of a cold fit), or by ``astropy.io.fits`` when that
reader does not handle the file or finds it damaged (astropy then reads it or says
what is wrong). HDUs are found by EXTNAME / HDUCLAS, never by index, and every value
read is checked (finite, right shape) so that a damaged file ends in a
:class:`~jxspec_nb.errors.DataError` naming the file, HDU and keyword or column, never
in a crash or a silent wrong answer.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from .. import _fitsread
from ..errors import DataError

NONE_VALUES = {"", "none", "null", "nil", "n/a", "-"}


def open_fits(path: str | Path) -> Any:
    """Open a FITS file fully in memory (gzip allowed), or raise a DataError.

    Example:
        >>> hdul = open_fits("spec.pha")                    # doctest: +SKIP
    """
    path = Path(path)
    if not path.exists():
        raise DataError("file not found", path=str(path))
    if path.is_dir():
        raise DataError("is a directory, expected a FITS file", path=str(path))
    try:
        hdul = _fitsread.read(path)
        if len(hdul):
            return hdul
    except Exception:  # noqa: BLE001  (unsupported or damaged: astropy reads it or says why)
        pass
    from astropy.io import fits

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            hdul = fits.open(path, memmap=False, lazy_load_hdus=False)
            for hdu in hdul:  # force reading every data unit: catches truncation
                _ = hdu.data
    except (OSError, ValueError, TypeError, IndexError, EOFError) as exc:
        raise DataError(
            f"cannot read as FITS ({type(exc).__name__}: {exc}); the file is truncated, "
            "compressed in an unknown way or not a FITS file",
            path=str(path),
        ) from None
    if len(hdul) == 0:
        raise DataError("FITS file has no HDU", path=str(path))
    return hdul


def hdu_label(hdul: Any, hdu: Any) -> str | int:
    """How to name an HDU in messages: its EXTNAME, or its index when unnamed/ambiguous."""
    index = hdul.index(hdu)
    name = hdu.name
    if not name or sum(1 for h in hdul if h.name == name) > 1:
        return index
    return name


def is_table(hdu: Any) -> bool:
    """A binary (or, read by astropy, ASCII) table HDU."""
    if isinstance(hdu, _fitsread.HDU):
        return hdu.is_table
    from astropy.io import fits

    return isinstance(hdu, fits.BinTableHDU | fits.TableHDU)


def find_hdus(hdul: Any, names: Iterable[str], hduclas: Iterable[str] = ()) -> list:
    """Table HDUs whose EXTNAME is one of ``names`` or whose HDUCLAS1/2 is in ``hduclas``."""
    names = {n.upper() for n in names}
    hduclas = {c.upper() for c in hduclas}
    found = []
    for hdu in hdul[1:]:
        if not is_table(hdu):
            continue
        clas = {str(hdu.header.get(k, "")).strip().upper() for k in ("HDUCLAS1", "HDUCLAS2")}
        if hdu.name.upper() in names or clas & hduclas:
            found.append(hdu)
    return found


def require_hdu(
    hdul: Any, path: Path, names: tuple[str, ...], hduclas: tuple[str, ...] = ()
):
    """The first matching table HDU, or a DataError listing the HDUs present."""
    found = find_hdus(hdul, names, hduclas)
    if not found:
        present = ", ".join(repr(h.name) for h in hdul[1:]) or "none"
        raise DataError(
            f"no {' or '.join(names)} extension found (extensions present: {present}); "
            f"expected an OGIP {'/'.join(names)} binary table",
            path=str(path),
        )
    return found[0]


class TableReader:
    """Read columns / keywords of one table HDU (optionally one row of a type II file)."""

    def __init__(self, hdul: Any, hdu: Any, path: Path, row: int | None = None) -> None:
        self.hdu = hdu
        self.header = hdu.header
        self.path = Path(path)
        self.label = hdu_label(hdul, hdu)
        self.row = row
        self.names = {n.upper(): n for n in hdu.columns.names}

    def error(self, message: str, keyword: str | None = None) -> DataError:
        return DataError(message, path=str(self.path), hdu=self.label, keyword=keyword)

    def has(self, name: str) -> bool:
        return name.upper() in self.names

    def raw(self, name: str) -> Any:
        col = self.names.get(name.upper())
        if col is None:
            raise self.error(
                f"column {name} missing (columns present: {', '.join(self.names.values())})",
                keyword=name,
            )
        try:
            data = self.hdu.data[col]
        except (TypeError, ValueError, IndexError, KeyError) as exc:
            raise self.error(f"cannot read column {name}: {exc}", keyword=name) from None
        if self.row is not None:
            data = data[self.row]
        return data

    def column(self, name: str, dtype: Any = np.float64, *, finite: bool = True) -> np.ndarray:
        """A numeric column as a 1-D float64 (or int) array, checked finite."""
        data = self.raw(name)
        try:
            arr = np.array(data, dtype=dtype).reshape(-1)
        except (TypeError, ValueError) as exc:
            raise self.error(f"column {name} is not numeric ({exc})", keyword=name) from None
        if finite and arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
            bad = np.flatnonzero(~np.isfinite(arr))
            raise self.error(
                f"column {name} has {bad.size} NaN/inf value(s) (first at row {bad[0]}); "
                "every value must be finite",
                keyword=name,
            )
        return arr

    def unit(self, name: str) -> str:
        col = self.names.get(name.upper())
        if col is None:
            return ""
        return str(self.hdu.columns[col].unit or "").strip()

    def keyword(self, name: str, default: Any = None) -> Any:
        """A value from the row's column if one exists (type II), else the header."""
        if self.row is not None and self.has(name):
            value = self.raw(name)
            return value.item() if isinstance(value, np.generic) else value
        return self.header.get(name, default)

    def number(self, name: str, default: float | None = None) -> float:
        """A finite numeric keyword (or type II column value)."""
        value = self.keyword(name, default)
        if value is None:
            raise self.error(f"keyword {name} missing; it is required here", keyword=name)
        try:
            out = float(value)
        except (TypeError, ValueError):
            raise self.error(f"keyword {name} = {value!r} is not a number", keyword=name) from None
        if not np.isfinite(out):
            raise self.error(f"keyword {name} = {value!r} must be finite", keyword=name)
        return out

    def text(self, name: str) -> str | None:
        """A string keyword, ``None`` when absent or one of none/NONE/''."""
        value = self.keyword(name)
        if value is None or isinstance(value, bool):
            return None
        value = str(value).strip()
        return None if value.lower() in NONE_VALUES else value

    def scale(self, name: str, n: int) -> np.ndarray:
        """BACKSCAL / AREASCAL: per-channel column wins over the keyword; default 1."""
        if self.has(name):
            arr = self.column(name)
            if arr.size == 1:
                return np.full(n, float(arr[0]))
            if arr.size != n:
                raise self.error(
                    f"column {name} has {arr.size} values for {n} channels", keyword=name
                )
            return arr
        if self.header.get(name) is None:
            return np.ones(n)
        return np.full(n, self.number(name))


def energy_unit_factor(reader: TableReader, name: str) -> float:
    """Factor turning an energy column into keV (keV or eV accepted)."""
    unit = reader.unit(name).lower()
    if unit in ("", "kev"):
        return 1.0
    if unit == "ev":
        return 1e-3
    raise reader.error(f"column {name} has unit {unit!r}; expected keV", keyword=name)


def check_energy_grid(reader: TableReader, lo: np.ndarray, hi: np.ndarray, what: str) -> None:
    """Energy bins must be >= 0, of non-negative width, increasing and not overlapping.

    Zero-width bins are allowed (the ROSAT PSPC RSP repeats energies at edges);
    they carry no photon flux and are left out of an observation's energy grid.
    """
    if lo.size == 0:
        raise reader.error(f"{what} energy grid is empty")
    if np.any(lo < 0):
        raise reader.error(f"{what} energies must be >= 0 keV", keyword="ENERG_LO")
    if np.any(hi < lo):
        i = int(np.flatnonzero(hi < lo)[0])
        raise reader.error(
            f"{what} energy bin {i} has ENERG_HI={hi[i]} < ENERG_LO={lo[i]}; "
            "each bin must have ENERG_HI >= ENERG_LO",
            keyword="ENERG_HI",
        )
    tol = 1e-6 * np.maximum(np.abs(lo[1:]), 1e-12)
    bad = (np.diff(lo) < 0) | (lo[1:] < hi[:-1] - tol)
    if np.any(bad) or (lo.size > 1 and lo[-1] <= lo[0]):
        i = int(np.flatnonzero(bad)[0]) + 1 if np.any(bad) else lo.size - 1
        raise reader.error(
            f"{what} energies do not increase at row {i} ({lo[i - 1]} -> {lo[i]} keV); "
            "ENERG_LO must increase row after row, with non-overlapping bins",
            keyword="ENERG_LO",
        )
