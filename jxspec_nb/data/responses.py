"""Synthetic responses (Gaussian, diagonal), string shortcuts and ``write_rmf``.

A Gaussian RMF is never stored whole: its rows are computed on demand for the
channels a fold needs, each energy bin spreading over the channels within
``n_sigma`` standard deviations of it (probability = difference of normal CDFs
across the channel edges, per energy-bin centre). Hitomi SXS (32768 channels)
and XRISM Resolve (60000) therefore fold in a band without any dense matrix.

String shortcuts accepted by ``load_observation(rmf=...)``:

* ``"gaussian:5eV"`` (also ``"gaussian:0.005keV"``): Gaussian of that FWHM;
* ``"diagonal"``: perfect resolution.

Both put channel i on ARF energy bin i (microcalorimeter, NuSTAR and grating
products share the ARF grid), so the spectrum needs as many channels as the
ARF has bins.

Example:
    >>> import numpy as np
    >>> edges = np.linspace(6.0, 7.0, 2001)                     # 0.5 eV channels
    >>> rmf = gaussian_rmf(edges, 0.005)                         # 5 eV FWHM
    >>> rmf.rows(np.array([1000])).sum() > 0.99
    True
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy import sparse
from scipy.special import ndtr

from ..errors import DataError
from ._rmf import ARF, RMF

__all__ = ["gaussian_rmf", "diagonal_rmf", "rmf_from_spec", "write_rmf"]

_FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))


def _as_bins(grid, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Accept edges (n+1,) or a (lo, hi) pair of (n,) arrays; check increasing."""
    if isinstance(grid, tuple | list) and len(grid) == 2 and np.ndim(grid[0]) == 1:
        lo, hi = (np.asarray(g, dtype=float) for g in grid)
    else:
        edges = np.asarray(grid, dtype=float)
        if edges.ndim != 1 or edges.size < 2:
            raise DataError(f"{what}: expected bin edges (n+1,) or a (lo, hi) pair")
        lo, hi = edges[:-1], edges[1:]
    if lo.shape != hi.shape or lo.size == 0:
        raise DataError(f"{what}: lo and hi must be non-empty and of equal length")
    if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
        raise DataError(f"{what}: energies must be finite")
    if np.any(hi <= lo) or np.any(np.diff(lo) <= 0) or np.any(lo < 0):
        raise DataError(f"{what}: energies must be >= 0 and strictly increasing (keV)")
    return lo, hi


