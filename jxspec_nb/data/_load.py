"""``load_observation``: spectrum + background + responses -> Observation."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError
from ._fold import Source
from ._rmf import ARF, RMF, read_arf, read_rmf
from .observation import Observation, make_flags
from .ogip import Spectrum, read_pha, resolve_pointer
from .responses import rmf_from_spec

__all__ = ["load_observation"]

_SHORTCUTS = ("diagonal", "gaussian", "gauss:")


def _is_shortcut(value: Any) -> bool:
    return isinstance(value, str) and value.strip().lower().startswith(_SHORTCUTS)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def _read_background(path: Path, spectrum: Spectrum) -> Spectrum:
    if _same_file(path, spectrum.path):
        bkg = read_pha(path, background=True, row=spectrum.row)
        if bkg.hdu == spectrum.hdu:
            raise DataError(
                "BACKFILE names the spectrum file itself but it holds no second SPECTRUM "
                "HDU with HDUCLAS2='BKG'; pass bkg=PATH or bkg=None",
                path=str(path),
                keyword="BACKFILE",
            )
        return bkg
    try:
        return read_pha(path)
    except DataError as exc:
        if "type II" in str(exc) and spectrum.row is not None:
            return read_pha(path, row=spectrum.row)
        raise


def _background(spectrum: Spectrum, bkg: Any) -> tuple[np.ndarray | None, Any, str | None]:
    """(counts, per-channel ratio ingredients, label) of the background."""
    src_dir = spectrum.path.parent
    if isinstance(bkg, str) and bkg == "header":
        path = resolve_pointer(
            spectrum.backfile, src_dir, keyword="BACKFILE", source=spectrum.path, hdu=spectrum.hdu
        )
        if path is None:
            if spectrum.background_columns is not None:
                counts, scale = spectrum.background_columns
                return counts, (scale, np.ones_like(scale), spectrum.exposure), (
                    "BACKGROUND_UP+BACKGROUND_DOWN columns"
                )
            return None, None, None
        bkg = path
    if bkg is None:
        return None, None, None
    other = bkg if isinstance(bkg, Spectrum) else _read_background(Path(bkg), spectrum)
    if other.n_channels != spectrum.n_channels:
        raise DataError(
            f"background has {other.n_channels} channels but the spectrum "
            f"{spectrum.path.name} has {spectrum.n_channels}; they must match",
            path=str(other.path),
            hdu=other.hdu,
            keyword="CHANNEL",
        )
    label = other.path.name + (f"[{other.hdu}]" if _same_file(other.path, spectrum.path) else "")
    return other.counts, (other.backscal, other.areascal, other.exposure, other.quality), label


def _resolve_arf(arf: Any, spectrum: Spectrum) -> tuple[ARF | None, bool]:
    """(ARF, explicit?)."""
    if isinstance(arf, ARF):
        return arf, True
    if isinstance(arf, str) and arf == "header":
        path = resolve_pointer(
            spectrum.ancrfile,
            spectrum.path.parent,
            keyword="ANCRFILE",
            source=spectrum.path,
            hdu=spectrum.hdu,
        )
        return (None if path is None else read_arf(path)), False
    if arf is None:
        return None, True
    return read_arf(Path(arf)), True


def _resolve_rmf(rmf: Any, spectrum: Spectrum, arf: ARF | None) -> RMF:
    if isinstance(rmf, RMF):
        return rmf
    if _is_shortcut(rmf):
        return rmf_from_spec(rmf, arf, spectrum.n_channels, int(spectrum.channel[0]))
    if isinstance(rmf, str) and rmf == "header":
        path = resolve_pointer(
            spectrum.respfile,
            spectrum.path.parent,
            keyword="RESPFILE",
            source=spectrum.path,
            hdu=spectrum.hdu,
        )
        if path is None and arf is not None and arf.path is not None and arf.respfile:
            try:  # the ARF's own RESPFILE (Swift); CIAO grid(...) expressions are skipped
                path = resolve_pointer(
                    arf.respfile, arf.path.parent, keyword="RESPFILE", source=arf.path
                )
            except DataError:
                path = None
        if path is None:
            raise DataError(
                "no response: RESPFILE is none or missing; pass rmf=PATH, an RMF object "
                "(gaussian_rmf / diagonal_rmf) or a shortcut such as rmf='gaussian:5eV'",
                path=str(spectrum.path),
                hdu=spectrum.hdu,
                keyword="RESPFILE",
            )
        return read_rmf(path)
    if rmf is None:
        raise DataError(
            "rmf=None: an observation needs a response to fold models through; pass "
            "rmf=PATH, 'diagonal', 'gaussian:5eV' or an RMF object",
            path=str(spectrum.path),
        )
    return read_rmf(Path(rmf))


def _check_pair(rmf: RMF, arf: ARF) -> None:
    where = str(arf.path) if arf.path is not None else None
    rmf_name = rmf.path.name if rmf.path is not None else f"the {rmf.kind} RMF"
    if arf.energ_lo.size != rmf.n_energies:
        raise DataError(
            f"ARF has {arf.energ_lo.size} energy bins but {rmf_name} has {rmf.n_energies}; "
            "the ARF and RMF must share one energy grid (regenerate them together)",
            path=where,
            keyword="ENERG_LO",
        )
    tol = 1e-5 * np.maximum(np.abs(rmf.energ_lo), 1e-3)
    bad = (np.abs(arf.energ_lo - rmf.energ_lo) > tol) | (np.abs(arf.energ_hi - rmf.energ_hi) > tol)
    if np.any(bad):
        i = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"ARF energy grid differs from {rmf_name} at bin {i} "
            f"({arf.energ_lo[i]:g}-{arf.energ_hi[i]:g} vs {rmf.energ_lo[i]:g}-"
            f"{rmf.energ_hi[i]:g} keV); the ARF and RMF must share one energy grid",
            path=where,
            keyword="ENERG_LO",
        )


def load_observation(
    spectrum: str | Path | Spectrum,
    *,
    rmf: Any = "header",
    arf: Any = "header",
    bkg: Any = "header",
    row: int | None = None,
    band: tuple[float, float] | None = None,
    group: str | None = None,
    name: str | None = None,
    energies: str = "band",
) -> Observation:
    """Load an OGIP spectrum with its background and responses as an Observation.

    Args:
        spectrum: PHA file path (or a :class:`Spectrum` from :func:`read_pha`).
        rmf: "header" (RESPFILE beside the spectrum, also ``.gz``; else the ARF's
            RESPFILE), a path, an :class:`RMF` (e.g. :func:`gaussian_rmf`), or a
            shortcut "diagonal" / "gaussian:5eV" built on the ARF grid.
        arf: "header" (ANCRFILE), a path, an :class:`ARF`, or None.
        bkg: "header" (BACKFILE, or a BACKGROUND_UP/DOWN pair of columns; a
            BACKFILE naming the spectrum itself reads its HDUCLAS2='BKG' HDU),
            a path, a :class:`Spectrum`, or None.
        row: PHA type II row (0-based).
        band: (lo, hi) keV, or None for every good channel.
        group: None (the file's GROUPING), "none", "min:N" or "optimal".
        name: a name for the observation (default: the file name).
        energies: "band" (default: the contiguous range of energy bins reaching
            the noticed channels) or "response" (every bin the response covers,
            jaxspec 0.4.1's grid; the extra columns are all zero).

    Returns:
        The :class:`Observation`.

    Example:
        >>> obs = load_observation("PN_spectrum_grp20.fits", band=(0.5, 10))  # doctest: +SKIP
        >>> obs.fold.shape[0]
        104
    """
    if energies not in ("response", "band"):
        raise DataError(f"energies={energies!r}: use 'response' or 'band'")
    spec = spectrum if isinstance(spectrum, Spectrum) else read_pha(Path(spectrum), row=row)
    arf_obj, arf_explicit = _resolve_arf(arf, spec)
    rmf_obj = _resolve_rmf(rmf, spec, arf_obj)
    if arf_obj is not None and rmf_obj.includes_area:
        if arf_explicit:
            raise DataError(
                f"{rmf_obj!r} already includes the effective area (HDUCLAS3=FULL / SPECRESP "
                "MATRIX); pass arf=None",
                path=None if arf_obj.path is None else str(arf_obj.path),
            )
        warnings.warn(
            f"ignoring ANCRFILE {spec.ancrfile!r}: the response already includes the area",
            stacklevel=2,
        )
        arf_obj = None
    if arf_obj is not None:
        _check_pair(rmf_obj, arf_obj)
    if rmf_obj.n_channels != spec.n_channels:
        raise DataError(
            f"the spectrum has {spec.n_channels} channels but the response "
            f"{rmf_obj.path.name if rmf_obj.path else rmf_obj.kind} has "
            f"{rmf_obj.n_channels} (EBOUNDS); use the response made for this spectrum",
            path=str(spec.path),
            hdu=spec.hdu,
            keyword="CHANNEL",
        )

    good = (spec.quality == 0) & (spec.areascal > 0) & (spec.backscal > 0)
    b_counts, b_info, b_label = _background(spec, bkg)
    scale = None
    if b_counts is not None:
        b_backscal, b_areascal, b_exposure = b_info[:3]
        if len(b_info) > 3:
            good &= b_info[3] == 0
        good &= (b_backscal > 0) & (b_areascal > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = (spec.backscal * spec.areascal * spec.exposure) / (
                b_backscal * b_areascal * b_exposure
            )
        scale = np.where(good, scale, 0.0)
    source = Source(
        spectrum=spec,
        rmf=rmf_obj,
        arf=arf_obj,
        background=b_counts,
        background_scale=scale,
        background_label=b_label,
        good=good,
        energies=energies,
    )
    flags, label = make_flags(source, group)
    ops = () if band is None else (("band", *_band(band)),)
    if name is None:
        name = spec.path.name + ("" if spec.row is None else f"[row {spec.row}]")
    return Observation._build(source, flags, ops, name=name, grouping=label)


def _band(band) -> tuple[float, float]:
    try:
        lo, hi = (float(x) for x in band)
    except (TypeError, ValueError):
        raise DataError(f"band={band!r}: expected (lo_keV, hi_keV)") from None
    if not (np.isfinite(lo) and lo >= 0 and hi > lo):
        raise DataError(f"band={band!r}: expected 0 <= lo < hi (keV)")
    return lo, hi
