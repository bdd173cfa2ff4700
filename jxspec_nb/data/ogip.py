"""Read OGIP PHA spectra (type I and type II) (FITS through :mod:`jxspec_nb.data._fits`).

The reader follows OGIP/92-007 and the quirks of real files (see
``../shared/data/README.md``): COUNTS or RATE columns, POISSERR / STAT_ERR /
SYS_ERR, GROUPING and QUALITY columns winning over keywords, BACKSCAL and
AREASCAL as keywords or per-channel columns, type II rows, BACKGROUND_UP/DOWN
columns (Chandra gratings), and header pointers (RESPFILE, ANCRFILE, BACKFILE)
resolved beside the spectrum, also as ``name + ".gz"``.

Example:
    >>> spec = read_pha("PN_spectrum_grp20.fits")                # doctest: +SKIP
    >>> spec.counts.sum(), spec.exposure                         # doctest: +SKIP
    (11526.0, 20265.98)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DataError
from ._fits import TableReader, find_hdus, hdu_label, open_fits

__all__ = ["Spectrum", "read_pha", "resolve_pointer"]


@dataclass(frozen=True, eq=False)
class Spectrum:
    """One PHA spectrum at channel level (no grouping or band applied).

    Attributes:
        path: file read; hdu: HDU name or index; row: type II row (0-based) or None.
        channel: channel numbers (n,) as in the file (may start at 0 or 1).
        counts: counts per channel (float64; RATE spectra are multiplied by EXPOSURE).
        stat_err: statistical error per channel in counts, or None.
        sys_err: fractional systematic error per channel, or None.
        is_poisson: counts are non-negative integers from a COUNTS column of a
            TOTAL/BKG spectrum (C-stat applies).
        quality: QUALITY per channel (0 = good); grouping: GROUPING flags (+1 start,
            -1 continue, 0 = ungrouped) or None when the file is not grouped.
        exposure: EXPOSURE in s; backscal, areascal: per-channel arrays.
        respfile, ancrfile, backfile: header pointers (None for none/NONE/missing).
        background_columns: (up+down counts, summed BACKSCUP+BACKSCDN) from
            BACKGROUND_UP/DOWN columns, or None.
    """

    path: Path
    hdu: str | int
    row: int | None
    telescope: str
    instrument: str
    hduclas2: str
    channel: np.ndarray
    counts: np.ndarray
    stat_err: np.ndarray | None
    sys_err: np.ndarray | None
    is_poisson: bool
    quality: np.ndarray
    grouping: np.ndarray | None
    exposure: float
    backscal: np.ndarray
    areascal: np.ndarray
    respfile: str | None
    ancrfile: str | None
    backfile: str | None
    background_columns: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)

    @property
    def n_channels(self) -> int:
        return int(self.channel.size)

    def __repr__(self) -> str:
        row = "" if self.row is None else f", row={self.row}"
        return (
            f"Spectrum({self.path.name}[{self.hdu}]{row}: {self.telescope} {self.instrument}, "
            f"{self.n_channels} channels, {self.counts.sum():g} counts, "
            f"exposure {self.exposure:g} s)"
        )


def _is_type2(reader: TableReader) -> bool:
    if str(reader.header.get("HDUCLAS4", "")).strip().upper() == "TYPE:II":
        return True
    if str(reader.header.get("HDUCLAS3", "")).strip().upper() == "TYPE:II":
        return True
    if reader.has("COUNTS") or reader.has("RATE"):
        name = "COUNTS" if reader.has("COUNTS") else "RATE"
        return np.ndim(reader.hdu.data[reader.names[name]]) == 2
    return False


def _row_table(reader: TableReader) -> str:
    data = reader.hdu.data
    parts = []
    for i in range(len(data)):
        bits = [f"row {i}"]
        for key in ("SPEC_NUM", "TG_PART", "TG_M"):
            if reader.has(key):
                bits.append(f"{key}={data[reader.names[key]][i]}")
        parts.append(" ".join(bits))
    return "; ".join(parts)


def _spectrum_hdu(hdul, path: Path, *, background: bool, hdu: str | int | None):
    if hdu is not None:
        try:
            chosen = hdul[hdu]
        except (KeyError, IndexError):
            raise DataError(f"HDU {hdu!r} not found in the file", path=str(path)) from None
        return chosen
    found = find_hdus(hdul, ("SPECTRUM",), ("SPECTRUM",))
    if not found:
        present = ", ".join(repr(h.name) for h in hdul[1:]) or "none"
        raise DataError(
            f"no SPECTRUM extension found (extensions present: {present}); a PHA file needs "
            "a binary table with EXTNAME='SPECTRUM' or HDUCLAS1='SPECTRUM'",
            path=str(path),
        )

    def is_bkg(h) -> bool:
        return str(h.header.get("HDUCLAS2", "")).strip().upper() == "BKG"

    if background:
        bkg = [h for h in found if is_bkg(h)]
        return bkg[0] if bkg else found[0]
    src = [h for h in found if not is_bkg(h)]
    return src[0] if src else found[0]


def read_pha(
    path: str | Path,
    *,
    row: int | None = None,
    hdu: str | int | None = None,
    background: bool = False,
) -> Spectrum:
    """Read one spectrum from an OGIP PHA file.

    Args:
        path: the PHA file (``.gz`` allowed).
        row: for a PHA type II file, which row (0-based) to read; required when
            the file holds more than one spectrum.
        hdu: the HDU to read (name or index); default: the first SPECTRUM HDU,
            or with ``background=True`` the one with HDUCLAS2='BKG' if several.
        background: read the background spectrum of a file that stores its
            background as another SPECTRUM HDU (Chandra Source Catalog pha3).

    Returns:
        The :class:`Spectrum` (channel level).

    Example:
        >>> s = read_pha("3c120_pha2.gz", row=2)                   # doctest: +SKIP
    """
    path = Path(path)
    with open_fits(path) as hdul:
        table = _spectrum_hdu(hdul, path, background=background, hdu=hdu)
        reader = TableReader(hdul, table, path)
        if _is_type2(reader):
            nrows = len(table.data)
            if row is None:
                if nrows != 1:
                    raise reader.error(
                        f"PHA type II file with {nrows} spectra: pass row=N (0-based) to "
                        f"choose one ({_row_table(reader)})"
                    )
                row = 0
            if not 0 <= row < nrows:
                raise reader.error(f"row={row} out of range: the file has rows 0..{nrows - 1}")
            reader = TableReader(hdul, table, path, row=row)
        elif row not in (None, 0):
            raise reader.error(f"row={row} given but this is a PHA type I file (one spectrum)")
        else:
            row = None
        return _read_spectrum(reader, hdu_label(hdul, table))


def _read_spectrum(reader: TableReader, label: str | int) -> Spectrum:
    header = reader.header
    exposure = reader.number("EXPOSURE")
    if exposure <= 0:
        raise reader.error(
            f"EXPOSURE = {exposure} s; it must be > 0 (the live time of the spectrum)",
            keyword="EXPOSURE",
        )
    channel = reader.column("CHANNEL", np.int64) if reader.has("CHANNEL") else None
    hduclas2 = str(header.get("HDUCLAS2", "") or "").strip().upper()
    poisserr = reader.keyword("POISSERR")
    if reader.has("COUNTS"):
        counts = reader.column("COUNTS")
        from_rate = False
    elif reader.has("RATE"):
        counts = reader.column("RATE") * exposure
        from_rate = True
    else:
        raise reader.error(
            "neither a COUNTS nor a RATE column; a PHA spectrum needs one of them",
            keyword="COUNTS",
        )
    n = counts.size
    if n == 0:
        raise reader.error("the spectrum has no channel", keyword="COUNTS")
    if channel is None:
        first = int(header.get("TLMIN1", 1))
        channel = np.arange(first, first + n)
    if channel.size != n:
        raise reader.error(f"CHANNEL has {channel.size} values for {n} counts", keyword="CHANNEL")
    if np.any(np.diff(channel) <= 0):
        raise reader.error("CHANNEL values must increase", keyword="CHANNEL")

    integer = bool(np.all(counts >= 0) and np.all(counts == np.round(counts)))
    if poisserr is True and not integer:
        col = "RATE" if from_rate else "COUNTS"
        bad = np.flatnonzero((counts < 0) | (counts != np.round(counts)))
        raise reader.error(
            f"POISSERR = T (Poisson statistics) but {col} has {bad.size} negative or "
            f"non-integer value(s) (first: {counts[bad[0]]} at channel {channel[bad[0]]}); "
            "Poisson data must be non-negative integer counts (or set POISSERR = F and give "
            "STAT_ERR)",
            keyword=col,
        )
    is_poisson = integer and not from_rate and hduclas2 != "NET"

    stat_err = None
    if reader.has("STAT_ERR"):
        stat_err = reader.column("STAT_ERR") * (exposure if from_rate else 1.0)
        if stat_err.size != n:
            raise reader.error("STAT_ERR length differs from COUNTS", keyword="STAT_ERR")
        if np.any(stat_err < 0):
            raise reader.error("STAT_ERR must be >= 0", keyword="STAT_ERR")
    elif poisserr is False and not integer:
        raise reader.error(
            "POISSERR = F but there is no STAT_ERR column: errors for non-Poisson data are "
            "missing",
            keyword="STAT_ERR",
        )
    sys_err = None
    if reader.has("SYS_ERR"):
        sys_err = reader.column("SYS_ERR")
    elif header.get("SYS_ERR") not in (None, 0, 0.0):
        sys_err = np.full(n, reader.number("SYS_ERR"))
    if sys_err is not None and sys_err.size == 1:
        sys_err = np.full(n, float(sys_err[0]))

    if reader.has("QUALITY"):
        quality = reader.column("QUALITY", np.int64)
    else:
        quality = np.full(n, int(header.get("QUALITY", 0) or 0), dtype=np.int64)
    grouping = None
    if reader.has("GROUPING"):
        grouping = reader.column("GROUPING", np.int64)
        if not np.all(np.isin(grouping, (-1, 0, 1))):
            raise reader.error("GROUPING values must be +1, -1 or 0", keyword="GROUPING")
        if np.all(grouping != -1):
            grouping = None
    for arr, name in ((quality, "QUALITY"), (grouping, "GROUPING")):
        if arr is not None and arr.size != n:
            raise reader.error(f"{name} has {arr.size} values for {n} channels", keyword=name)

    background_columns = None
    if reader.has("BACKGROUND_UP") and reader.has("BACKGROUND_DOWN"):
        up = reader.column("BACKGROUND_UP")
        down = reader.column("BACKGROUND_DOWN")
        scale = reader.number("BACKSCUP", 1.0) + reader.number("BACKSCDN", 1.0)
        background_columns = (up + down, np.full(n, scale))

    return Spectrum(
        path=reader.path,
        hdu=label,
        row=reader.row,
        telescope=str(header.get("TELESCOP", "") or "").strip(),
        instrument=str(header.get("INSTRUME", "") or "").strip(),
        hduclas2=hduclas2,
        channel=channel,
        counts=counts,
        stat_err=stat_err,
        sys_err=sys_err,
        is_poisson=is_poisson,
        quality=quality,
        grouping=grouping,
        exposure=exposure,
        backscal=reader.scale("BACKSCAL", n),
        areascal=reader.scale("AREASCAL", n),
        respfile=reader.text("RESPFILE"),
        ancrfile=reader.text("ANCRFILE"),
        backfile=reader.text("BACKFILE"),
        background_columns=background_columns,
    )


_CIAO_FILTER = re.compile(r"^(?P<file>[^\[\]]+)(\[[^\]]*\])+$")


def resolve_pointer(
    value: str | None, beside: Path, *, keyword: str, source: Path, hdu: str | int | None = None
) -> Path | None:
    """Resolve a header pointer (RESPFILE, ANCRFILE, BACKFILE) beside ``beside``.

    ``None``/``none``/``NONE`` -> None. CIAO ``grid(...)`` expressions -> None
    (they describe a grid, not a file). Otherwise tries the name, ``name.gz`` and
    the name without ``.gz``; a missing file raises a DataError naming
    ``source`` and ``keyword``.

    Example:
        >>> resolve_pointer("PN.rmf", Path("data"), keyword="RESPFILE",
        ...                 source=Path("data/spec.pha"))          # doctest: +SKIP
        PosixPath('data/PN.rmf')
    """
    if value is None:
        return None
    value = value.strip()
    if value.lower() in {"", "none", "null"} or value.lower().startswith("grid("):
        return None
    match = _CIAO_FILTER.match(value)
    if match:
        value = match.group("file")
    name = Path(value)
    base = name if name.is_absolute() else Path(beside) / name
    tries = [base, base.with_name(base.name + ".gz")]
    if base.name.endswith(".gz"):
        tries.append(base.with_name(base.name[:-3]))
    for candidate in tries:
        if candidate.is_file():
            return candidate
    option = {"RESPFILE": "rmf", "ANCRFILE": "arf", "BACKFILE": "bkg"}.get(keyword, keyword)
    raise DataError(
        f"file {value!r} named by {keyword} not found beside the spectrum (tried "
        f"{', '.join(str(t.name) for t in tries)} in {base.parent}); pass {option}=PATH, "
        f"or {option}=None to go without it",
        path=str(source),
        hdu=hdu,
        keyword=keyword,
    )
