"""A small reader of FITS binary tables: what OGIP spectra, responses and the packaged
cross-section tables need, without importing astropy.

``astropy.io.fits`` costs ~0.2 s to import and converts variable-length columns (RMF
matrices) row by row; a fit reads a few small files, so this reader parses the
headers and views the tables' bytes as numpy arrays directly. It covers binary
tables with logical, integer, real, complex and string columns, repeat counts,
``TDIM``, ``TSCAL``/``TZERO`` and variable-length (``P``/``Q``) numeric columns, in plain
or gzip-compressed files. Anything else raises :class:`Unsupported` (and a damaged
file ``ValueError``): :func:`jxspec_nb.data._fits.open_fits` then hands the file to
astropy, which either reads it or says what is wrong. The interface is the subset of
astropy's ``HDUList`` / ``BinTableHDU`` that the data layer uses.

Example:
    >>> hdul = read("PN_spectrum_grp20.fits")                   # doctest: +SKIP
    >>> hdul["SPECTRUM"].data["COUNTS"][:3]                    # doctest: +SKIP
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["HDUList", "Unsupported", "read"]

_BLOCK = 2880
_CARD = 80
_TYPES = {"L": "S1", "B": "u1", "I": ">i2", "J": ">i4", "K": ">i8", "E": ">f4",
          "D": ">f8", "C": ">c8", "M": ">c16", "A": "S1"}
_FORM = re.compile(r"^\s*(\d*)\s*([LXBIJKAEDCMPQ])\s*([LXBIJKAEDCM]?)\s*(?:\((\d*)\))?\s*$")
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eEdD][+-]?\d+)?$")
_INTEGER = re.compile(r"^[+-]?\d+$")
_COMMENTARY = ("COMMENT", "HISTORY", "")


class Unsupported(Exception):
    """A valid FITS construct this reader does not handle (astropy reads it instead)."""


def _value(text: str) -> Any:
    """The value of a card's value field (after ``= ``): str, bool, int, float or None."""
    text = text.lstrip()
    if text.startswith("'"):
        out, i = [], 1
        while True:
            j = text.find("'", i)
            if j < 0:  # no closing quote: the rest of the card (as astropy reads it)
                return "".join(out + [text[i:]]).rstrip()
            out.append(text[i:j])
            if text[j + 1:j + 2] == "'":  # '' is a quote inside the string
                out.append("'")
                i = j + 2
                continue
            return "".join(out).rstrip()
    field = text.split("/", 1)[0].strip()
    if field == "":
        return None
    if field in ("T", "F"):
        return field == "T"
    if _INTEGER.match(field):
        return int(field)
    if _NUMBER.match(field):
        return float(field.replace("D", "E").replace("d", "e"))
    raise Unsupported(f"header value {field!r}")  # complex values and the like


class Header(dict):
    """Keyword -> value (the first card of a keyword wins; CONTINUE strings joined)."""


def _header(buf: bytes, pos: int) -> tuple[Header, int]:
    header, last = Header(), None
    while True:
        if pos + _BLOCK > len(buf):
            raise ValueError("the file ends inside a header")
        block = buf[pos:pos + _BLOCK].decode("ascii", "replace")
        pos += _BLOCK
        for i in range(0, _BLOCK, _CARD):
            card = block[i:i + _CARD]
            key = card[:8].rstrip()
            if key == "END":
                return header, pos
            if key == "CONTINUE" and isinstance(header.get(last), str) \
                    and header[last].endswith("&"):
                more = _value(card[8:])
                header[last] = header[last][:-1] + (more if isinstance(more, str) else "")
            elif card[8:10] == "= " and key not in header and key not in _COMMENTARY:
                header[key] = _value(card[10:])
                last = key


class Column:
    def __init__(self, name: str, unit: str | None) -> None:
        self.name, self.unit = name, unit