def gaussian_rmf(
    channel_edges,
    fwhm: float | Callable[[np.ndarray], np.ndarray],
    *,
    energy_edges=None,
    first_channel: int = 0,
    n_sigma: float = 6.0,
) -> RMF:
    """A Gaussian-redistribution RMF, evaluated lazily row by row (never dense).

    Args:
        channel_edges: channel energy bounds in keV, edges (k+1,) or (lo, hi).
        fwhm: FWHM in keV, constant or a callable of photon energy (keV).
        energy_edges: photon energy grid (default: the channel grid).
        first_channel: number of the first channel (0 or 1 in OGIP files).
        n_sigma: half-width of the kernel, in standard deviations.

    Returns:
        An :class:`~jxspec_nb.data.RMF` whose ``rows`` are built on demand.

    Example:
        >>> rmf = gaussian_rmf(np.arange(0, 16.384, 0.0005), 0.005)  # doctest: +SKIP
    """
    c_lo, c_hi = _as_bins(channel_edges, "gaussian_rmf channel_edges")
    e_lo, e_hi = (
        (c_lo, c_hi) if energy_edges is None else _as_bins(energy_edges, "energy_edges")
    )
    fwhm_fn = fwhm if callable(fwhm) else (lambda e, _f=float(fwhm): np.full(np.shape(e), _f))
    centre = 0.5 * (e_lo + e_hi)
    sigma = np.asarray(fwhm_fn(centre), dtype=float) * _FWHM_TO_SIGMA
    if sigma.shape != centre.shape or not np.all(np.isfinite(sigma)) or np.any(sigma <= 0):
        raise DataError("gaussian_rmf: the FWHM must be finite and > 0 at every energy")
    # channel window of every energy bin: [first, last) channel positions
    first = np.searchsorted(c_hi, centre - n_sigma * sigma, side="right")
    last = np.searchsorted(c_lo, centre + n_sigma * sigma, side="left")
    last = np.maximum(last, first)

    def rows(index: np.ndarray) -> sparse.csr_array:
        index = np.asarray(index, dtype=np.int64)
        k = c_lo.size
        wanted = np.zeros(k, dtype=bool)
        wanted[index] = True
        cum = np.concatenate([[0], np.cumsum(wanted)])
        hit = np.flatnonzero(cum[last] - cum[first] > 0)  # energies reaching wanted rows
        lengths = last[hit] - first[hit]
        energy = np.repeat(hit, lengths)
        offset = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        chan = np.repeat(first[hit], lengths) + offset
        keep = wanted[chan]
        energy, chan = energy[keep], chan[keep]
        mu, s = centre[energy], sigma[energy]
        values = ndtr((c_hi[chan] - mu) / s) - ndtr((c_lo[chan] - mu) / s)
        position = np.full(k, -1, dtype=np.int64)
        position[index] = np.arange(index.size)
        return sparse.csr_array(
            (values, (position[chan], energy)), shape=(index.size, e_lo.size)
        )

    text = f"{float(fwhm) * 1e3:g} eV" if not callable(fwhm) else "energy-dependent"
    return RMF(
        energ_lo=e_lo,
        energ_hi=e_hi,
        channel=np.arange(first_channel, first_channel + c_lo.size),
        e_min=c_lo,
        e_max=c_hi,
        matrix=None,
        kind="gaussian",
        description=f"Gaussian redistribution, FWHM {text}",
        _rows=rows,
        _coverage=lambda: last > first,
        _fwhm=lambda e: np.asarray(fwhm_fn(np.asarray(e, dtype=float)), dtype=float),
    )


def diagonal_rmf(energy_edges, channel_edges=None, *, first_channel: int = 0) -> RMF:
    """A diagonal (perfect-resolution) RMF, stored sparse.

    Each photon energy bin goes to the channel containing its centre; with no
    ``channel_edges`` the channels are the energy bins themselves (identity).

    Example:
        >>> diagonal_rmf(np.linspace(1, 2, 11)).matrix.nnz
        10
    """
    e_lo, e_hi = _as_bins(energy_edges, "diagonal_rmf energy_edges")
    if channel_edges is None:
        c_lo, c_hi = e_lo, e_hi
        chan = np.arange(e_lo.size)
        energy = chan
    else:
        c_lo, c_hi = _as_bins(channel_edges, "diagonal_rmf channel_edges")
        centre = 0.5 * (e_lo + e_hi)
        chan_all = np.searchsorted(c_hi, centre, side="right")
        energy = np.flatnonzero((chan_all < c_lo.size) & (centre >= c_lo[0]))
        chan = chan_all[energy]
    matrix = sparse.csr_array(
        (np.ones(chan.size), (chan, energy)), shape=(c_lo.size, e_lo.size)
    )
    return RMF(
        energ_lo=e_lo,
        energ_hi=e_hi,
        channel=np.arange(first_channel, first_channel + c_lo.size),
        e_min=c_lo,
        e_max=c_hi,
        matrix=matrix,
        kind="diagonal",
        description="diagonal (perfect resolution)",
    )


_GAUSS = re.compile(r"^gauss(?:ian)?[:=]\s*(?P<v>\d+(?:\.\d*)?(?:e-?\d+)?)\s*(?P<u>ev|kev)$")


