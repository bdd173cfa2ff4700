"""Gaussian lines integrated exactly over energy bins (via the error function).

A line is ``(norm, centre, sigma)``: ``norm`` photons/cm^2/s in total over
positive energies (as XSPEC's ``gaussian``), centred at ``centre`` keV with
standard deviation ``sigma`` keV; ``sigma <= 0`` is a delta function (all the
flux in the bin containing the centre). Many lines are evaluated together as
arrays of shape (k,), costing k error-function evaluations per bin edge.

Example:
    >>> import numpy as np
    >>> from jxspec_nb.model.components._quadrature import Grid
    >>> g = Grid(np.linspace(5, 7, 201)[:-1], np.linspace(5, 7, 201)[1:])
    >>> flux = line_flux(g, np.array([1.0]), np.array([6.0]), np.array([0.05]))
    >>> round(float(flux.sum()), 6)
    1.0
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ..._jax import jnp, jsp
from ._quadrature import row_sum

__all__ = ["Lines", "line_flux", "concat_lines"]

_SQRT2 = 1.4142135623730951


class Lines(NamedTuple):
    """Gaussian lines: arrays of shape (k,)."""

    norm: Any
    centre: Any
    sigma: Any


def concat_lines(parts: list[Lines]) -> Lines | None:
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    return Lines(*(jnp.concatenate([jnp.atleast_1d(getattr(p, f)) for p in parts])
                   for f in Lines._fields))


def line_flux(grid: Any, norm: Any, centre: Any, sigma: Any) -> Any:
    """Sum over lines of the photon flux in each bin of ``grid`` (shape (m,))."""
    norm = jnp.atleast_1d(norm)
    centre = jnp.atleast_1d(centre)
    sigma = jnp.atleast_1d(sigma)
    positive = sigma > 0
    s = jnp.where(positive, sigma, 1.0) * _SQRT2
    # fraction of the line at positive energies (XSPEC normalises over E > 0)
    frac = jnp.where(positive, 0.5 * jsp.erfc(-centre / s), 1.0)
    scale = norm / frac

    def tails(e: Any) -> tuple[Any, Any]:
        # x and the Gaussian tail beyond |x|, 0.5 erfc(|x|/sqrt 2): relative precision
        # is kept far from the centre; sigma <= 0 gives a step (tail 0)
        x = (e[None, :] - centre[:, None]) / s[:, None]
        x = jnp.where(positive[:, None], x, jnp.where(x >= 0, jnp.inf, -jnp.inf))
        return x, 0.5 * jsp.erfc(jnp.abs(x))

    if grid.contiguous:
        edges = grid.cached("edges", lambda: np.append(grid.e_lo, grid.e_hi[-1]))
        x, t = tails(edges)
        x_lo, x_hi, t_lo, t_hi = x[:, :-1], x[:, 1:], t[:, :-1], t[:, 1:]
    else:
        (x_lo, t_lo), (x_hi, t_hi) = tails(grid.e_lo), tails(grid.e_hi)
    inside = jnp.where(
        x_lo >= 0, t_lo - t_hi, jnp.where(x_hi <= 0, t_hi - t_lo, 1.0 - t_lo - t_hi)
    )
    return row_sum(inside * scale[:, None])
