"""The Observation: grouped counts, background and the folding operator.

``predicted counts = fold @ photon_flux`` where ``photon_flux`` is the model's
photon flux integrated over each bin of ``(e_lo, e_hi)`` (photons/cm^2/s) and
``fold = exposure x AREASCAL x grouping x RMF x ARF`` restricted to the noticed
groups and to the model energy bins (scipy.sparse.csr_array, shape (n, m)).

Channel-inclusion rule (band selection by energy). XSPEC is the reference:
``notice 0.5-10.`` selects (grouped) channels by their EBOUNDS energies. Here a
channel group is noticed when the energy span of its good channels,
``[min E_MIN, max E_MAX]``, lies wholly inside ``[lo, hi]`` (both ends
inclusive); ``ignore(lo, hi)`` drops every group whose span overlaps ``(lo, hi)``.
This is the rule of jaxspec 0.4.1, so ULX-4 EPIC-pn in 0.5-10 keV with the
file's grouping gives the same 104 groups. Channels with QUALITY != 0 are
dropped first (XSPEC ``ignore bad``).

Model energy grid: by default (``energies="band"``) the contiguous range of the
response's energy bins (non-zero width, lower edge > 0) that reach the noticed
groups; the model is evaluated only where it can change the prediction (much
smaller for microcalorimeters fitted in a narrow band). ``energies="response"``
keeps every bin that reaches any channel (jaxspec 0.4.1's grid; for ULX-4 the
extra 577 columns are all zero).

Example:
    >>> from jxspec_nb import datasets
    >>> obs = datasets.load("ngc7793_ulx4", bkg=None)              # doctest: +SKIP
    >>> obs.fold.shape
    (104, 1490)
"""

from __future__ import annotations

import dataclasses
import html
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import sparse

from ..errors import DataError
from ._fold import Op, Source, assemble
from .grouping import group_ids, min_counts_flags, optimal_flags, parse_group

__all__ = ["Observation"]

_KEEP = object()  # "keep the current grouping" (None means ungrouped)


