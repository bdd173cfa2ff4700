"""SpectralModel: a parsed expression, its parameter table, and pure JAX evaluation.

Example:
    >>> import numpy as np
    >>> from jxspec_nb.model import parse_model
    >>> model = parse_model("tbabs*(powerlaw + bbodyrad)")
    >>> model.param_names
    ('tbabs.nH', 'powerlaw.PhoIndex', 'powerlaw.norm', 'bbodyrad.kT', 'bbodyrad.norm')
    >>> edges = np.geomspace(0.3, 10.0, 101)
    >>> flux = model.evaluate({"tbabs.nH": 0.1}, edges[:-1], edges[1:])
    >>> flux.shape
    (100,)
"""

from __future__ import annotations

import hashlib
import html
import math
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._jax import is_concrete, jax, jnp
from ..errors import ModelError
from ._engine import evaluate_parts, evaluate_total
from .components._quadrature import _BUILD_LOCK, MAX_REL_WIDTH, ORDER, Grid
from .components.convolution import band_grid, energy_flux_of
from .expression import components_of, parse_expression, to_text
from .registry import get_component

__all__ = ["Parameter", "SpectralModel", "parse_model"]

_MPC_CM = 3.0856775814913673e24


@dataclass(frozen=True)
class Parameter:
    """One model parameter (XSPEC names, defaults, units, hard limits).

    Example:
        >>> Parameter("powerlaw.PhoIndex", "powerlaw", "PhoIndex", 1.0).name
        'powerlaw.PhoIndex'
    """

    name: str
    component: str
    parname: str
    default: float
    unit: str = ""
    lower: float = -math.inf
    upper: float = math.inf
    frozen: bool = False
    xspec_component: str = ""
    description: str = ""