class Columns:
    """``.names`` and ``columns[name].unit``, as astropy's ColDefs."""

    def __init__(self, cols: list[Column]) -> None:
        self._cols = cols
        self.names = [c.name for c in cols]

    def __getitem__(self, key: str | int) -> Column:
        if isinstance(key, int):
            return self._cols[key]
        for c in self._cols:
            if c.name == key:
                return c
        raise KeyError(key)


class Table:
    """The rows of a binary table: ``table[name]`` is a column's array (decoded once)."""

    def __init__(self, header: Header, raw: bytes, heap: bytes) -> None:
        self._raw, self._heap = raw, heap
        self._rows = int(header.get("NAXIS2", 0))
        self._width = int(header.get("NAXIS1", 0))
        self._spec: dict[str, tuple[Any, ...]] = {}
        self._cache: dict[str, np.ndarray] = {}
        offset = 0
        for n in range(1, int(header.get("TFIELDS", 0)) + 1):
            form = header.get(f"TFORM{n}")
            m = _FORM.match(str(form or ""))
            if m is None:
                raise ValueError(f"column {n}: TFORM {form!r} is not a FITS binary format")
            count = int(m.group(1)) if m.group(1) else 1
            code, elem = m.group(2), m.group(3)
            if code == "X" or (code in "PQ" and elem in ("", "A", "L", "X")) \
                    or (code == "A" and header.get(f"TDIM{n}")):  # (arrays of strings)
                raise Unsupported(f"column format {form!r}")
            name = str(header.get(f"TTYPE{n}", "") or "")
            if name in self._spec or (count == 0 and code not in "PQ"):
                raise Unsupported(f"column {n}: repeated name {name!r} or zero width")
            size = 8 if code == "P" else 16 if code == "Q" else np.dtype(_TYPES[code]).itemsize
            self._spec[name] = (offset, count, code, elem, header.get(f"TSCAL{n}"),
                                header.get(f"TZERO{n}"), header.get(f"TDIM{n}"))
            offset += size * count
        if offset != self._width:
            raise ValueError(f"the columns take {offset} bytes a row, NAXIS1 is {self._width}")

    def __len__(self) -> int:
        return self._rows

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._cache:
            self._cache[name] = self._column(name)
        return self._cache[name]

    def _view(self, offset: int, dtype: str, count: int) -> np.ndarray:
        dt = np.dtype(dtype)
        arr = np.ndarray((self._rows, count), dtype=dt, buffer=self._raw, offset=offset,
                         strides=(self._width, dt.itemsize))
        return arr.astype(dt.newbyteorder("="))

    def _column(self, name: str) -> np.ndarray:
        offset, count, code, elem, tscal, tzero, tdim = self._spec[name]
        if code in "PQ":
            desc = self._view(offset, ">i4" if code == "P" else ">i8", 2)
            dt = np.dtype(_TYPES[elem])
            out = np.empty(self._rows, dtype=object)
            for i, (n, start) in enumerate(desc):
                if start < 0 or n < 0 or start + n * dt.itemsize > len(self._heap):
                    raise ValueError(f"column {name}: row {i} points outside the heap")
                out[i] = _scaled(np.frombuffer(self._heap, dt, int(n), int(start)).astype(
                    dt.newbyteorder("=")), tscal, tzero)
            return out
        if code == "A":
            raw = self._view(offset, f"S{count}", 1)[:, 0]
            return np.array([s.decode("ascii", "replace").rstrip() for s in raw], dtype=object)
        arr = self._view(offset, _TYPES[code], count)
        if code == "L":
            arr = arr == b"T"
        else:
            arr = _scaled(arr, tscal, tzero)
        if tdim:
            dims = [int(d) for d in str(tdim).strip("() ").split(",") if d.strip()]
            if int(np.prod(dims)) == count and len(dims) > 1:
                return arr.reshape((self._rows, *dims[::-1]))
        return arr[:, 0] if count == 1 else arr