def rmf_from_spec(spec: str, arf: ARF | None, n_channels: int, first_channel: int) -> RMF:
    """Build the RMF named by a string shortcut on the ARF grid (see module doc)."""
    text = spec.strip().lower().replace(" ", "")
    if arf is None:
        raise DataError(
            f"rmf={spec!r} builds a response on the ARF energy grid, but there is no ARF; "
            "pass arf=PATH or build one with gaussian_rmf(channel_edges, fwhm)"
        )
    if arf.energ_lo.size != n_channels:
        raise DataError(
            f"rmf={spec!r} puts channel i on ARF bin i, but the spectrum has {n_channels} "
            f"channels and the ARF {arf.energ_lo.size} bins; build the response with "
            "gaussian_rmf(channel_edges, fwhm, energy_edges=...) instead",
            path=None if arf.path is None else str(arf.path),
        )
    grid = (arf.energ_lo, arf.energ_hi)
    if text == "diagonal":
        return diagonal_rmf(grid, first_channel=first_channel)
    match = _GAUSS.match(text)
    if match:
        value = float(match.group("v")) * (1e-3 if match.group("u") == "ev" else 1.0)
        if value <= 0:
            raise DataError(f"rmf={spec!r}: the FWHM must be > 0")
        return gaussian_rmf(grid, value, first_channel=first_channel)
    raise DataError(
        f"rmf={spec!r} not understood; use 'header', a file path, 'diagonal', "
        "'gaussian:5eV' or an RMF object (gaussian_rmf / diagonal_rmf)"
    )


def write_rmf(rmf: RMF, path: str | Path, *, telescope: str = "", instrument: str = "") -> Path:
    """Write an RMF to an OGIP file (MATRIX + EBOUNDS, variable-length rows).

    Example:
        >>> write_rmf(gaussian_rmf(np.linspace(6, 7, 201), 0.01), "g.rmf")  # doctest: +SKIP
    """
    from astropy.io import fits

    csr = sparse.csc_array(rmf.to_sparse())  # columns = energies
    csr.sort_indices()
    n_e = rmf.n_energies
    n_grp, f_chan, n_chan, values = [], [], [], []
    for j in range(n_e):
        chans = csr.indices[csr.indptr[j] : csr.indptr[j + 1]]
        vals = csr.data[csr.indptr[j] : csr.indptr[j + 1]]
        if chans.size == 0:
            n_grp.append(0)
            f_chan.append(np.zeros(0, np.int32))
            n_chan.append(np.zeros(0, np.int32))
            values.append(np.zeros(0, np.float32))
            continue
        breaks = np.flatnonzero(np.diff(chans) != 1) + 1
        starts = np.concatenate([[0], breaks])
        stops = np.concatenate([breaks, [chans.size]])
        n_grp.append(starts.size)
        f_chan.append((chans[starts] + int(rmf.channel[0])).astype(np.int32))
        n_chan.append((stops - starts).astype(np.int32))
        values.append(np.concatenate([vals[a:b] for a, b in zip(starts, stops, strict=True)]))
    cols = [
        fits.Column("ENERG_LO", "E", unit="keV", array=rmf.energ_lo),
        fits.Column("ENERG_HI", "E", unit="keV", array=rmf.energ_hi),
        fits.Column("N_GRP", "I", array=np.array(n_grp, dtype=np.int16)),
        fits.Column("F_CHAN", "PJ()", array=np.array(f_chan, dtype=object)),
        fits.Column("N_CHAN", "PJ()", array=np.array(n_chan, dtype=object)),
        fits.Column("MATRIX", "PE()", array=np.array(values, dtype=object)),
    ]
    matrix = fits.BinTableHDU.from_columns(cols, name="MATRIX")
    matrix.header["TLMIN4"] = int(rmf.channel[0])
    ebounds = fits.BinTableHDU.from_columns(
        [
            fits.Column("CHANNEL", "J", array=rmf.channel),
            fits.Column("E_MIN", "E", unit="keV", array=rmf.e_min),
            fits.Column("E_MAX", "E", unit="keV", array=rmf.e_max),
        ],
        name="EBOUNDS",
    )
    for hdu, clas2 in ((matrix, "RSP_MATRIX"), (ebounds, "EBOUNDS")):
        hdu.header["HDUCLASS"] = "OGIP"
        hdu.header["HDUCLAS1"] = "RESPONSE"
        hdu.header["HDUCLAS2"] = clas2
        hdu.header["HDUCLAS3"] = "FULL" if rmf.includes_area else "REDIST"
        hdu.header["DETCHANS"] = rmf.n_channels
        hdu.header["CHANTYPE"] = "PI"
        hdu.header["TELESCOP"] = telescope or "NONE"
        hdu.header["INSTRUME"] = instrument or "NONE"
    path = Path(path)
    fits.HDUList([fits.PrimaryHDU(), matrix, ebounds]).writeto(path, overwrite=True)
    return path
