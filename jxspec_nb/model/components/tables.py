"""Packaged photo-absorption cross sections (see ``../tables/DATA.md``).

``SIGMA`` is the cross section per H atom in units of 1e-22 cm^2, so the
transmission for a column ``nH`` (1e22 cm^-2) is ``exp(-nH * SIGMA(E))``.

Interpolation is linear in log(SIGMA) versus log(E) between the 10000 tabulated
energies (0.10003-19.995 keV). Outside the table the first (last) log-log
segment is extended: below 0.1 keV the cross section keeps rising as the local
power law of the table's first points, above 20 keV it keeps falling as the last
one (absorption there is negligible for any realistic nH).

Example:
    >>> import numpy as np
    >>> round(float(cross_section("tbabs", np.array([1.0]))[0]), 2)
    1.74
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import numpy as np

from ...errors import ModelError

__all__ = ["cross_section", "absorption_table", "TABLES"]

# (model, abundance) -> file name; the first abundance of each model is its default
TABLES: dict[str, dict[str, str]] = {
    "tbabs": {"wilm": "xsect_tbabs_wilm.fits", "angr": "xsect_tbabs_angr.fits",
              "aspl": "xsect_tbabs_aspl.fits"},
    "phabs": {"angr": "xsect_phabs_angr.fits", "aspl": "xsect_phabs_aspl.fits"},
    "wabs": {"angr": "xsect_wabs_angr.fits"},
}


@cache
def absorption_table(model: str, abund: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(log E, log SIGMA)`` of a packaged table, float64."""
    from ..._fitsread import read

    files = TABLES.get(model)
    if files is None:
        raise ModelError(f"no cross-section table for {model!r}; known: {', '.join(TABLES)}")
    abund = abund or next(iter(files))
    if abund not in files:
        raise ModelError(
            f"no {model} table for abundance {abund!r}; available: {', '.join(files)}"
        )
    path = resources.files("jxspec_nb.model.tables").joinpath(files[abund])
    with resources.as_file(path) as p:
        data = read(p)[1].data  # our own files: binary tables the small reader handles
        energy = np.asarray(data["ENERGY"], dtype=np.float64)
        sigma = np.asarray(data["SIGMA"], dtype=np.float64)
    order = np.argsort(energy)
    return np.log(energy[order]), np.log(sigma[order])


def _interp_loglog(log_e: Any, table: tuple[Any, Any], xp: Any) -> Any:
    x, y = table
    lo_slope = (y[1] - y[0]) / (x[1] - x[0])
    hi_slope = (y[-1] - y[-2]) / (x[-1] - x[-2])
    # interp holds the end values outside the table: add the end segments' slopes there
    out = xp.interp(log_e, x, y)
    out = out + lo_slope * xp.minimum(log_e - x[0], 0.0)
    out = out + hi_slope * xp.maximum(log_e - x[-1], 0.0)
    return xp.exp(out)


def cross_section(model: str, energy: Any, abund: str | None = None, xp: Any = np) -> Any:
    """SIGMA (1e-22 cm^2 per H atom) at ``energy`` keV, log-log interpolated.

    Args:
        model: "tbabs", "phabs" or "wabs".
        energy: energies in keV (> 0), any shape.
        abund: abundance table ("wilm", "angr", "aspl"); None = the model's default.
        xp: ``numpy`` (precomputation) or ``jax.numpy`` (traced energies).
    """
    x, y = absorption_table(model, abund)
    if xp is not np:
        x, y = xp.asarray(x), xp.asarray(y)
    return _interp_loglog(xp.log(energy), (x, y), xp)
