"""Energy grids and the per-bin quadrature shared by all components.

A :class:`Grid` holds the bin edges ``e_lo``/``e_hi`` (keV). When they are
concrete (numpy, or JAX arrays outside a trace) every parameter-independent
quantity (Gauss-Legendre nodes and weights, log-energies, cross sections at the
nodes) is computed once in numpy and cached on the grid, so that a jitted model
only does arithmetic on constants. When they are traced (a gain/shift fit or a
redshift convolution moves the grid) the same quantities are computed with
``jax.numpy`` inside the trace.

Quadrature: each bin is split into ``k`` equal sub-intervals with
``k = ceil((e_hi - e_lo) / (max_rel_width * e_mid))`` (the same ``k`` for all bins,
so arrays stay rectangular), each integrated with ``order`` Gauss-Legendre nodes
(default 4). ``integrate(f)`` returns the bin integrals of ``f(E)``, ``average(f)``
the bin averages.

Example:
    >>> import numpy as np
    >>> g = Grid(np.array([1.0, 2.0]), np.array([2.0, 3.0]))
    >>> np.allclose(g.integrate(lambda e: e**2), [7 / 3, 19 / 3])
    True
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..._jax import is_concrete, jnp

_BUILD_LOCK = threading.RLock()

__all__ = ["Grid", "row_sum", "user_evaluator"]

ORDER = 2
MAX_REL_WIDTH = 0.02
_MAX_SUB = 64


class Grid:
    """An energy grid with a cache of parameter-independent precomputations."""

    def __init__(
        self,
        e_lo: Any,
        e_hi: Any,
        *,
        order: int = ORDER,
        max_rel_width: float = MAX_REL_WIDTH,
        n_sub: int | None = None,
    ) -> None:
        self.concrete = is_concrete(e_lo, e_hi)
        if self.concrete:
            self.e_lo = np.asarray(e_lo, dtype=np.float64).reshape(-1)
            self.e_hi = np.asarray(e_hi, dtype=np.float64).reshape(-1)
            self.xp = np
        else:
            self.e_lo = jnp.asarray(e_lo, dtype=jnp.float64).reshape(-1)
            self.e_hi = jnp.asarray(e_hi, dtype=jnp.float64).reshape(-1)
            self.xp = jnp
        if self.e_lo.shape != self.e_hi.shape:
            raise ValueError(f"e_lo {self.e_lo.shape} and e_hi {self.e_hi.shape} differ in shape")
        self.order = order
        self.max_rel_width = max_rel_width
        self._cache: dict[Any, Any] = {} if n_sub is None else {"n_sub": n_sub}

    @property
    def size(self) -> int:
        return int(self.e_lo.shape[0])

    def cached(self, key: Any, make: Callable[[], Any]) -> Any:
        """``make()`` once per grid (keyed by ``key``).

        Thread-safe: programs are traced in worker threads while the main thread
        traces another (:func:`~jxspec_nb.inference.methods._common.background`), and
        each trace asks for the same tables; without the lock each thread built its
        own (VI on ULX-4, cold: the absorption terms three times over, 0.8-1.2 s each
        on 2 cores instead of 0.3 s once).
        """
        try:
            return self._cache[key]
        except KeyError:
            pass
        with _BUILD_LOCK:  # one lock for every grid: a build may ask another grid
            if key not in self._cache:
                self._cache[key] = make()
            return self._cache[key]

    # ------------------------------------------------------------------ edges
    @property
    def contiguous(self) -> bool:
        """True when ``e_hi[i] == e_lo[i+1]`` (known only for concrete grids)."""
        if not self.concrete:
            return False
        return self.cached(
            "contiguous", lambda: bool(np.array_equal(self.e_lo[1:], self.e_hi[:-1]))
        )

    def at_edges(self, fn: Callable[[Any], Any], key: Any = None) -> tuple[Any, Any]:
        """``(fn(e_lo), fn(e_hi))``; on a contiguous grid ``fn`` runs once on the m+1 edges."""
        if self.contiguous:
            edges = self.cached("edges", lambda: np.append(self.e_lo, self.e_hi[-1]))
            v = fn(edges)
            return v[:-1], v[1:]
        return fn(self.e_lo), fn(self.e_hi)

    @property
    def mid(self) -> Any:
        return self.cached("mid", lambda: 0.5 * (self.e_lo + self.e_hi))

    @property
    def width(self) -> Any:
        return self.cached("width", lambda: self.e_hi - self.e_lo)

    # ------------------------------------------------------------- quadrature
    @property
    def n_sub(self) -> int:
        def make() -> int:
            if not self.concrete:
                return 1
            mid = 0.5 * (self.e_lo + self.e_hi)
            with np.errstate(divide="ignore", invalid="ignore"):
                rel = np.where(mid > 0, (self.e_hi - self.e_lo) / mid, 1.0)
            worst = float(np.max(rel)) if rel.size else 0.0
            return int(min(max(math.ceil(worst / self.max_rel_width - 1e-9), 1), _MAX_SUB))

        return self.cached("n_sub", make)

    def nodes(self) -> tuple[Any, Any]:
        """Quadrature nodes (q, m) and weights (q, m); weights sum to the bin widths.

        Node-major layout: the reduction over the q nodes of a bin is a sum of
        q contiguous rows, which XLA compiles (and differentiates) much faster
        than a reduction over a short trailing axis.
        """

        def make() -> tuple[Any, Any]:
            xp = self.xp
            t, wt = self.unit_rule()
            width = (self.e_hi - self.e_lo)[None, :]
            nodes = self.e_lo[None, :] + width * xp.asarray(t)[:, None]
            weights = width * xp.asarray(wt)[:, None]
            return nodes, weights

        return self.cached("nodes", make)

    def unit_rule(self) -> tuple[np.ndarray, np.ndarray]:
        """The grid's rule on [0, 1]: node positions and weights (numpy), ``n_sub``
        equal sub-intervals of ``order`` Gauss-Legendre nodes each."""

        def make() -> tuple[np.ndarray, np.ndarray]:
            x, w = np.polynomial.legendre.leggauss(self.order)
            k = self.n_sub
            # sub-interval j of k: [j/k, (j+1)/k] in units of the bin
            t = ((np.arange(k)[:, None] + 0.5 * (x[None, :] + 1.0)) / k).reshape(-1)
            wt = (np.broadcast_to(0.5 * w[None, :] / k, (k, self.order))).reshape(-1)
            return t, wt

        return self.cached("unit_rule", make)

    def log_nodes(self) -> Any:
        """ln of the quadrature nodes (a constant on a concrete grid: a power of E is
        then one exponential per node, not XLA's logarithm and exponential)."""
        return self.cached("log_nodes", lambda: self.xp.log(self.nodes()[0]))

    def node_energies(self) -> Any:
        return self.nodes()[0]

    def integrate(self, f: Callable[[Any], Any] | Any) -> Any:
        """Bin integrals of ``f(E)`` (a callable, or its values at :meth:`node_energies`)."""
        nodes, weights = self.nodes()
        values = f(nodes) if callable(f) else f
        return row_sum(values * weights)

    def average(self, f: Callable[[Any], Any] | Any) -> Any:
        """Bin averages of ``f(E)``."""
        nodes, weights = self.nodes()
        rel = self.cached("rel_weights", lambda: weights / (self.e_hi - self.e_lo)[None, :])
        values = f(nodes) if callable(f) else f
        return row_sum(values * rel)

    def const(self, key: Any, make: Callable[[Any], Any]) -> Any:
        """A parameter-independent array built by ``make(xp)`` and cached."""
        return self.cached(("const", key), lambda: make(self.xp))

    def shifted(self, factor: Any) -> Grid:
        """A grid with every edge multiplied by ``factor`` (traced if ``factor`` is)."""
        kw = {"order": self.order, "max_rel_width": self.max_rel_width, "n_sub": self.n_sub}
        if is_concrete(factor) and self.concrete:
            f = float(np.asarray(factor))
            return Grid(self.e_lo * f, self.e_hi * f, **kw)
        return Grid(jnp.asarray(self.e_lo) * factor, jnp.asarray(self.e_hi) * factor, **kw)


def row_sum(x: Any) -> Any:
    """Sum over the first (node or line) axis of a (q, m) array.

    Node-major layout with one reduction over the leading axis was measured
    faster under ``jax.value_and_grad`` than a trailing-axis reduction or an
    unrolled chain of additions.
    """
    return jnp.sum(x, axis=0)


def user_evaluator(
    function: Callable[..., Any],
    names: Sequence[str],
    *,
    kind: str,
    integrated: bool,
) -> Callable[[Grid, dict[str, Any]], Any]:
    """Wrap a user's plain JAX function as a component evaluator."""

    def evaluate(grid: Grid, p: dict[str, Any]) -> Any:
        kwargs = {n: p[n] for n in names}
        if integrated:
            return jnp.asarray(function(grid.e_lo, grid.e_hi, **kwargs))
        if kind == "additive":
            return grid.integrate(lambda e: function(e, **kwargs))
        return grid.average(lambda e: function(e, **kwargs))

    return evaluate
