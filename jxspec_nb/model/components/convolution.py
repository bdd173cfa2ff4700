"""Convolution components: operators on the additive model inside ``conv(...)``.

Each has ``apply(grid, params, part, total)`` where ``part(g)`` evaluates the
operand (or, for per-component plots, one of its additive parts) on any grid
``g`` and ``total(g)`` the whole operand; both return a :class:`Flux`.

- zashift: E_obs = E / (1+z) (photons conserved).
- vashift: E_obs = E (1 - v/c), ``Velocity`` in km/s, positive = redshift.
- gsmooth: Gaussian smoothing with sigma(E) = Sig_6keV (E / 6 keV)^Index.
- vbroad: velocity broadening, a Gaussian of width sigma(E) = Sigma E with
  ``Sigma = sigma_v / c`` (dimensionless). XSPEC has no such convolution; this is
  ``gsmooth`` with Index = 1 parameterised by sigma_v/c.
- cflux: rescales the operand so that its energy flux in [Emin, Emax] is
  10^lg10Flux erg/cm^2/s (freeze one normalisation of the operand).

Gaussian smoothing is **analytic** on Gaussian lines (``gaussian``, ``zgauss``):
widths add in quadrature, sigma^2 -> sigma^2 + sigma_k(E_line)^2, with the kernel
width taken at the line's (observed) centre, so nine lines cost nine CDF pairs
per bin. Other operands are smoothed numerically on the grid: the flux of each
input bin is spread over the output bins with a Gaussian of the width at the
input bin centre (exact CDF differences; dense m x m, limited to 8192 bins).

Example:
    >>> from jxspec_nb.model import parse_model
    >>> m = parse_model("vbroad(gaussian + gaussian_2)")
    >>> m.param_names[:2]
    ('vbroad.Sigma', 'gaussian.LineE')
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from ..._jax import jnp, jsp
from ...errors import ModelError
from ..registry import ComponentSpec, ParamSpec, _add
from ._lines import Lines, concat_lines, line_flux
from ._quadrature import Grid

INF = math.inf
C_KM_S = 299792.458
KEV_TO_ERG = 1.602176634e-9
_MAX_DENSE = 8192
_BAND_BINS = 1024

__all__ = ["Flux", "materialize", "add_flux", "band_grid", "energy_flux_of"]


class Flux(NamedTuple):
    """An additive result: binned photon flux (or None) plus unbinned Gaussian lines."""

    dense: Any
    lines: Lines | None


def materialize(grid: Grid, flux: Flux) -> Any:
    """The photon flux in each bin of ``grid`` (shape (m,))."""
    out = flux.dense
    if flux.lines is not None:
        lf = line_flux(grid, *flux.lines)
        out = lf if out is None else out + lf
    if out is None:
        return jnp.zeros(grid.size)
    return out


def add_flux(parts: list[Flux]) -> Flux:
    dense = [p.dense for p in parts if p.dense is not None]
    total = None
    for d in dense:
        total = d if total is None else total + d
    return Flux(total, concat_lines([p.lines for p in parts if p.lines is not None]))


def band_grid(e_min: Any, e_max: Any, n: int = _BAND_BINS) -> Grid:
    """A log-spaced grid of ``n`` bins from ``e_min`` to ``e_max`` keV."""
    t = np.linspace(0.0, 1.0, n + 1)
    try:
        lo, hi = float(e_min), float(e_max)
    except Exception:  # traced band limits (a tracer has no float value)
        edges = jnp.exp(jnp.log(e_min) + t * (jnp.log(e_max) - jnp.log(e_min)))
        return Grid(edges[:-1], edges[1:], n_sub=1)
    if not 0 < lo < hi:
        raise ModelError(f"energy band must satisfy 0 < e_min < e_max, got ({lo}, {hi})")
    edges = np.exp(np.log(lo) + t * (np.log(hi) - np.log(lo)))
    return Grid(edges[:-1], edges[1:], n_sub=1)


def energy_flux_of(grid: Grid, photons: Any) -> Any:
    """Energy flux (erg/cm^2/s) of binned photon fluxes (bin-centre energies)."""
    return jnp.sum(photons * jnp.asarray(grid.mid)) * KEV_TO_ERG


# ------------------------------------------------------------- smoothing core
def _smooth_dense(grid: Grid, dense: Any, width_at: Callable[[Any], Any]) -> Any:
    m = grid.size
    if m > _MAX_DENSE:
        raise ModelError(
            f"numeric Gaussian smoothing of a continuum on {m} energy bins is limited to "
            f"{_MAX_DENSE} bins; restrict the energy band, or smooth only Gaussian lines "
            "(those are broadened analytically)"
        )
    centre = jnp.asarray(grid.mid)
    s = width_at(centre)
    positive = s > 0
    s_safe = jnp.where(positive, s, 1.0) * math.sqrt(2.0)

    def cdf(e: Any) -> Any:  # (edges, m_in)
        x = (e[:, None] - centre[None, :]) / s_safe[None, :]
        step = jnp.where(e[:, None] >= centre[None, :], 0.5, -0.5)
        return jnp.where(positive[None, :], 0.5 * jsp.erf(x), step)

    lo, hi = grid.at_edges(cdf)
    return (hi - lo) @ dense


def _smoothing(width_of: Callable[[dict[str, Any]], Callable[[Any], Any]]):
    def apply(grid: Grid, p: dict[str, Any], part: Callable, total: Callable) -> Flux:
        flux = part(grid)
        width_at = width_of(p)
        lines = None
        if flux.lines is not None:
            n, c, s = flux.lines
            # (+1e-300 keeps the gradient finite when both widths are zero)
            lines = Lines(n, c, jnp.sqrt(s * s + width_at(c) ** 2 + 1e-300))
        dense = None if flux.dense is None else _smooth_dense(grid, flux.dense, width_at)
        return Flux(dense, lines)

    return apply


def _gsmooth_width(p: dict[str, Any]) -> Callable[[Any], Any]:
    return lambda e: p["Sig_6keV"] * (e / 6.0) ** p["Index"]


def _vbroad_width(p: dict[str, Any]) -> Callable[[Any], Any]:
    return lambda e: p["Sigma"] * e


# ------------------------------------------------------------------- shifts
def _shift(factor_of: Callable[[dict[str, Any]], Any]):
    """Energy shift E_obs = E / factor (factor = 1+z for zashift)."""

    def apply(grid: Grid, p: dict[str, Any], part: Callable, total: Callable) -> Flux:
        f = factor_of(p)
        flux = part(grid.shifted(f))
        lines = None
        if flux.lines is not None:
            n, c, s = flux.lines
            lines = Lines(n, c / f, s / f)
        return Flux(flux.dense, lines)

    return apply


# --------------------------------------------------------------------- cflux
def _cflux(grid: Grid, p: dict[str, Any], part: Callable, total: Callable) -> Flux:
    band = band_grid(p["Emin"], p["Emax"])
    band_flux = energy_flux_of(band, materialize(band, total(band)))
    scale = 10.0 ** p["lg10Flux"] / band_flux
    flux = part(grid)
    dense = None if flux.dense is None else flux.dense * scale
    lines = None
    if flux.lines is not None:
        n, c, s = flux.lines
        lines = Lines(n * scale, c, s)
    return Flux(dense, lines)


def _spec(name: str, params: list[ParamSpec], apply, description: str) -> None:
    _add(ComponentSpec(name, "convolution", tuple(params), apply=apply, description=description))


_spec("zashift", [ParamSpec("Redshift", 0.0, "", -0.999, 10.0, frozen=True)],
      _shift(lambda p: 1.0 + p["Redshift"]), "redshift an additive model")
_spec("vashift", [ParamSpec("Velocity", 0.0, "km/s", -C_KM_S, C_KM_S, soft=(-1e4, 1e4))],
      _shift(lambda p: 1.0 / (1.0 - p["Velocity"] / C_KM_S)), "velocity shift")
_spec("gsmooth", [ParamSpec("Sig_6keV", 1.0, "keV", 0.0, INF, soft=(0.0, 10.0)),
                  ParamSpec("Index", 0.0, "", -INF, INF, frozen=True, soft=(-1.0, 1.0))],
      _smoothing(_gsmooth_width), "Gaussian smoothing, sigma = Sig_6keV (E/6 keV)^Index")
_spec("vbroad", [ParamSpec("Sigma", 1e-4, "", 0.0, 0.1, soft=(0.0, 0.03),
                           description="sigma_v / c")],
      _smoothing(_vbroad_width), "velocity broadening, sigma(E) = Sigma E")
_spec("cflux", [ParamSpec("Emin", 0.5, "keV", 0.0, 1e6, frozen=True),
                ParamSpec("Emax", 10.0, "keV", 0.0, 1e6, frozen=True),
                ParamSpec("lg10Flux", -12.0, "erg/cm^2/s", -100.0, 100.0, soft=(-100.0, 100.0))],
      _cflux, "energy flux of the operand in [Emin, Emax]")
