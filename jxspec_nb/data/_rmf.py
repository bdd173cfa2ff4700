"""Response objects (RMF / RSP and ARF) and their OGIP readers.

The RMF is decoded straight from the compressed N_GRP / F_CHAN / N_CHAN rows
into a ``scipy.sparse.csr_array`` of shape (channels, energies): no dense matrix
is ever built. MATRIX may be a variable-length (``PE``) or fixed-length row
(``1024E``; zero padded ``245E``), F_CHAN / N_CHAN scalars, fixed vectors or
variable-length arrays; TLMIN of F_CHAN (else the first EBOUNDS channel) gives
the channel offset. EBOUNDS and MATRIX are found by name in any HDU order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import sparse

from ..errors import DataError
from ._fits import (
    TableReader,
    check_energy_grid,
    energy_unit_factor,
    find_hdus,
    open_fits,
    require_hdu,
)

__all__ = ["RMF", "ARF", "read_rmf", "read_arf"]

# rows(channel_index) -> csr_array (len(index), n_energies)
RowBuilder = Callable[[np.ndarray], sparse.csr_array]


@dataclass(frozen=True, eq=False)
class RMF:
    """A redistribution matrix (or full RSP) on channels x energies, stored sparse.

    Attributes:
        energ_lo, energ_hi: (m,) photon energy bins in keV (increasing).
        channel: (k,) channel numbers; e_min, e_max: (k,) nominal channel bounds, keV.
        matrix: csr_array (k, m), or None for a synthetic response built lazily
            row by row (see :func:`jxspec_nb.data.gaussian_rmf`).
        includes_area: True for an RSP (HDUCLAS3=FULL / SPECRESP MATRIX): the
            matrix is in cm^2 and no ARF must be applied.
        path: the file read, if any; kind: "file", "gaussian" or "diagonal".
        description: short human-readable description.
    """

    energ_lo: np.ndarray
    energ_hi: np.ndarray
    channel: np.ndarray
    e_min: np.ndarray
    e_max: np.ndarray
    matrix: sparse.csr_array | None = None
    includes_area: bool = False
    path: Path | None = None
    kind: str = "file"
    description: str = ""
    _rows: RowBuilder | None = field(default=None, repr=False)
    _coverage: Callable[[], np.ndarray] | None = field(default=None, repr=False)
    _fwhm: Callable[[np.ndarray], np.ndarray] | None = field(default=None, repr=False)

    @property
    def n_channels(self) -> int:
        return int(self.channel.size)

    @property
    def n_energies(self) -> int:
        return int(self.energ_lo.size)

    def rows(self, index: np.ndarray) -> sparse.csr_array:
        """Rows (channels, by 0-based position) of the matrix: csr (len(index), m)."""
        index = np.asarray(index, dtype=np.int64)
        if self.matrix is not None:
            return sparse.csr_array(self.matrix[index])
        assert self._rows is not None
        return self._rows(index)

    def to_sparse(self) -> sparse.csr_array:
        """The whole matrix (channels x energies), sparse."""
        if self.matrix is not None:
            return self.matrix
        return self.rows(np.arange(self.n_channels))

    def energy_coverage(self) -> np.ndarray:
        """Boolean (m,): energy bins that reach at least one channel."""
        if self.matrix is not None:
            counts = np.bincount(self.matrix.indices, minlength=self.n_energies)
            return counts > 0
        assert self._coverage is not None
        return self._coverage()

    def fwhm_channels(self) -> np.ndarray:
        """Approximate FWHM of the redistribution, in channels, per channel (k,)."""
        centre = 0.5 * (self.e_min + self.e_max)
        width = np.abs(self.e_max - self.e_min)
        if self._fwhm is not None:
            return np.maximum(self._fwhm(centre) / np.where(width > 0, width, 1.0), 1.0)
        csc = sparse.csc_array(self.to_sparse())
        csc.sort_indices()
        nnz_cols = np.flatnonzero(np.diff(csc.indptr) > 0)
        starts = csc.indptr[:-1][nnz_cols]
        peak = np.maximum.reduceat(csc.data, starts)
        col_of = np.repeat(np.arange(self.n_energies), np.diff(csc.indptr))
        peak_full = np.zeros(self.n_energies)
        peak_full[nnz_cols] = peak
        above = csc.data >= 0.5 * peak_full[col_of]
        n_above = np.bincount(col_of[above], minlength=self.n_energies).astype(float)
        e_mid = 0.5 * (self.energ_lo + self.energ_hi)
        ok = n_above > 0
        if not np.any(ok):
            return np.ones(self.n_channels)
        fwhm = np.interp(centre, e_mid[ok], n_above[ok])
        return np.maximum(fwhm, 1.0)

    def __repr__(self) -> str:
        what = "RSP" if self.includes_area else "RMF"
        src = self.path.name if self.path is not None else self.kind
        nnz = "lazy" if self.matrix is None else f"nnz={self.matrix.nnz}"
        return (
            f"{what}({src}: {self.n_channels} channels x {self.n_energies} energies "
            f"{self.energ_lo[0]:g}-{self.energ_hi[-1]:g} keV, {nnz})"
        )


@dataclass(frozen=True, eq=False)
class ARF:
    """An ancillary response: effective area (cm^2) on an energy grid (keV)."""

    energ_lo: np.ndarray
    energ_hi: np.ndarray
    specresp: np.ndarray
    path: Path | None = None
    respfile: str | None = None

    def __repr__(self) -> str:
        src = self.path.name if self.path is not None else "array"
        return (
            f"ARF({src}: {self.energ_lo.size} bins {self.energ_lo[0]:g}-"
            f"{self.energ_hi[-1]:g} keV, max {self.specresp.max():.4g} cm^2)"
        )


def read_arf(path: str | Path) -> ARF:
    """Read an OGIP ARF (SPECRESP extension).

    Example:
        >>> arf = read_arf("PN.arf")                                 # doctest: +SKIP
    """
    path = Path(path)
    with open_fits(path) as hdul:
        hdu = require_hdu(hdul, path, ("SPECRESP",), ("SPECRESP",))
        reader = TableReader(hdul, hdu, path)
        f_lo = energy_unit_factor(reader, "ENERG_LO")
        lo = reader.column("ENERG_LO") * f_lo
        hi = reader.column("ENERG_HI") * energy_unit_factor(reader, "ENERG_HI")
        area = reader.column("SPECRESP")
        check_energy_grid(reader, lo, hi, "ARF")
        if area.size != lo.size:
            raise reader.error("SPECRESP length differs from ENERG_LO", keyword="SPECRESP")
        if np.any(area < 0):
            raise reader.error("SPECRESP (effective area) must be >= 0", keyword="SPECRESP")
        unit = reader.unit("SPECRESP").replace(" ", "").lower()
        if unit in ("m2", "m**2", "m^2"):
            area = area * 1e4
        return ARF(lo, hi, area, path, reader.text("RESPFILE"))


def _channel_offset(reader: TableReader, ebounds_channel: np.ndarray) -> int:
    """The channel number F_CHAN counts from: TLMIN of F_CHAN, else first EBOUNDS channel."""
    names = [n.upper() for n in reader.hdu.columns.names]
    key = f"TLMIN{names.index('F_CHAN') + 1}"
    if key in reader.header:
        return int(reader.header[key])
    return int(ebounds_channel[0]) if ebounds_channel.size else 1


def _group_table(reader: TableReader, name: str, n_grp: np.ndarray) -> np.ndarray:
    """F_CHAN or N_CHAN of the active groups, flattened row after row."""
    raw = reader.raw(name)
    total = int(n_grp.sum())
    if raw.dtype != object and np.ndim(raw) <= 2:
        arr = np.asarray(raw, dtype=np.int64)
        if arr.ndim == 1:
            arr = arr[:, None]
        if np.any(n_grp > arr.shape[1]):
            raise reader.error(f"N_GRP exceeds the {arr.shape[1]} slots of {name}", keyword=name)
        mask = np.arange(arr.shape[1])[None, :] < n_grp[:, None]
        return arr[mask]
    parts = []
    for i, (values, g) in enumerate(zip(raw, n_grp, strict=True)):
        values = np.asarray(values, dtype=np.int64).reshape(-1)
        if values.size < g:
            raise reader.error(f"row {i}: {name} has fewer than N_GRP={g} entries", keyword=name)
        parts.append(values[:g])
    out = np.concatenate(parts) if parts else np.zeros(0, np.int64)
    assert out.size == total
    return out


def _matrix_values(reader: TableReader, row_total: np.ndarray) -> np.ndarray:
    raw = reader.raw("MATRIX")
    if raw.dtype != object and np.ndim(raw) <= 2:
        arr = np.asarray(raw, dtype=np.float64)
        if arr.ndim == 1:
            arr = arr[:, None]
        if np.any(row_total > arr.shape[1]):
            i = int(np.flatnonzero(row_total > arr.shape[1])[0])
            raise reader.error(
                f"row {i}: N_CHAN sum {row_total[i]} exceeds the {arr.shape[1]} MATRIX values",
                keyword="MATRIX",
            )
        mask = np.arange(arr.shape[1])[None, :] < row_total[:, None]
        return arr[mask]
    parts = []
    for i, (values, t) in enumerate(zip(raw, row_total, strict=True)):
        values = np.asarray(values, dtype=np.float64).reshape(-1)
        if values.size < t:
            raise reader.error(
                f"row {i}: MATRIX has {values.size} values but N_CHAN sums to {t}",
                keyword="MATRIX",
            )
        parts.append(values[:t])
    return np.concatenate(parts) if parts else np.zeros(0)


def read_rmf(path: str | Path) -> RMF:
    """Read an OGIP RMF or RSP into a sparse :class:`RMF`.

    Example:
        >>> rmf = read_rmf("PN.rmf")                                 # doctest: +SKIP
        >>> rmf.matrix.shape
        (4096, 2067)
    """
    path = Path(path)
    with open_fits(path) as hdul:
        matrices = find_hdus(hdul, ("MATRIX", "SPECRESP MATRIX"), ("RSP_MATRIX",))
        matrices = [h for h in matrices if h.name.upper() != "EBOUNDS"]
        if not matrices:
            present = ", ".join(repr(h.name) for h in hdul[1:]) or "none"
            raise DataError(
                f"no MATRIX or SPECRESP MATRIX extension (extensions present: {present}); "
                "is this an RMF/RSP file?",
                path=str(path),
            )
        if len(matrices) > 1:
            raise DataError(
                f"{len(matrices)} MATRIX extensions (several orders / components); "
                "combine them into one response first",
                path=str(path),
            )
        ebounds = require_hdu(hdul, path, ("EBOUNDS",), ("EBOUNDS",))
        eb = TableReader(hdul, ebounds, path)
        channel = eb.column("CHANNEL", np.int64)
        e_min = eb.column("E_MIN") * energy_unit_factor(eb, "E_MIN")
        e_max = eb.column("E_MAX") * energy_unit_factor(eb, "E_MAX")
        if np.any(e_max < e_min) or np.any(e_min < 0):
            raise eb.error("E_MAX must be >= E_MIN >= 0 for every channel", keyword="E_MAX")

        mt = TableReader(hdul, matrices[0], path)
        lo = mt.column("ENERG_LO") * energy_unit_factor(mt, "ENERG_LO")
        hi = mt.column("ENERG_HI") * energy_unit_factor(mt, "ENERG_HI")
        check_energy_grid(mt, lo, hi, "RMF")
        n_grp = mt.column("N_GRP", np.int64)
        if np.any(n_grp < 0):
            raise mt.error("N_GRP must be >= 0", keyword="N_GRP")
        f_chan = _group_table(mt, "F_CHAN", n_grp) - _channel_offset(mt, channel)
        n_chan = _group_table(mt, "N_CHAN", n_grp)
        if np.any(n_chan < 0):
            raise mt.error("N_CHAN must be >= 0", keyword="N_CHAN")
        k = channel.size
        used = n_chan > 0
        if np.any(f_chan[used] < 0) or np.any(f_chan[used] + n_chan[used] > k):
            raise mt.error(
                f"F_CHAN/N_CHAN point outside the {k} EBOUNDS channels (check TLMIN of F_CHAN)",
                keyword="F_CHAN",
            )
        group_energy = np.repeat(np.arange(n_grp.size), n_grp)
        row_total = np.bincount(group_energy, weights=n_chan, minlength=n_grp.size).astype(int)
        values = _matrix_values(mt, row_total)
        if not np.all(np.isfinite(values)):
            raise mt.error("MATRIX has NaN/inf values", keyword="MATRIX")
        if np.any(values < 0):
            raise mt.error("MATRIX has negative values", keyword="MATRIX")
        total = int(n_chan.sum())
        starts = np.repeat(np.cumsum(n_chan) - n_chan, n_chan)
        chan = np.repeat(f_chan, n_chan) + (np.arange(total) - starts)
        energy = np.repeat(group_energy, n_chan)
        keep = values != 0
        coo = sparse.coo_array(
            (values[keep], (chan[keep], energy[keep])), shape=(k, n_grp.size)
        )
        matrix = sparse.csr_array(coo)
        matrix.sum_duplicates()
        clas3 = str(mt.header.get("HDUCLAS3", "") or "").strip().upper()
        if clas3 == "FULL":
            includes_area = True
        elif clas3 in ("REDIST", "DETECTOR"):
            includes_area = False
        else:
            includes_area = mt.hdu.name.upper() == "SPECRESP MATRIX"
        return RMF(
            energ_lo=lo,
            energ_hi=hi,
            channel=channel,
            e_min=e_min,
            e_max=e_max,
            matrix=matrix,
            includes_area=includes_area,
            path=path,
            kind="file",
            description=f"{mt.header.get('TELESCOP', '')} {mt.header.get('INSTRUME', '')}",
        )
