"""OGIP table models (XSPEC ``atable`` / ``mtable``), interpolated in JAX.

A table model file (OGIP/92-009) holds a grid of spectra tabulated over one or
more parameters: extension PARAMETERS (NAME, METHOD, INITIAL, MINIMUM, MAXIMUM,
NUMBVALS, VALUE ...), ENERGIES (ENERG_LO, ENERG_HI) and SPECTRA (PARAMVAL,
INTPSPEC). :func:`load_table_model` registers it as a component usable in
expressions by name; additive tables get a ``norm`` (and ``Redshift`` when the
file's REDSHIFT keyword is true).

Interpolation: multilinear over the parameters (in log10 of the parameter when
METHOD = 1, linear otherwise), values clipped to the tabulated range. Onto the
model grid: additive tables are rebinned conserving photons (cumulative flux
interpolated linearly at the model bin edges, i.e. flat within each table bin;
zero outside the table); multiplicative tables are averaged over each model bin
the same way (1 outside the table). Additional (ADDSP) spectra are ignored.

Example:
    >>> name = load_table_model("mytable.mod", name="mytab")   # doctest: +SKIP
    >>> model = parse_model("tbabs*mytab")                      # doctest: +SKIP
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from ..._jax import jnp
from ...errors import DataError, ModelError
from ..registry import ComponentSpec, ParamSpec, _add, get_component

__all__ = ["load_table_model"]


def _read(path: Path) -> dict[str, Any]:
    from astropy.io import fits

    try:
        hdul = fits.open(path)
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot open table model: {exc}", path=str(path)) from None
    with hdul:
        names = [h.name for h in hdul]
        for ext in ("PARAMETERS", "ENERGIES", "SPECTRA"):
            if ext not in names:
                raise DataError(f"table model has no {ext} extension", path=str(path), hdu=ext)
        prim = hdul[0].header
        par = hdul["PARAMETERS"]
        n_int = int(par.header.get("NINTPARM", len(par.data)))
        rows = par.data
        params = []
        for i in range(n_int):
            r = rows[i]
            nv = int(r["NUMBVALS"])
            params.append(dict(
                name=str(r["NAME"]).strip(), method=int(r["METHOD"]), initial=float(r["INITIAL"]),
                minimum=float(r["MINIMUM"]), maximum=float(r["MAXIMUM"]),
                delta=float(r["DELTA"]) if "DELTA" in rows.names else 0.01,
                values=np.asarray(r["VALUE"], dtype=np.float64)[:nv],
            ))
        en = hdul["ENERGIES"].data
        e_lo = np.asarray(en["ENERG_LO"], dtype=np.float64)
        e_hi = np.asarray(en["ENERG_HI"], dtype=np.float64)
        sp = hdul["SPECTRA"].data
        pv = np.asarray(sp["PARAMVAL"], dtype=np.float64).reshape(len(sp), -1)[:, :n_int]
        spectra = np.asarray(sp["INTPSPEC"], dtype=np.float64).reshape(len(sp), -1)
        additive = bool(prim.get("ADDMODEL", True))
        redshift = bool(prim.get("REDSHIFT", False))
        modname = str(prim.get("MODLNAME", path.stem))
    shape = tuple(len(p["values"]) for p in params)
    if spectra.shape != (int(np.prod(shape)), e_lo.size):
        raise DataError(
            f"SPECTRA has {spectra.shape} values, expected {int(np.prod(shape))} rows of "
            f"{e_lo.size} energies", path=str(path), hdu="SPECTRA", keyword="INTPSPEC")
    cube = np.full(shape + (e_lo.size,), np.nan)
    for row, vals in zip(spectra, pv):
        idx = tuple(int(np.argmin(np.abs(p["values"] - v))) for p, v in zip(params, vals))
        cube[idx] = row
    if np.isnan(cube).any():
        raise DataError("SPECTRA does not cover the full parameter grid", path=str(path),
                        hdu="SPECTRA", keyword="PARAMVAL")
    return dict(params=params, e_lo=e_lo, e_hi=e_hi, cube=cube, additive=additive,
                redshift=redshift, modname=modname)


def _interpolate(cube: Any, axes: list[np.ndarray], logs: list[bool], values: list[Any]) -> Any:
    """Multilinear interpolation of ``cube`` (n1, ..., nk, n_e) at ``values``."""
    out = jnp.asarray(cube)
    for ax, log, v in zip(axes, logs, values):
        grid = np.log10(ax) if log else ax
        x = jnp.log10(v) if log else jnp.asarray(v, dtype=jnp.float64)
        x = jnp.clip(x, grid[0], grid[-1])
        if len(grid) == 1:
            out = out[0]
            continue
        i = jnp.clip(jnp.searchsorted(jnp.asarray(grid), x, side="right") - 1, 0, len(grid) - 2)
        g = jnp.asarray(grid)
        t = (x - g[i]) / (g[i + 1] - g[i])
        out = out[i] * (1.0 - t) + out[i + 1] * t
    return out


def _rebin_cumulative(tab_lo: np.ndarray, tab_hi: np.ndarray, per_bin: Any, lo: Any, hi: Any):
    """Integral of a piecewise-flat function (value per_bin/width on each table bin)."""
    edges = np.append(tab_lo, tab_hi[-1])
    cum = jnp.concatenate([jnp.zeros(1), jnp.cumsum(per_bin)])
    return jnp.interp(hi, edges, cum) - jnp.interp(lo, edges, cum)


def load_table_model(path: str | Path, *, name: str | None = None, overwrite: bool = True) -> str:
    """Register an OGIP table model file as a component; returns its name.

    Args:
        path: the ``.mod``/``.fits`` table file.
        name: component name for expressions (default: MODLNAME, lowercased).
        overwrite: replace a previously loaded table of the same name.
    """
    path = Path(path)
    t = _read(path)
    cname = (name or t["modname"]).lower().replace("_", "")
    existing = get_component(cname)
    if existing is not None and existing.builtin:
        raise ModelError(f"{cname!r} is a built-in component; choose another name")
    params = [ParamSpec(p["name"], p["initial"], "", p["minimum"], p["maximum"],
                        frozen=p["delta"] < 0) for p in t["params"]]
    if t["redshift"]:
        params.append(ParamSpec("Redshift", 0.0, "", -0.999, 10.0, frozen=True))
    if t["additive"]:
        params.append(ParamSpec("norm", 1.0, "", 0.0, math.inf))
    axes = [p["values"] for p in t["params"]]
    logs = [p["method"] == 1 for p in t["params"]]
    tab_lo, tab_hi = t["e_lo"], t["e_hi"]
    cube = t["cube"]

    def evaluate(grid: Any, p: dict[str, Any]) -> Any:
        spec = _interpolate(cube, axes, logs, [p[q["name"]] for q in t["params"]])
        lo, hi = jnp.asarray(grid.e_lo), jnp.asarray(grid.e_hi)
        if t["redshift"]:
            lo, hi = lo * (1.0 + p["Redshift"]), hi * (1.0 + p["Redshift"])
        if t["additive"]:
            return p["norm"] * _rebin_cumulative(tab_lo, tab_hi, spec, lo, hi)
        inside = _rebin_cumulative(tab_lo, tab_hi, spec * (tab_hi - tab_lo), lo, hi)
        covered = _rebin_cumulative(tab_lo, tab_hi, jnp.asarray(tab_hi - tab_lo), lo, hi)
        return (inside + (hi - lo) - covered) / (hi - lo)

    kind = "additive" if t["additive"] else "multiplicative"
    _add(ComponentSpec(cname, kind, tuple(params), evaluate=evaluate,
                       description=f"table model {path.name}", builtin=False),
         overwrite=overwrite)
    return cname
