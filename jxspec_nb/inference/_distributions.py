"""Prior distributions known by name, with their sampling-space transforms.

Each :class:`PriorDef` knows three things the samplers need:

* ``to_numpyro()``: the numpyro distribution (what ``ModelSpec.priors`` shows);
* ``forward(u)``: map an unconstrained real ``u`` to the parameter value and
  return ``log p(x) + log |dx/du|`` (the prior density in sampling space, up to
  a constant). ``LogUniform`` is sampled in log space, ``Normal`` is
  standardised: both make the posterior rounder for NUTS;
* ``from_unit(q)``: the inverse CDF, for nested sampling (``to_unit(x)``, the CDF).

>>> PriorDef("Uniform", (0.0, 3.0)).support
(0.0, 3.0)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

__all__ = ["PriorDef", "KNOWN", "VectorForward", "prior_from_numpyro"]

# name -> (positional parameter names, keyword-only names with defaults)
KNOWN: dict[str, tuple[tuple[str, ...], dict[str, float | None]]] = {
    "Uniform": (("low", "high"), {}),
    "LogUniform": (("low", "high"), {}),
    "Normal": (("loc", "scale"), {}),
    "TruncatedNormal": (("loc", "scale"), {"low": None, "high": None}),
    "LogNormal": (("loc", "scale"), {}),
    "HalfNormal": (("scale",), {}),
}


def _fmt(x: float) -> str:
    return repr(float(x))


class PriorDef(NamedTuple):
    """A named prior: ``kind`` in :data:`KNOWN` and its arguments.

    Example:
        >>> PriorDef("LogUniform", (1e-5, 0.1)).text()
        'LogUniform(1e-05, 0.1)'
    """

    kind: str
    args: tuple[float, ...]
    low: float | None = None  # TruncatedNormal bounds
    high: float | None = None

    # ---------------------------------------------------------------- text
    def text(self) -> str:
        """The prior as it would be written in an ``%%xmodel`` cell."""
        inner = ", ".join(_fmt(a) for a in self.args)
        if self.kind == "TruncatedNormal":
            if self.low is not None:
                inner += f", low={_fmt(self.low)}"
            if self.high is not None:
                inner += f", high={_fmt(self.high)}"
        return f"{self.kind}({inner})"

    # ------------------------------------------------------------- support
    @property
    def support(self) -> tuple[float, float]:
        """(lower, upper) bounds of the support (may be infinite)."""
        k, a = self.kind, self.args
        if k in ("Uniform", "LogUniform"):
            return (a[0], a[1])
        if k == "Normal":
            return (-math.inf, math.inf)
        if k in ("LogNormal", "HalfNormal"):
            return (0.0, math.inf)
        lo = -math.inf if self.low is None else self.low
        hi = math.inf if self.high is None else self.high
        return (lo, hi)

    def validate(self) -> str | None:
        """A message if the arguments are invalid, else None."""
        k, a = self.kind, self.args
        if k in ("Uniform", "LogUniform") and not a[0] < a[1]:
            return f"{k} needs low < high, got low={a[0]!r}, high={a[1]!r}"
        if k == "LogUniform" and a[0] <= 0:
            return f"LogUniform needs low > 0, got {a[0]!r}"
        if k in ("Normal", "TruncatedNormal", "LogNormal") and a[1] <= 0:
            return f"{k} needs scale > 0, got {a[1]!r}"
        if k == "HalfNormal" and a[0] <= 0:
            return f"HalfNormal needs scale > 0, got {a[0]!r}"
        if k == "TruncatedNormal":
            lo, hi = self.support
            if not lo < hi:
                return f"TruncatedNormal needs low < high, got low={lo!r}, high={hi!r}"
        return None

    def median(self) -> float:
        """A central value of the prior (initial point of optimisers)."""
        lo, hi = self.support
        k, a = self.kind, self.args
        if k == "Uniform":
            return 0.5 * (a[0] + a[1])
        if k == "LogUniform":
            return math.sqrt(a[0] * a[1])
        if k == "LogNormal":
            return math.exp(a[0])
        if k == "HalfNormal":
            return 0.674 * a[0]
        return min(max(a[0], lo + 1e-3 * (hi - lo) if math.isfinite(hi - lo) else lo), hi)

    # --------------------------------------------------------------- numpyro
    def to_numpyro(self) -> Any:
        """The numpyro distribution."""
        import numpyro.distributions as dist

        k, a = self.kind, self.args
        if k == "TruncatedNormal":
            return dist.TruncatedNormal(a[0], a[1], low=self.low, high=self.high)
        return getattr(dist, k)(*a)

    # ------------------------------------------------------- sampling space
    @property
    def branch(self) -> str:
        """Which sampling-space transform :meth:`forward` uses (see :func:`_forward`)."""
        k = self.kind
        if k != "TruncatedNormal":
            return k
        lo, hi = self.support
        if math.isfinite(lo) and math.isfinite(hi):
            return "TN_both"
        if math.isfinite(lo):
            return "TN_lo"
        return "TN_hi" if math.isfinite(hi) else "TN_none"

    def _coefs(self) -> tuple[float, float, float, float]:
        """(a0, a1, lo, hi) as floats for :func:`_forward` (unused ones are 0)."""
        a = (*self.args, 0.0)
        lo, hi = self.support
        if self.kind == "LogUniform":
            lo, hi = math.log(a[0]), math.log(a[1])
        return (float(a[0]), float(a[1]), lo if math.isfinite(lo) else 0.0,
                hi if math.isfinite(hi) else 0.0)

    def forward(self, u: Any) -> tuple[Any, Any]:
        """Unconstrained ``u`` -> (value, log prior density in u-space + const)."""
        return _forward(self.branch, u, *self._coefs())

    def inverse(self, x: float) -> float:
        """Value -> unconstrained ``u`` (numpy, for initial points)."""
        k, a = self.kind, self.args

        def logit(p: float) -> float:
            p = min(max(p, 1e-12), 1 - 1e-12)
            return math.log(p / (1 - p))

        if k == "Uniform":
            return logit((x - a[0]) / (a[1] - a[0]))
        if k == "LogUniform":
            la, lb = math.log(a[0]), math.log(a[1])
            return logit((math.log(max(x, 1e-300)) - la) / (lb - la))
        if k == "Normal":
            return (x - a[0]) / a[1]
        if k == "LogNormal":
            return (math.log(max(x, 1e-300)) - a[0]) / a[1]
        if k == "HalfNormal":
            return math.log(max(x, 1e-300) / a[0])
        lo, hi = self.support
        if math.isfinite(lo) and math.isfinite(hi):
            return logit((x - lo) / (hi - lo))
        if math.isfinite(lo):
            return math.log(max(x - lo, 1e-300))
        if math.isfinite(hi):
            return math.log(max(hi - x, 1e-300))
        return x

    def from_unit(self, q: Any) -> Any:
        """Inverse CDF: a uniform ``q`` in (0, 1) -> value (nested sampling)."""
        import jax.numpy as jnp
        from jax.scipy.special import ndtr, ndtri

        k, a = self.kind, self.args
        q = jnp.clip(q, 1e-15, 1 - 1e-15)
        if k == "Uniform":
            return a[0] + (a[1] - a[0]) * q
        if k == "LogUniform":
            la, lb = math.log(a[0]), math.log(a[1])
            return jnp.exp(la + (lb - la) * q)
        if k == "Normal":
            return a[0] + a[1] * ndtri(q)
        if k == "LogNormal":
            return jnp.exp(a[0] + a[1] * ndtri(q))
        if k == "HalfNormal":
            return a[0] * ndtri(0.5 + 0.5 * q)
        lo, hi = self.support
        plo = ndtr((lo - a[0]) / a[1]) if math.isfinite(lo) else 0.0
        phi = ndtr((hi - a[0]) / a[1]) if math.isfinite(hi) else 1.0
        return a[0] + a[1] * ndtri(plo + q * (phi - plo))

    def to_unit(self, x: Any) -> Any:
        """The CDF (numpy): a value -> ``q`` in [0, 1]; the inverse of :meth:`from_unit`."""
        import numpy as np
        from scipy.special import ndtr

        k, a = self.kind, self.args
        x = np.asarray(x, dtype=np.float64)
        if k == "Uniform":
            q = (x - a[0]) / (a[1] - a[0])
        elif k == "LogUniform":
            la, lb = math.log(a[0]), math.log(a[1])
            q = (np.log(np.maximum(x, 1e-300)) - la) / (lb - la)
        elif k == "Normal":
            q = ndtr((x - a[0]) / a[1])
        elif k == "LogNormal":
            q = ndtr((np.log(np.maximum(x, 1e-300)) - a[0]) / a[1])
        elif k == "HalfNormal":
            q = 2.0 * ndtr(np.maximum(x, 0.0) / a[0]) - 1.0
        else:
            lo, hi = self.support
            plo = ndtr((lo - a[0]) / a[1]) if math.isfinite(lo) else 0.0
            phi = ndtr((hi - a[0]) / a[1]) if math.isfinite(hi) else 1.0
            q = (ndtr((x - a[0]) / a[1]) - plo) / (phi - plo)
        return np.clip(q, 0.0, 1.0)

    def sample(self, rng: Any, size: int) -> Any:
        """Draws with numpy (``rng``: numpy Generator)."""
        import numpy as np
        from scipy.special import ndtr, ndtri

        k, a = self.kind, self.args
        if k == "Uniform":
            return rng.uniform(a[0], a[1], size)
        if k == "LogUniform":
            return np.exp(rng.uniform(math.log(a[0]), math.log(a[1]), size))
        if k == "Normal":
            return rng.normal(a[0], a[1], size)
        if k == "LogNormal":
            return np.exp(rng.normal(a[0], a[1], size))
        if k == "HalfNormal":
            return np.abs(rng.normal(0.0, a[0], size))
        lo, hi = self.support
        plo = ndtr((lo - a[0]) / a[1])
        phi = ndtr((hi - a[0]) / a[1])
        return a[0] + a[1] * ndtri(rng.uniform(plo, phi, size))


def _forward(branch: str, u: Any, a0: Any, a1: Any, lo: Any, hi: Any) -> tuple[Any, Any]:
    """The transform of one :attr:`PriorDef.branch`, elementwise on ``u`` (scalar or vector).

    ``a0, a1``: the prior's arguments; ``lo, hi``: its finite bounds (for LogUniform the
    logs of its bounds). Returns (value, log prior density in u-space + const).
    """
    import jax.numpy as jnp
    from jax.nn import log_sigmoid, sigmoid
    from jax.scipy.stats import norm

    if branch in ("Normal", "LogNormal"):
        z = a0 + a1 * u
        return (z if branch == "Normal" else jnp.exp(z)), -0.5 * u * u
    if branch == "HalfNormal":
        x = a0 * jnp.exp(u)
        return x, -0.5 * (x / a0) ** 2 + u
    if branch == "TN_none":
        x = a0 + a1 * u
        return x, norm.logpdf(x, a0, a1)
    if branch in ("TN_lo", "TN_hi"):
        e = jnp.exp(u)
        x = lo + e if branch == "TN_lo" else hi - e
        return x, norm.logpdf(x, a0, a1) + u
    jac = log_sigmoid(u) + log_sigmoid(-u)  # Uniform, LogUniform, TN_both: bounded
    z = lo + (hi - lo) * sigmoid(u)
    if branch == "Uniform":
        return z, jac
    if branch == "LogUniform":
        return jnp.exp(z), jac
    return z, norm.logpdf(z, a0, a1) + jac


class VectorForward:
    """:meth:`PriorDef.forward` of many priors at once, as whole-vector operations.

    Each transform branch present is evaluated on the whole vector ``u`` (lanes of
    other branches get harmless stand-in inputs and coefficients) and selected with
    a constant mask: the compiled code is one elementwise loop over the parameters,
    with no gathers or scatters in its gradient, whatever the mix of priors. This
    compiles several times faster than one scalar chain per parameter, and faster
    than gathering each branch's indices.

    Example:
        >>> vf = VectorForward([PriorDef("Uniform", (0.0, 2.0)), PriorDef("Normal", (1.0, 2.0))])
        >>> [float(v) for v in vf(np.zeros(2))[0]]
        [1.0, 1.0]
    """

    _SAFE = (0.0, 1.0, 0.0, 1.0)  # (a0, a1, lo, hi) in lanes of other branches

    def __init__(self, priors: Sequence[PriorDef]) -> None:
        self.n = len(priors)
        branches: dict[str, list[int]] = {}
        for k, p in enumerate(priors):
            branches.setdefault(p.branch, []).append(k)
        self.groups: list[tuple[str, np.ndarray, np.ndarray]] = []
        for branch, idx in branches.items():
            mask = np.zeros(self.n, dtype=bool)
            mask[idx] = True
            coefs = np.tile(np.array(self._SAFE, dtype=np.float64)[:, None], (1, self.n))
            for k in idx:
                coefs[:, k] = priors[k]._coefs()
            self.groups.append((branch, mask, coefs))

    def __call__(self, u: Any) -> tuple[Any, Any]:
        """``u`` (>= n,) -> (values (n,), summed log prior density in u-space)."""
        import jax.numpy as jnp

        if self.n == 0:
            return jnp.zeros(0), 0.0
        u = u[: self.n]
        if len(self.groups) == 1:
            branch, _, coefs = self.groups[0]
            x, lp = _forward(branch, u, *coefs)
            return x, jnp.sum(lp)
        x = lp = None
        for branch, mask, coefs in self.groups:
            xb, lpb = _forward(branch, jnp.where(mask, u, 0.0), *coefs)
            x = xb if x is None else jnp.where(mask, xb, x)
            lp = lpb if lp is None else jnp.where(mask, lpb, lp)
        return x, jnp.sum(lp)


def prior_from_numpyro(d: Any) -> PriorDef | None:
    """Recognise a numpyro distribution given from Python; None if unknown."""
    import numpyro.distributions as dist

    def f(x: Any) -> float:
        return float(x)

    try:
        if isinstance(d, dist.LogUniform):
            return PriorDef("LogUniform", (f(d.low), f(d.high)))
        if isinstance(d, dist.Uniform):
            return PriorDef("Uniform", (f(d.low), f(d.high)))
        if isinstance(d, dist.LogNormal):
            return PriorDef("LogNormal", (f(d.base_dist.loc), f(d.base_dist.scale)))
        if isinstance(d, dist.HalfNormal):
            return PriorDef("HalfNormal", (f(d.scale),))
        if isinstance(d, dist.Normal):
            return PriorDef("Normal", (f(d.loc), f(d.scale)))
        base = getattr(d, "base_dist", None)
        if isinstance(base, dist.Normal):
            low = getattr(d, "low", None)
            high = getattr(d, "high", None)
            return PriorDef(
                "TruncatedNormal",
                (f(base.loc), f(base.scale)),
                None if low is None else f(low),
                None if high is None else f(high),
            )
    except (TypeError, ValueError):
        return None
    return None
