"""Evaluate an expression tree on a grid: totals and per-component parts.

Internal to :class:`~jxspec_nb.model.SpectralModel`. ``params`` maps each
component label to ``{parname: value}``.
"""

from __future__ import annotations

from typing import Any

from .._jax import jnp
from .components._quadrature import Grid
from .components.convolution import Flux, add_flux, materialize
from .expression import Comp, Conv, Prod, Sum
from .registry import get_component

__all__ = ["evaluate_total", "evaluate_parts"]


def _comp(node: Comp, grid: Grid, params: dict[str, dict[str, Any]]) -> Any:
    spec = get_component(node.name)
    p = params[node.label]
    if spec.kind == "multiplicative":
        return spec.evaluate(grid, p)
    if spec.lines is not None:
        return Flux(None, spec.lines(grid, p))
    return Flux(spec.evaluate(grid, p), None)


def _multiply(grid: Grid, factors: list[Any], flux: Flux | None) -> Any:
    factor = None
    for f in factors:
        factor = f if factor is None else factor * f
    if flux is None:
        return factor
    if factor is None:
        return flux
    return Flux(materialize(grid, flux) * factor, None)


def _total(node: Any, grid: Grid, params: dict[str, dict[str, Any]]) -> Any:
    if isinstance(node, Comp):
        return _comp(node, grid, params)
    if isinstance(node, Sum):
        return add_flux([_total(t, grid, params) for t in node.terms])
    if isinstance(node, Prod):
        values = [_total(f, grid, params) for f in node.factors]
        fluxes = [v for v in values if isinstance(v, Flux)]
        mults = [v for v in values if not isinstance(v, Flux)]
        return _multiply(grid, mults, fluxes[0] if fluxes else None)
    assert isinstance(node, Conv)
    spec = get_component(node.comp.name)

    def operand(g: Grid) -> Flux:
        return _total(node.arg, g, params)

    return spec.apply(grid, params[node.comp.label], operand, operand)


def _parts(node: Any, grid: Grid, params: dict[str, dict[str, Any]]) -> Any:
    if isinstance(node, Comp):
        value = _comp(node, grid, params)
        return {node.label: value} if isinstance(value, Flux) else value
    if isinstance(node, Sum):
        out: dict[str, Flux] = {}
        for t in node.terms:
            out.update(_parts(t, grid, params))
        return out
    if isinstance(node, Prod):
        values = [_parts(f, grid, params) for f in node.factors]
        dicts = [v for v in values if isinstance(v, dict)]
        mults = [v for v in values if not isinstance(v, dict)]
        if not dicts:
            return _multiply(grid, mults, None)
        return {k: _multiply(grid, mults, v) for k, v in dicts[0].items()}
    assert isinstance(node, Conv)
    spec = get_component(node.comp.name)
    p = params[node.comp.label]
    labels = list(_parts(node.arg, grid, params))

    def total(g: Grid) -> Flux:
        return _total(node.arg, g, params)

    out = {}
    for label in labels:
        def part(g: Grid, label: str = label) -> Flux:
            return _parts(node.arg, g, params)[label]

        out[label] = spec.apply(grid, p, part, total)
    return out


def evaluate_total(tree: Any, grid: Grid, params: dict[str, dict[str, Any]]) -> Any:
    """Photon flux (m,) of the whole model on ``grid``."""
    return materialize(grid, _total(tree, grid, params))


def evaluate_parts(tree: Any, grid: Grid, params: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Photon flux (m,) of each additive component (with its factors applied)."""
    return {k: materialize(grid, v) for k, v in _parts(tree, grid, params).items()}


def zeros(grid: Grid) -> Any:
    return jnp.zeros(grid.size)
