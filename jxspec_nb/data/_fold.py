"""Channel-level source data and the folding operator of an observation.

Rules (documented in :mod:`jxspec_nb.data.observation`):

* channels with QUALITY != 0 (source or background), or with a non-positive
  BACKSCAL / AREASCAL, are dropped from their groups;
* a group is *noticed* by ``notice(lo, hi)`` when the energy span of its good
  channels (EBOUNDS ``[min E_MIN, max E_MAX]``) lies wholly inside ``[lo, hi]``;
  ``ignore(lo, hi)`` drops every group whose span overlaps ``(lo, hi)``;
* the fold keeps the energy bins of non-zero width with a lower edge > 0 that reach a
  noticed group, trimmed to one contiguous range (``energies="band"``, the default),
  or every bin that reaches at least one channel of the response
  (``energies="response"``, jaxspec 0.4.1's rule).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

from ..errors import DataError
from ._rmf import ARF, RMF
from .ogip import Spectrum

Op = tuple[str, float, float]


@dataclass(frozen=True, eq=False)
class Source:
    """Everything at channel level that an Observation is derived from."""

    spectrum: Spectrum
    rmf: RMF
    arf: ARF | None
    background: np.ndarray | None  # (n,) background counts per channel
    background_scale: np.ndarray | None  # (n,) per-channel source/background ratio
    background_label: str | None
    good: np.ndarray  # (n,) bool: usable channels
    energies: str = "band"

    @property
    def e_min(self) -> np.ndarray:
        return self.rmf.e_min

    @property
    def e_max(self) -> np.ndarray:
        return self.rmf.e_max


def group_bounds(source: Source, gid: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per group: number of good channels, lowest E_MIN and highest E_MAX of them."""
    n_groups = int(gid[-1]) + 1 if gid.size else 0
    good = source.good
    size = np.bincount(gid[good], minlength=n_groups)
    lo = np.full(n_groups, np.inf)
    hi = np.full(n_groups, -np.inf)
    np.minimum.at(lo, gid[good], source.e_min[good])
    np.maximum.at(hi, gid[good], source.e_max[good])
    return size, lo, hi


def noticed_groups(size: np.ndarray, lo: np.ndarray, hi: np.ndarray, ops: tuple[Op, ...]):
    """Apply notice / ignore / band operations in order (see module doc)."""
    noticed = size > 0
    for kind, a, b in ops:
        inside = (lo >= a) & (hi <= b)
        if kind == "band":
            noticed = (size > 0) & inside
        elif kind == "notice":
            noticed = noticed | ((size > 0) & inside)
        elif kind == "ignore":
            noticed = noticed & ~((hi > a) & (lo < b))
        else:  # pragma: no cover - internal
            raise ValueError(kind)
    return noticed


def _group_ratio(newg, ratio, bkg, n_sel) -> np.ndarray:
    """Background ratio per group: exact when constant, count-weighted otherwise."""
    r_min = np.full(n_sel, np.inf)
    r_max = np.full(n_sel, -np.inf)
    np.minimum.at(r_min, newg, ratio)
    np.maximum.at(r_max, newg, ratio)
    b_sum = np.bincount(newg, weights=bkg, minlength=n_sel)
    weighted = np.bincount(newg, weights=ratio * bkg, minlength=n_sel)
    mean = np.bincount(newg, weights=ratio, minlength=n_sel) / np.bincount(newg, minlength=n_sel)
    with np.errstate(invalid="ignore", divide="ignore"):
        varying = np.where(b_sum > 0, weighted / b_sum, mean)
    return np.where(r_min == r_max, r_min, varying)