@dataclass(frozen=True, eq=False)
class Observation:
    """A spectrum ready to fold a model through (see module doc for the rules).

    Attributes:
        name, spectrum_path, telescope, instrument, exposure (s).
        counts: (n,) grouped counts of the noticed groups (float64).
        stat_err: (n,) statistical errors (quadrature sums) or None.
        is_poisson: counts are Poisson integers (C-stat applies).
        background: (n,) grouped background counts, or None.
        background_ratio: (n,) expected background counts in the source region
            = background_ratio * background (BACKSCAL*AREASCAL*EXPOSURE src / bkg).
        e_lo, e_hi: (m,) model energy grid, keV.
        channel_lo, channel_hi: (n,) energy bounds of each group, keV.
        fold: csr_array (n, m) exposure x AREASCAL x grouping x RMF x ARF, cm^2 s.
        sys_err: (n,) fractional systematic error per group (mean), or None.
        first_channel, last_channel: (n,) channel numbers bounding each group.
        group_size: (n,) number of good channels in each group.
        grouping: how the spectrum is grouped ("file", "none", "min:20", "optimal").
        background_path, rmf_path, arf_path: the files used (None when absent).
    """

    name: str
    spectrum_path: Path
    telescope: str
    instrument: str
    exposure: float
    counts: np.ndarray
    stat_err: np.ndarray | None
    is_poisson: bool
    background: np.ndarray | None
    background_ratio: np.ndarray
    e_lo: np.ndarray
    e_hi: np.ndarray
    channel_lo: np.ndarray
    channel_hi: np.ndarray
    fold: sparse.csr_array
    sys_err: np.ndarray | None = None
    first_channel: np.ndarray | None = None
    last_channel: np.ndarray | None = None
    group_size: np.ndarray | None = None
    grouping: str = "file"
    background_path: str | None = None
    rmf_path: Path | None = None
    arf_path: Path | None = None
    simulated: bool = False
    _source: Source | None = field(default=None, repr=False)
    _flags: np.ndarray | None = field(default=None, repr=False)
    _ops: tuple[Op, ...] = field(default=(), repr=False)

    # ----------------------------------------------------------------- build
    @classmethod
    def _build(cls, source: Source, flags, ops: tuple[Op, ...], **meta) -> Observation:
        gid = group_ids(flags, source.spectrum.n_channels)
        parts = assemble(source, flags, ops, gid)
        spec = source.spectrum
        rmf, arf = source.rmf, source.arf
        return cls(
            spectrum_path=spec.path,
            telescope=spec.telescope,
            instrument=spec.instrument,
            exposure=spec.exposure,
            is_poisson=spec.is_poisson,
            background_path=source.background_label,
            rmf_path=rmf.path,
            arf_path=None if arf is None else arf.path,
            _source=source,
            _flags=flags,
            _ops=ops,
            **meta,
            **parts,
        )

    def _rebuild(self, *, flags=_KEEP, ops=None, grouping=None) -> Observation:
        if self.simulated or self._source is None:
            raise DataError(
                f"observation {self.name!r} holds simulated counts for its current grouping "
                "and band only; change the band or grouping first, then simulate again"
            )
        return Observation._build(
            self._source,
            self._flags if flags is _KEEP else flags,
            self._ops if ops is None else ops,
            name=self.name,
            grouping=self.grouping if grouping is None else grouping,
        )

    # ---------------------------------------------------------- selections
    def notice(self, lo: float | None = None, hi: float | None = None) -> Observation:
        """A copy with the groups lying wholly inside [lo, hi] keV noticed (added).

        ``notice()`` notices every usable group.

        Example:
            >>> obs.notice(0.3, 0.5)                                 # doctest: +SKIP
        """
        a, b = _interval(lo, hi)
        return self._rebuild(ops=(*self._ops, ("notice", a, b)))

    def ignore(self, lo: float | None = None, hi: float | None = None) -> Observation:
        """A copy without the groups whose energy span overlaps (lo, hi) keV.

        Example:
            >>> obs.ignore(None, 0.5).ignore(8.0, None)              # doctest: +SKIP
        """
        a, b = _interval(lo, hi)
        return self._rebuild(ops=(*self._ops, ("ignore", a, b)))

    def regroup(self, group: str | None) -> Observation:
        """A copy regrouped: None = the file's GROUPING, "none", "min:N", "optimal".

        The band operations applied so far are replayed on the new groups.

        Example:
            >>> obs.regroup("min:25").counts.min() >= 25             # doctest: +SKIP
            True
        """
        if self._source is None:
            raise DataError("this observation has no channel-level data to regroup")
        flags, label = make_flags(self._source, group)
        return self._rebuild(flags=flags, grouping=label)

    def with_counts(self, counts, background=None) -> Observation:
        """A copy with other grouped counts (and background), e.g. from :func:`fakeit`."""
        counts = np.asarray(counts, dtype=np.float64).reshape(-1)
        if counts.shape != self.counts.shape:
            raise DataError(f"counts must have shape {self.counts.shape}, got {counts.shape}")
        if not np.all(np.isfinite(counts)) or np.any(counts < 0):
            raise DataError("counts must be finite and >= 0")
        bkg = self.background
        if background is not None:
            bkg = np.asarray(background, dtype=np.float64).reshape(-1)
            if bkg.shape != self.counts.shape:
                raise DataError(f"background must have shape {self.counts.shape}")
        return dataclasses.replace(
            self,
            counts=counts,
            background=bkg,
            stat_err=None,
            is_poisson=bool(np.all(counts == np.round(counts))),
            simulated=True,
        )

    # ------------------------------------------------------------- access
    def fold_dense(self) -> np.ndarray:
        """The folding operator as a dense (n, m) float64 array."""
        return self.fold.toarray()

    @property
    def n_groups(self) -> int:
        return int(self.counts.size)

    @property
    def n_energies(self) -> int:
        return int(self.e_lo.size)

    @property
    def density(self) -> float:
        """Fraction of non-zero entries of the fold."""
        return self.fold.nnz / max(self.fold.shape[0] * self.fold.shape[1], 1)

    @property
    def band(self) -> tuple[float, float]:
        """Lowest and highest channel energy noticed, keV."""
        return float(self.channel_lo.min()), float(self.channel_hi.max())

    def predicted_counts(self, photon_flux) -> np.ndarray:
        """Source counts predicted for a photon flux per bin of (e_lo, e_hi), numpy."""
        flux = np.asarray(photon_flux, dtype=np.float64).reshape(-1)
        if flux.shape != self.e_lo.shape:
            raise DataError(f"photon_flux must have shape {self.e_lo.shape}, got {flux.shape}")
        return self.fold @ flux

    # ------------------------------------------------------------ display
    def __repr__(self) -> str:
        lines = [
            f"Observation {self.name!r}: {self.telescope} {self.instrument}, "
            f"exposure {self.exposure:.6g} s" + (" (simulated)" if self.simulated else ""),
            f"  spectrum    {self.spectrum_path.name}",
            f"  groups      {self.n_groups} ({self.grouping} grouping), "
            f"{self.band[0]:.4g}-{self.band[1]:.4g} keV, {self.counts.sum():.6g} counts"
            + ("" if self.is_poisson else " (not Poisson)"),
        ]
        if self.background is not None:
            lines.append(
                f"  background  {self.background_path}: {self.background.sum():.6g} counts, "
                f"ratio {np.median(self.background_ratio):.4g}"
            )
        resp = "none" if self.rmf_path is None else Path(self.rmf_path).name
        if self._source is not None and self._source.rmf.path is None:
            resp = self._source.rmf.description
        arf = "" if self.arf_path is None else f" x {Path(self.arf_path).name}"
        lines.append(f"  response    {resp}{arf}")
        lines.append(
            f"  fold        {self.fold.shape[0]} x {self.fold.shape[1]} sparse, density "
            f"{100 * self.density:.2f} %, energies {self.e_lo[0]:.4g}-{self.e_hi[-1]:.4g} keV"
        )
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        try:
            from ..results.display import observation_html
        except ImportError:
            return f"<pre>{html.escape(repr(self))}</pre>"
        return observation_html(self)


def _interval(lo: float | None, hi: float | None) -> tuple[float, float]:
    a = 0.0 if lo is None else float(lo)
    b = np.inf if hi is None else float(hi)
    if not (np.isfinite(a) and a >= 0 and b > a):
        raise DataError(f"energy range ({lo}, {hi}) keV must satisfy 0 <= lo < hi")
    return a, b


def make_flags(source: Source, group: str | None) -> tuple[np.ndarray | None, str]:
    """GROUPING flags and a label for a ``group=`` option (see grouping.py)."""
    kind, value = parse_group(group)
    spec = source.spectrum
    if kind == "file":
        return spec.grouping, "file" if spec.grouping is not None else "none"
    if kind == "none":
        return None, "none"
    if kind == "min":
        return min_counts_flags(spec.counts, source.good, value), f"min:{value:g}"
    return optimal_flags(spec.counts, source.good, source.rmf.fwhm_channels()), "optimal"