@dataclass(frozen=True, eq=False)
class SpectralModel:
    """A spectral model: canonical expression, parameters, pure evaluation.

    Build it with :func:`parse_model`. ``evaluate(params, e_lo, e_hi)`` returns the
    photon flux (photons/cm^2/s) in each energy bin; it is pure and safe under
    ``jax.jit``, ``jax.grad`` and ``jax.vmap``. When ``e_lo``/``e_hi`` are concrete
    (numpy) arrays, everything that does not depend on the parameters is computed
    once in numpy and cached, so a jitted model only does arithmetic.
    """

    expression: str
    tree: Any = field(repr=False)
    parameters: tuple[Parameter, ...] = field(repr=False)
    order: int = ORDER
    max_rel_width: float = MAX_REL_WIDTH
    _grids: OrderedDict = field(default_factory=OrderedDict, repr=False, compare=False)

    # ----------------------------------------------------------- parameters
    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.parameters)

    @property
    def free_names(self) -> tuple[str, ...]:
        """Names of the parameters free by default (XSPEC's thawed ones)."""
        return tuple(p.name for p in self.parameters if not p.frozen)

    @property
    def defaults(self) -> dict[str, float]:
        return {p.name: p.default for p in self.parameters}

    @property
    def components(self) -> tuple[str, ...]:
        """Component labels, left to right."""
        return tuple(c.label for c in components_of(self.tree))

    @property
    def additive_components(self) -> tuple[str, ...]:
        return tuple(c.label for c in components_of(self.tree) if c.kind == "additive")

    def parameter(self, name: str) -> Parameter:
        for p in self.parameters:
            if p.name == name:
                return p
        import difflib

        close = difflib.get_close_matches(name, self.param_names, n=1)
        raise ModelError(
            f"model {self.expression!r} has no parameter {name!r}",
            suggestion=close[0] if close else None,
        )

    def _grouped(self, params: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for p in self.parameters:
            value = params[p.name] if p.name in params else p.default
            out.setdefault(p.component, {})[p.parname] = value
        for c in components_of(self.tree):
            out.setdefault(c.label, {})
        return out

    # --------------------------------------------------------------- grids
    def grid(self, e_lo: Any, e_hi: Any) -> Grid:
        """The (cached, for concrete arrays) :class:`Grid` of these bin edges."""
        if not is_concrete(e_lo, e_hi):
            return Grid(e_lo, e_hi, order=self.order, max_rel_width=self.max_rel_width)
        lo = np.ascontiguousarray(e_lo, dtype=np.float64).reshape(-1)
        hi = np.ascontiguousarray(e_hi, dtype=np.float64).reshape(-1)
        key = hashlib.blake2b(lo.tobytes() + b"|" + hi.tobytes(), digest_size=16).digest()
        with _BUILD_LOCK:  # one Grid per edges when several threads trace the model
            g = self._grids.get(key)
            if g is None:
                if lo.size and (np.any(lo <= 0) or np.any(hi <= lo)):
                    raise ModelError(
                        "energy bins must satisfy 0 < e_lo < e_hi (drop bins that start at "
                        "0 keV)"
                    )
                g = Grid(lo, hi, order=self.order, max_rel_width=self.max_rel_width)
                self._grids[key] = g
                while len(self._grids) > 8:
                    self._grids.popitem(last=False)
            else:
                self._grids.move_to_end(key)
            return g

    def prepare(self, e_lo: Any, e_hi: Any) -> None:
        """Build the tables the components need on these bins (absorption terms, ...)
        ahead of the first trace; what a trace would otherwise build on its way (the
        fit starts this in a thread, where numpy's array work runs beside the trace's
        Python). Components declare theirs as ``extra["prepare"](grid)``."""
        grid = self.grid(e_lo, e_hi)
        for comp in components_of(self.tree):
            prep = get_component(comp.name).extra.get("prepare")
            if prep is not None:
                prep(grid)

    # ----------------------------------------------------------- evaluation
    def _full(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return {p.name: params[p.name] if p.name in params else p.default
                for p in self.parameters}

    def _compiled(self, what: str, grid: Grid, params: Mapping[str, Any]) -> Any | None:
        """Outside any JAX transformation, run ``what`` through a cached jit per grid."""
        full = self._full(params)
        if not (grid.concrete and is_concrete(*full.values())):
            return None
        bad = [k for k, v in full.items() if np.ndim(v) != 0]
        if bad:
            raise ModelError(
                f"parameter values must be scalars (got arrays for {', '.join(bad)}); "
                "evaluate a batch with jax.vmap"
            )
        engine = evaluate_total if what == "total" else evaluate_parts
        fn = grid.cached(("jit", what),
                         lambda: jax.jit(lambda p: engine(self.tree, grid, self._grouped(p))))
        return fn({k: jnp.asarray(v, dtype=jnp.float64) for k, v in full.items()})

    def evaluate(self, params: Mapping[str, Any], e_lo: Any, e_hi: Any) -> Any:
        """Photon flux (photons/cm^2/s) in each bin [e_lo, e_hi] keV, shape (m,).

        Args:
            params: ``{"powerlaw.PhoIndex": 1.7, ...}``; missing ones take their
                defaults, names not in the model are ignored.
            e_lo, e_hi: bin edges in keV (numpy for speed; traced arrays work too).
        """
        grid = self.grid(e_lo, e_hi)
        out = self._compiled("total", grid, params)
        if out is not None:
            return out
        return evaluate_total(self.tree, grid, self._grouped(params))

    def __call__(self, params: Mapping[str, Any], e_lo: Any, e_hi: Any) -> Any:
        return self.evaluate(params, e_lo, e_hi)

    def evaluate_components(
        self, params: Mapping[str, Any], e_lo: Any, e_hi: Any
    ) -> dict[str, Any]:
        """Each additive component's flux (m,), its multiplicative factors applied."""
        grid = self.grid(e_lo, e_hi)
        out = self._compiled("parts", grid, params)
        if out is not None:  # jit returns dicts with sorted keys: restore the model's order
            return {label: out[label] for label in self.additive_components}
        return evaluate_parts(self.tree, grid, self._grouped(params))

    # --------------------------------------------------------------- fluxes
    def _band(self, params: Mapping[str, Any], e_min: Any, e_max: Any) -> tuple[Grid, Any]:
        g = band_grid(e_min, e_max)
        if g.concrete:
            g = self.grid(g.e_lo, g.e_hi)
            out = self._compiled("total", g, params)
            if out is not None:
                return g, out
        return g, evaluate_total(self.tree, g, self._grouped(params))

    def photon_flux(self, params: Mapping[str, Any], e_min: float, e_max: float) -> Any:
        """Photon flux (photons/cm^2/s) between ``e_min`` and ``e_max`` keV."""
        return jnp.sum(self._band(params, e_min, e_max)[1])

    def energy_flux(self, params: Mapping[str, Any], e_min: float, e_max: float) -> Any:
        """Energy flux (erg/cm^2/s) between ``e_min`` and ``e_max`` keV.

        Example:
            >>> m = parse_model("powerlaw")
            >>> f = m.energy_flux({"powerlaw.PhoIndex": 2.0}, 1.0, 10.0)
            >>> bool(abs(float(f) / (np.log(10.0) * 1.602176634e-9) - 1) < 1e-6)
            True
        """
        g, photons = self._band(params, e_min, e_max)
        return energy_flux_of(g, photons)

    def luminosity(
        self,
        params: Mapping[str, Any],
        e_min: float,
        e_max: float,
        *,
        redshift: float | None = None,
        distance: Any = None,
        cosmology: Any = None,
    ) -> Any:
        """Luminosity (erg/s) in the source-frame band [e_min, e_max] keV.

        Args:
            params: parameter values.
            e_min, e_max: rest-frame band in keV.
            redshift: source redshift; the observed band is [e_min, e_max]/(1+z) and
                the luminosity distance comes from ``cosmology``.
            distance: luminosity distance instead (astropy Quantity, or float in cm).
            cosmology: astropy cosmology (default Planck18).

        Example:
            >>> m = parse_model("powerlaw")
            >>> L = m.luminosity({}, 2.0, 10.0, distance=3.0856775814913673e22)
            >>> f"{float(L):.4e}"  # 4 pi (10 kpc)^2 x 8 keV/cm^2/s (E x E^-1 over 2-10 keV)
            '1.5336e+38'
        """
        if distance is None and redshift is None:
            raise ModelError("luminosity needs a redshift or a distance")
        z = 0.0 if redshift is None else float(redshift)
        if distance is None:
            if cosmology is None:
                from astropy.cosmology import Planck18 as cosmology
            d_cm = float(cosmology.luminosity_distance(z).to("cm").value)
        elif hasattr(distance, "to"):
            d_cm = float(distance.to("cm").value)
        else:
            d_cm = float(distance)
        flux = self.energy_flux(params, e_min / (1.0 + z), e_max / (1.0 + z))
        return 4.0 * math.pi * d_cm**2 * flux

    # ----------------------------------------------------------------- repr
    def table_rows(self) -> list[tuple[str, str, str, str, str, str]]:
        def fmt(x: float) -> str:
            return "-inf" if x == -math.inf else "inf" if x == math.inf else f"{x:g}"

        return [
            (p.name, f"{p.default:g}", p.unit, fmt(p.lower), fmt(p.upper),
             "frozen" if p.frozen else "free")
            for p in self.parameters
        ]

    def __repr__(self) -> str:
        head = ("parameter", "default", "unit", "lower", "upper", "status")
        rows = [head, *self.table_rows()]
        widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
        lines = [f"SpectralModel: {self.expression}"]
        for r in rows:
            lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        try:
            from ..results.display import model_html
        except ImportError:
            return f"<pre>{html.escape(repr(self))}</pre>"
        return model_html(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SpectralModel) and other.expression == self.expression

    def __hash__(self) -> int:
        return hash(("SpectralModel", self.expression))


def parse_model(
    text: str, *, order: int = ORDER, max_rel_width: float = MAX_REL_WIDTH
) -> SpectralModel:
    """Parse an XSPEC-style expression into a :class:`SpectralModel`.

    Args:
        text: e.g. ``"tbabs*(powerlaw + bbodyrad)"``, ``"vbroad(gaussian + gaussian)"``,
            ``"constant*tbabs*(diskbb + cutoffpl) + gaussian:fe_k"``.
        order: Gauss-Legendre nodes per (sub-)bin for components without an
            analytic bin integral.
        max_rel_width: bins wider than this fraction of their energy are split.

    Raises:
        ModelError: unknown component or bad syntax, with line, column and the
            closest valid name.

    Example:
        >>> parse_model("TBabs*(powerlaw+gaussian:fe_k)").expression
        'tbabs*(powerlaw + gaussian:fe_k)'
    """
    tree = parse_expression(text)
    params: list[Parameter] = []
    for c in components_of(tree):
        spec = get_component(c.name)
        for ps in spec.parameters:
            params.append(Parameter(
                name=f"{c.label}.{ps.name}", component=c.label, parname=ps.name,
                default=float(ps.default), unit=ps.unit, lower=float(ps.lower),
                upper=float(ps.upper), frozen=ps.frozen, xspec_component=c.name,
                description=ps.description,
            ))
    return SpectralModel(to_text(tree), tree, tuple(params), order=order,
                         max_rel_width=max_rel_width)
