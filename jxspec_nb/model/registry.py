"""The component registry: built-in XSPEC components and user-defined ones.

A component is described by a :class:`ComponentSpec` (its XSPEC name, kind,
parameters and the function that evaluates it on an energy grid). Built-in
components register themselves when :mod:`jxspec_nb.model.components` is first
imported; users add their own with :func:`register_component`::

    import jax.numpy as jnp
    from jxspec_nb.model import ParamSpec, parse_model, register_component

    def cutoff_line(energy, LineE, Width, norm):
        # photons/cm^2/s/keV at each energy (any shape)
        return norm * jnp.exp(-jnp.abs(energy - LineE) / Width) / (2 * Width)

    register_component(
        "laplaceline", cutoff_line, kind="additive",
        parameters=[ParamSpec("LineE", 6.4, "keV", 0.0, 100.0),
                    ParamSpec("Width", 0.1, "keV", 1e-6, 10.0),
                    ParamSpec("norm", 1.0, "", 0.0, 1e24)])
    model = parse_model("tbabs*(powerlaw + laplaceline)")
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import ModelError

__all__ = [
    "ParamSpec",
    "ComponentSpec",
    "register_component",
    "get_component",
    "component_names",
]

Kind = Literal["additive", "multiplicative", "convolution"]
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")


@dataclass(frozen=True)
class ParamSpec:
    """One parameter of a component, as XSPEC defines it.

    Args:
        name: XSPEC parameter name (``PhoIndex``, ``nH``, ``norm``...).
        default: default value (XSPEC's).
        unit: unit string ("" when dimensionless).
        lower: hard lower limit (the physical bound; priors must lie inside).
        upper: hard upper limit.
        frozen: frozen by default (as in XSPEC).
        soft: XSPEC's soft limits (documentation only).
        description: one line for tables.

    Example:
        >>> ParamSpec("kT", 3.0, "keV", 0.0, 200.0).default
        3.0
    """

    name: str
    default: float
    unit: str = ""
    lower: float = -math.inf
    upper: float = math.inf
    frozen: bool = False
    soft: tuple[float, float] | None = None
    description: str = ""


@dataclass(frozen=True)
class ComponentSpec:
    """How to evaluate one component.

    ``evaluate(grid, params)`` returns, for an additive component, the photon
    flux integrated over each bin of ``grid`` (photons/cm^2/s); for a
    multiplicative one, the factor averaged over each bin. ``lines(grid,
    params)`` (additive only, optional) returns ``(norm, centre, sigma)`` of
    Gaussian lines, so that Gaussian convolutions can broaden them
    analytically. Convolutions provide ``apply(grid, params, part, total)``
    (see :mod:`jxspec_nb.model.components.convolution`).
    """

    name: str
    kind: Kind
    parameters: tuple[ParamSpec, ...]
    evaluate: Callable[..., Any] | None = None
    lines: Callable[..., Any] | None = None
    apply: Callable[..., Any] | None = None
    description: str = ""
    builtin: bool = True
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.parameters)


_REGISTRY: dict[str, ComponentSpec] = {}
_LOADED = False


def _ensure_builtins() -> None:
    global _LOADED
    if not _LOADED:
        _LOADED = True
        from . import components  # noqa: F401  (registers the built-ins)


def _add(spec: ComponentSpec, *, overwrite: bool = False) -> ComponentSpec:
    if spec.name in _REGISTRY and not overwrite:
        raise ModelError(f"component {spec.name!r} is already registered; pass overwrite=True")
    _REGISTRY[spec.name] = spec
    return spec


def get_component(name: str) -> ComponentSpec | None:
    """The spec of component ``name`` (case-insensitive), or None if unknown."""
    _ensure_builtins()
    return _REGISTRY.get(name.lower())


def component_names(kind: Kind | None = None) -> list[str]:
    """Names of the registered components, optionally of one kind only.

    Example:
        >>> "powerlaw" in component_names("additive")
        True
    """
    _ensure_builtins()
    return sorted(n for n, s in _REGISTRY.items() if kind is None or s.kind == kind)


def _as_param(p: ParamSpec | Sequence[Any] | Mapping[str, Any]) -> ParamSpec:
    if isinstance(p, ParamSpec):
        return p
    if isinstance(p, Mapping):
        return ParamSpec(**p)
    return ParamSpec(*p)


def register_component(
    name: str,
    function: Callable[..., Any],
    parameters: Sequence[ParamSpec | Sequence[Any] | Mapping[str, Any]],
    *,
    kind: Literal["additive", "multiplicative"] = "additive",
    integrated: bool = False,
    description: str = "",
    overwrite: bool = False,
) -> ComponentSpec:
    """Add a user-defined component written as a plain JAX function.

    Args:
        name: lowercase name used in model expressions (letters and digits).
        function: ``function(energy, **params)`` returning the photon spectrum
            in photons/cm^2/s/keV (additive) or the dimensionless factor
            (multiplicative) at each energy (keV, any shape). It is integrated
            (additive) or averaged (multiplicative) over each energy bin by
            Gauss-Legendre quadrature. With ``integrated=True`` it is
            ``function(e_lo, e_hi, **params)`` and already returns the bin
            integral (additive) or bin average (multiplicative).
        parameters: one :class:`ParamSpec` (or tuple ``(name, default, unit,
            lower, upper, frozen)`` or dict) per parameter, in order.
        kind: "additive" or "multiplicative".
        integrated: see ``function``.
        description: one line shown in model tables.
        overwrite: replace an existing component of that name.

    Returns:
        The registered :class:`ComponentSpec`.

    Example:
        >>> import jax.numpy as jnp
        >>> spec = register_component(
        ...     "mylinear", lambda energy, slope: 1.0 + slope * energy,
        ...     [("slope", 0.0, "1/keV", -1.0, 1.0)], kind="multiplicative",
        ...     overwrite=True)
        >>> spec.kind
        'multiplicative'
    """
    _ensure_builtins()
    key = name.lower()
    if not _NAME.match(key):
        raise ModelError(
            f"component name {name!r} must start with a letter and contain only letters and "
            "digits (underscores are reserved for repeated components such as gaussian_2)"
        )
    if kind not in ("additive", "multiplicative"):
        raise ModelError(f"kind must be 'additive' or 'multiplicative', not {kind!r}")
    specs = tuple(_as_param(p) for p in parameters)
    names = [p.name for p in specs]
    if len(set(names)) != len(names):
        raise ModelError(f"component {name!r} has repeated parameter names: {names}")
    from .components._quadrature import user_evaluator

    spec = ComponentSpec(
        name=key,
        kind=kind,
        parameters=specs,
        evaluate=user_evaluator(function, names, kind=kind, integrated=integrated),
        description=description or f"user component {key}",
        builtin=False,
    )
    if key in _REGISTRY and _REGISTRY[key].builtin:
        raise ModelError(f"{key!r} is a built-in component and cannot be replaced")
    return _add(spec, overwrite=overwrite)