def _scaled(arr: np.ndarray, tscal: Any, tzero: Any) -> np.ndarray:
    if tscal is None and tzero is None:
        return arr
    scale = 1.0 if tscal is None else float(tscal)
    zero = 0.0 if tzero is None else float(tzero)
    if scale == 1.0 and arr.dtype.kind == "i" and zero == 2.0 ** (8 * arr.itemsize - 1):
        return arr.view(arr.dtype.str.replace("i", "u")) ^ np.array(  # unsigned integers
            1 << (8 * arr.itemsize - 1), dtype=arr.dtype.str.replace("i", "u"))
    if scale == 1.0 and arr.dtype.kind == "u" and zero == -128.0:
        return (arr.astype(np.int16) - 128).astype(np.int8)  # signed bytes
    return arr * scale + zero


class HDU:
    """One header and data unit: ``.name``, ``.header``, ``.data`` (a :class:`Table`
    for binary tables, else None), ``.columns``."""

    def __init__(self, header: Header, table: Table | None, columns: Columns | None,
                 name: str) -> None:
        self.header, self.data, self.columns, self.name = header, table, columns, name
        self.is_table = table is not None


class HDUList(list):
    """The HDUs of a file, indexable by position or (case-insensitive) EXTNAME."""

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            for hdu in self:
                if hdu.name == key.strip().upper():
                    return hdu
            raise KeyError(key)
        return super().__getitem__(key)

    def index(self, hdu: Any, *args: Any) -> int:
        for i, h in enumerate(self):
            if h is hdu:
                return i
        raise ValueError("HDU not in this file")

    def __enter__(self) -> HDUList:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None


def read(path: str | Path) -> HDUList:
    """Every HDU of a FITS file (plain or gzip): tables decoded on first access."""
    buf = Path(path).read_bytes()
    if buf[:2] == b"\x1f\x8b":
        buf = gzip.decompress(buf)
    if not buf.startswith(b"SIMPLE  ="):
        if buf[:3] == b"BZh":
            raise Unsupported("bzip2-compressed file")
        raise ValueError("not a FITS file (no SIMPLE card)")
    hdus, pos = HDUList(), 0
    while pos < len(buf):
        if not buf[pos:pos + _BLOCK].strip(b"\0 "):
            break  # trailing padding
        header, pos = _header(buf, pos)
        if header.get("GROUPS") is True:
            raise Unsupported("random groups")
        naxis = [int(header.get(f"NAXIS{i}", 0)) for i in range(1, int(header.get("NAXIS", 0)) + 1)]
        pcount, gcount = int(header.get("PCOUNT", 0)), int(header.get("GCOUNT", 1))
        nbytes = abs(int(header.get("BITPIX", 8))) // 8 * gcount * (
            pcount + (int(np.prod(naxis)) if naxis else 0))
        if pos + nbytes > len(buf):
            raise ValueError("the file ends inside a data unit (truncated)")
        kind = str(header.get("XTENSION", "") or "").strip().upper() if hdus else "PRIMARY"
        name = str(header.get("EXTNAME", "") or "").strip().upper() if "EXTNAME" in header \
            else ("PRIMARY" if not hdus else "")
        if kind == "BINTABLE":
            size = naxis[0] * naxis[1] if len(naxis) == 2 else 0
            theap = int(header.get("THEAP", size))
            data = buf[pos:pos + nbytes]
            table = Table(header, data[:size], data[theap:])
            cols = [Column(n, (str(header[f"TUNIT{i}"]) if header.get(f"TUNIT{i}") is not None
                               else None))
                    for i, n in enumerate(table._spec, start=1)]
            hdus.append(HDU(header, table, Columns(cols), name))
        elif kind in ("PRIMARY", "IMAGE"):
            hdus.append(HDU(header, None, None, name))
        else:  # ASCII tables and other extensions
            raise Unsupported(f"{kind or 'unnamed'} extension")
        pos += -(-nbytes // _BLOCK) * _BLOCK
    return hdus