def assemble(source: Source, flags: np.ndarray | None, ops: tuple[Op, ...], gid: np.ndarray):
    """Grouped, band-selected arrays and the fold (dict of Observation fields)."""
    spec = source.spectrum
    size, lo, hi = group_bounds(source, gid)
    noticed = noticed_groups(size, lo, hi, ops)
    if not np.any(noticed):
        band = "; ".join(f"{k} {a:g}-{b:g} keV" for k, a, b in ops) or "all channels"
        usable = (size > 0).sum()
        span = f"{lo[size > 0].min():g}-{hi[size > 0].max():g} keV" if usable else "none"
        raise DataError(
            f"the band selection ({band}) selects no channel group: {usable} usable groups "
            f"span {span}; a group is kept only when all its good channels lie inside the band",
            path=str(spec.path),
            hdu=spec.hdu,
        )
    selected = np.flatnonzero(noticed)
    new_index = np.full(noticed.size, -1, dtype=np.int64)
    new_index[selected] = np.arange(selected.size)
    chan = np.flatnonzero(source.good & noticed[gid])
    newg = new_index[gid[chan]]
    n_sel = selected.size

    rows = source.rmf.rows(chan)  # (len(chan), m) sparse
    row_scale = spec.areascal[chan] * spec.exposure
    rows = sparse.csr_array(rows.multiply(row_scale[:, None]))
    if source.arf is not None and not source.rmf.includes_area:
        rows = sparse.csr_array(rows.multiply(source.arf.specresp[None, :]))
    grouping = sparse.csr_array(
        (np.ones(chan.size), (newg, np.arange(chan.size))), shape=(n_sel, chan.size)
    )
    full = sparse.csr_array(grouping @ rows)
    full.eliminate_zeros()

    rmf = source.rmf
    positive = (rmf.energ_lo > 0) & (rmf.energ_hi > rmf.energ_lo)
    if source.energies == "band":
        reached = np.zeros(rmf.n_energies, dtype=bool)
        reached[full.indices] = True
        reached &= positive
        if not np.any(reached):
            raise DataError(
                "no energy bin of the response reaches the noticed channels",
                path=str(spec.path),
            )
        first, last = np.flatnonzero(reached)[[0, -1]]
        columns = np.zeros(rmf.n_energies, dtype=bool)
        columns[first : last + 1] = True
        columns &= positive
    else:
        columns = rmf.energy_coverage() & positive
    col_index = np.flatnonzero(columns)
    fold = sparse.csr_array(full[:, col_index])
    if fold.nnz == 0:
        raise DataError(
            "the response gives zero effective area in every noticed channel; check the "
            "RMF/ARF pair and the band",
            path=str(spec.path),
        )

    counts = np.bincount(newg, weights=spec.counts[chan], minlength=n_sel)
    stat_err = None
    if spec.stat_err is not None:
        stat_err = np.sqrt(np.bincount(newg, weights=spec.stat_err[chan] ** 2, minlength=n_sel))
    sys_err = None
    if spec.sys_err is not None:
        n_in = np.bincount(newg, minlength=n_sel)
        sys_err = np.bincount(newg, weights=spec.sys_err[chan], minlength=n_sel) / n_in
    background = ratio = None
    if source.background is not None:
        background = np.bincount(newg, weights=source.background[chan], minlength=n_sel)
        ratio = _group_ratio(newg, source.background_scale[chan], source.background[chan], n_sel)
    else:
        ratio = np.zeros(n_sel)
    first_channel = np.full(n_sel, np.iinfo(np.int64).max)
    last_channel = np.full(n_sel, np.iinfo(np.int64).min)
    np.minimum.at(first_channel, newg, spec.channel[chan])
    np.maximum.at(last_channel, newg, spec.channel[chan])
    return dict(
        counts=counts,
        stat_err=stat_err,
        sys_err=sys_err,
        background=background,
        background_ratio=ratio,
        e_lo=rmf.energ_lo[col_index].copy(),
        e_hi=rmf.energ_hi[col_index].copy(),
        channel_lo=lo[selected],
        channel_hi=hi[selected],
        fold=fold,
        first_channel=first_channel,
        last_channel=last_channel,
        group_size=size[selected],
    )
