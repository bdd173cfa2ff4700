"""Additive components: photon flux integrated over each energy bin.

Every function returns photons/cm^2/s in each bin ``[e_lo, e_hi]`` (keV).
Analytic bin integrals are used where they exist (``powerlaw``, ``zpowerlw``,
``bknpower``, ``gaussian``, ``zgauss``, ``lorentz``, ``constadd``); the others
(``cutoffpl``, ``bbody``, ``bbodyrad``, ``zbbody``, ``diskbb``, ``bremss``,
``logpar``, ``grbm``) use the grid's fixed Gauss-Legendre quadrature inside each
bin (see :class:`~jxspec_nb.model.components._quadrature.Grid`).

Definitions follow the XSPEC manual, A(E) in photons/cm^2/s/keV:

- powerlaw: K E^-PhoIndex; zpowerlw: K [E(1+z)]^-PhoIndex
- bknpower: K E^-PhoIndx1 below BreakE, K BreakE^(PhoIndx2-PhoIndx1) E^-PhoIndx2 above
- cutoffpl: K E^-PhoIndex exp(-E/HighECut)
- bbody: K 8.0525 E^2 / (kT^4 (exp(E/kT) - 1)) (K = L39 / D10^2)
- bbodyrad: K 1.0344e-3 E^2 / (exp(E/kT) - 1) (K = R_km^2 / D10^2)
- zbbody: K 8.0525 (E(1+z))^2 / ((1+z) kT^4 (exp(E(1+z)/kT) - 1))
- diskbb: K 1.0344e-3 (8/3) int_0^1 x^(-11/3) E^2 / (exp(E/(x Tin)) - 1) dx, the
  Mitsuda et al. (1984) disk with T(r) = Tin (r/Rin)^(-3/4), K = (Rin_km/D10)^2 cos(i);
  through the Bose integral I(a) = int_a^inf y^(5/3)/(e^y - 1) dy (Bernoulli series
  below a = E/Tin = 2, Gauss-Laguerre above, both accurate to ~1e-13), tabulated once
  as ln(a^(-2/3) I(a)) against ln a and interpolated by cubic Hermite segments
  (relative error < 2e-9)
- bremss: K g(E, kT) exp(-E/kT) / (E sqrt(kT)) with the Born-approximation,
  thermally averaged Gaunt factor g = sqrt(3)/pi exp(u/2) K0(u/2), u = E/kT.
  XSPEC uses the Kellogg, Baldwin & Koch (1975) fits instead: expect differences
  of a few per cent at low E/kT.
- gaussian: K exp(-(E-LineE)^2 / (2 Sigma^2)) / (sqrt(2 pi) Sigma), normalised
  to K over E > 0; Sigma = 0 is a delta function. zgauss: observed line at
  LineE/(1+z), width Sigma/(1+z), total flux K/(1+z) (source-frame parameters).
- lorentz: K (Width/2pi) / ((E-LineE)^2 + (Width/2)^2), Width the FWHM,
  normalised to K over E > 0
- logpar: K (E/pivotE)^(-alpha - beta log10(E/pivotE))
- grbm (Band et al. 1993): K (E/100)^alpha exp(-E/tem) below (alpha-beta) tem,
  K [(alpha-beta) tem/100]^(alpha-beta) exp(beta-alpha) (E/100)^beta above
- constadd: K (flat photons/cm^2/s/keV). XSPEC has no additive constant; this is
  jxspec_nb's own name for it (e.g. a continuum baseline under narrow lines).

Example:
    >>> import numpy as np
    >>> from jxspec_nb.model.components._quadrature import Grid
    >>> g = Grid(np.array([1.0]), np.array([2.0]))
    >>> float(powerlaw(g, {"PhoIndex": 2.0, "norm": 1.0})[0])
    0.5
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
from scipy.special import zeta

from ..._jax import jax, jnp
from ..registry import ComponentSpec, ParamSpec, _add
from ._lines import Lines, line_flux

INF = math.inf


# --------------------------------------------------------------------- helpers
def _pl_integral_edges(grid: Any, gamma: Any) -> Any:
    """Integral of E^-gamma over each bin, exact (also for gamma = 1)."""
    a = 1.0 - gamma
    if grid.concrete:
        log_lo, log_hi = grid.at_edges(lambda e: np.log(e))
        d = grid.const("dlog", lambda xp: np.log(grid.e_hi / grid.e_lo))
    else:
        log_lo, log_hi = jnp.log(grid.e_lo), jnp.log(grid.e_hi)
        d = log_hi - log_lo
    if grid.contiguous:
        edges_log = grid.const("log_edges", lambda xp: np.log(np.append(grid.e_lo, grid.e_hi[-1])))
        v = jnp.exp(a * edges_log)
        v_lo, v_hi = v[:-1], v[1:]
    else:
        v_lo, v_hi = jnp.exp(a * log_lo), jnp.exp(a * log_hi)
    small = jnp.abs(a) < 1e-4
    inv_a = 1.0 / jnp.where(small, 1.0, a)  # one scalar division, not one per bin
    ad = a * d
    taylor = v_lo * d * (1.0 + ad * (0.5 + ad * ((1.0 / 6.0) + ad * (1.0 / 24.0))))
    return jnp.where(small, taylor, (v_hi - v_lo) * inv_a)


def _spec(name: str, params: list[ParamSpec], evaluate, description: str, lines=None) -> None:
    _add(ComponentSpec(name, "additive", tuple(params), evaluate=evaluate, lines=lines,
                       description=description))


def _norm(default: float = 1.0) -> ParamSpec:
    return ParamSpec("norm", default, "", 0.0, INF, soft=(0.0, 1e24), description="normalisation")


def _z(frozen: bool = True) -> ParamSpec:
    return ParamSpec("Redshift", 0.0, "", -0.999, 10.0, frozen=frozen, soft=(-0.999, 10.0))


# ----------------------------------------------------------------- power laws
def powerlaw(grid: Any, p: dict[str, Any]) -> Any:
    return p["norm"] * _pl_integral_edges(grid, p["PhoIndex"])


def zpowerlw(grid: Any, p: dict[str, Any]) -> Any:
    g = p["PhoIndex"]
    return p["norm"] * (1.0 + p["Redshift"]) ** (-g) * _pl_integral_edges(grid, g)


def _pl_integral_log(llo: Any, lhi: Any, gamma: Any) -> Any:
    """Integral of E^-gamma from e^llo to e^lhi (llo <= lhi), from the logarithms."""
    a = 1.0 - gamma
    d = lhi - llo
    v_lo = jnp.exp(a * llo)
    small = jnp.abs(a) < 1e-4
    a_safe = jnp.where(small, 1.0, a)
    ad = a * d
    taylor = v_lo * d * (1.0 + ad / 2.0 + ad * ad / 6.0 + ad * ad * ad / 24.0)
    return jnp.where(small, taylor, v_lo * jnp.expm1(a_safe * d) / a_safe)


def bknpower(grid: Any, p: dict[str, Any]) -> Any:
    eb, g1, g2 = p["BreakE"], p["PhoIndx1"], p["PhoIndx2"]
    # ln min(E, Eb) = min(ln E, ln Eb): the edges' logarithms are constants of the grid
    log_lo, log_hi = grid.at_edges(np.log if grid.concrete else jnp.log)
    leb = jnp.log(eb)
    below = _pl_integral_log(jnp.minimum(log_lo, leb), jnp.minimum(log_hi, leb), g1)
    above = _pl_integral_log(jnp.maximum(log_lo, leb), jnp.maximum(log_hi, leb), g2)
    return p["norm"] * (below + jnp.exp((g2 - g1) * leb) * above)


def cutoffpl(grid: Any, p: dict[str, Any]) -> Any:
    g, ec = p["PhoIndex"], p["HighECut"]
    nodes, _ = grid.nodes()
    # E^-g exp(-E/Ec) as one exponential per node
    return p["norm"] * grid.integrate(jnp.exp(-g * grid.log_nodes() - nodes * (1.0 / ec)))


def logpar(grid: Any, p: dict[str, Any]) -> Any:
    a, b, ep = p["alpha"], p["beta"], p["pivotE"]
    lx = (grid.log_nodes() - jnp.log(ep)) * (1.0 / math.log(10.0))  # log10(E / pivotE)
    return p["norm"] * grid.integrate(jnp.exp(-(a + b * lx) * lx * math.log(10.0)))


def grbm(grid: Any, p: dict[str, Any]) -> Any:
    a, b, t = p["alpha"], p["beta"], p["tem"]
    eb = (a - b) * t
    nodes, _ = grid.nodes()
    l100 = grid.log_nodes() - math.log(100.0)  # ln(E / 100 keV)
    low = jnp.exp(a * l100 - nodes * (1.0 / t))
    high = jnp.exp((a - b) * (jnp.log(eb) - math.log(100.0)) + (b - a) + b * l100)
    return p["norm"] * grid.integrate(jnp.where(nodes < eb, low, high))


def constadd(grid: Any, p: dict[str, Any]) -> Any:
    return p["norm"] * jnp.asarray(grid.width)


# ----------------------------------------------------------------- blackbodies
@jax.custom_jvp
def _expm1(x: Any) -> Any:
    """e^x - 1 for x >= 0: exp(x) - 1 from x = 0.01 up (relative error < 3e-14 there),
    a Taylor polynomial below (error < 3e-16); derivative e^x = value + 1. XLA's
    float64 expm1 costs 1.6x exp on CPU."""
    big = x >= 0.01
    t = jnp.where(big, 0.0, x)
    taylor = t * (1.0 + t * 0.5 * (1.0 + t * (1.0 / 3.0) * (1.0 + t * 0.25 * (
        1.0 + t * 0.2 * (1.0 + t * (1.0 / 6.0))))))  # products: XLA keeps x / c a division
    return jnp.where(big, jnp.exp(jnp.where(big, x, 0.0)) - 1.0, taylor)


@_expm1.defjvp
def _expm1_jvp(primals: Any, tangents: Any) -> Any:
    y = _expm1(primals[0])
    return y, (y + 1.0) * tangents[0]


def _planck(e: Any, kt: Any) -> Any:
    return e * e / _expm1(e * (1.0 / kt))


def bbody(grid: Any, p: dict[str, Any]) -> Any:
    kt = p["kT"]
    return p["norm"] * 8.0525 / kt**4 * grid.integrate(lambda e: _planck(e, kt))


def bbodyrad(grid: Any, p: dict[str, Any]) -> Any:
    kt = p["kT"]
    return p["norm"] * 1.0344e-3 * grid.integrate(lambda e: _planck(e, kt))


def zbbody(grid: Any, p: dict[str, Any]) -> Any:
    kt, zf = p["kT"], 1.0 + p["Redshift"]
    return p["norm"] * 8.0525 / (zf * kt**4) * grid.integrate(lambda e: _planck(e * zf, kt))


# Bose integral I(a) = int_a^inf y^(5/3) / (e^y - 1) dy, for diskbb
_S = 8.0 / 3.0
_GZ = math.gamma(_S) * float(zeta(_S))  # Gamma(8/3) zeta(8/3)


def _bernoulli_over_factorial(n: int) -> np.ndarray:
    # coefficients c_n of x / (e^x - 1) = sum c_n x^n (recursion on Bernoulli numbers)
    c = np.zeros(n + 1)
    c[0] = 1.0
    for k in range(1, n + 1):
        c[k] = -sum(c[j] / math.factorial(k + 1 - j) for j in range(k))
    return c


_BC = _bernoulli_over_factorial(40)
_P = 5.0 / 3.0
_LAG_X, _LAG_W = np.polynomial.laguerre.laggauss(24)


def _bose_integral(a: Any, xp: Any = jnp) -> Any:
    """I(a) for a > 0 in float64 (``xp``: numpy for the table below, or jax.numpy)."""
    small = a <= 2.0
    a_s = xp.where(small, a, 1.0)
    j = xp.zeros_like(a_s)
    for n, c in enumerate(_BC):
        if c != 0.0:
            j = j + c * a_s ** (n + 5.0 / 3.0) / (n + 5.0 / 3.0)
    i_small = _GZ - j
    # a > 2: Gauss-Laguerre in t = y - a (24 nodes, relative error < 1e-13)
    a_l = xp.where(small, 3.0, a)
    y = a_l[..., None] + _LAG_X
    i_large = xp.exp(-a_l) * xp.sum(_LAG_W * y ** _P / (-xp.expm1(-y)), axis=-1)
    return xp.where(small, i_small, i_large)


# diskbb's shape as a table: g(t) = ln(a^(-2/3) I(a)) at t = ln a on a uniform grid, with
# its exact derivative g'(t) = -2/3 - a^(8/3) / ((e^a - 1) I(a)), interpolated by cubic
# Hermite segments (error ~ h^4 max|g^(4)| / 384: below 2e-9 relative up to a = 740, far
# less at the a = E/Tin of real fits). Evaluating I(a) itself at each quadrature node
# took 40 powers and 24 exponentials: a ULX-4 value and gradient of
# tbabs*(powerlaw + diskbb) cost 2.4 ms; with the table it costs what bbodyrad does.
_T0, _T1, _DT = -16.0, 6.6, 0.005


@functools.cache
def _diskbb_table() -> tuple[np.ndarray, float]:
    """Segment cubics of g(t) (rows: c0..c3) and the slope beyond the top (built once)."""
    t = np.linspace(_T0, _T1, int(round((_T1 - _T0) / _DT)) + 1)
    a = np.exp(t)
    i_a = _bose_integral(a, np)
    g = -2.0 / 3.0 * t + np.log(i_a)
    with np.errstate(over="ignore"):  # expm1 overflows far in the Wien tail: slope -a
        dg = -2.0 / 3.0 - a ** (8.0 / 3.0) / (np.expm1(a) * i_a)
    m = dg * _DT  # slopes per grid step
    g0, g1, m0, m1 = g[:-1], g[1:], m[:-1], m[1:]
    # each segment's cubic in u = (t - t_k) / h: c0 + u (c1 + u (c2 + u c3))
    coef = np.stack([g0, m0, 3 * (g1 - g0) - 2 * m0 - m1, 2 * (g0 - g1) + m0 + m1], -1)
    return coef, m[-1] / _DT


def _diskbb_shape(a: Any) -> Any:
    """a^(-2/3) I(a) for a = E/Tin > 0, from the Hermite table."""
    coef, top_slope = _diskbb_table()
    t = jnp.log(a)
    x = (jnp.clip(t, _T0, _T1) - _T0) / _DT
    k = jnp.clip(jnp.floor(x), 0, coef.shape[0] - 1).astype(jnp.int32)
    u = x - k
    c = jnp.asarray(coef)[k]  # one gather of the segment's four coefficients
    g = c[..., 0] + u * (c[..., 1] + u * (c[..., 2] + u * c[..., 3]))
    # beyond the table's top the flux is below 1e-300: continue along the last slope;
    # below its bottom (a < 1e-7) I(a) = Gamma(8/3) zeta(8/3) (1 + O(a^(5/3))): slope -2/3
    g = g + jnp.maximum(t - _T1, 0.0) * top_slope + jnp.minimum(t - _T0, 0.0) * (-2.0 / 3.0)
    return jnp.exp(g)


def diskbb(grid: Any, p: dict[str, Any]) -> Any:
    tin = p["Tin"]
    inv = 1.0 / tin
    # E^2 a^(-8/3) I(a) = Tin^2 a^(-2/3) I(a), a = E / Tin
    return (p["norm"] * 1.0344e-3 * (8.0 / 3.0) * tin * tin
            * grid.integrate(lambda e: _diskbb_shape(e * inv)))


# bremsstrahlung
# I0(x) = sum_k (x^2/4)^k / (k!)^2, to 1e-14 for x <= 2 with 11 terms
_I0_SERIES = [1.0 / math.factorial(k) ** 2 for k in range(11)]


def _k0_scaled(x: Any) -> Any:
    """e^x K0(x), K0 the modified Bessel function (Abramowitz & Stegun 9.8.5-6,
    |err| < 2e-7 relative to K0). Scaled so that the large-x branch needs no
    exponential; I0 of the small-x branch from its power series (jax's i0 costs a
    pair of Chebyshev series and an exponential per call)."""
    small = x <= 2.0
    xs = jnp.where(small, x, 1.0)
    t = (xs / 2.0) ** 2
    i0 = _I0_SERIES[-1]
    for c in _I0_SERIES[-2::-1]:
        i0 = i0 * t + c
    poly_s = -0.57721566 + t * (0.42278420 + t * (0.23069756 + t * (0.03488590 + t * (
        0.00262698 + t * (0.00010750 + t * 0.00000740)))))
    k_small = (-jnp.log(xs / 2.0) * i0 + poly_s) * jnp.exp(xs)
    xl = jnp.where(small, 3.0, x)
    u = 2.0 / xl
    poly_l = 1.25331414 + u * (-0.07832358 + u * (0.02189568 + u * (-0.01062446 + u * (
        0.00587872 + u * (-0.00251540 + u * 0.00053208)))))
    k_large = poly_l / jnp.sqrt(xl)
    return jnp.where(small, k_small, k_large)


def _k0(x: Any) -> Any:
    """Modified Bessel function K0 (Abramowitz & Stegun 9.8.5-6, |err| < 2e-7)."""
    return _k0_scaled(x) * jnp.exp(-x)


def gaunt_born(u: Any) -> Any:
    """Thermally averaged Born-approximation Gaunt factor, u = E/kT."""
    return math.sqrt(3.0) / math.pi * _k0_scaled(u / 2.0)


def bremss(grid: Any, p: dict[str, Any]) -> Any:
    kt = p["kT"]
    inv = 1.0 / kt

    def f(e: Any) -> Any:
        u = e * inv
        return gaunt_born(u) * jnp.exp(-u) / e

    return p["norm"] / jnp.sqrt(kt) * grid.integrate(f)


# ---------------------------------------------------------------------- lines
def _gauss_lines(grid: Any, p: dict[str, Any]) -> Lines:
    return Lines(jnp.atleast_1d(p["norm"]), jnp.atleast_1d(p["LineE"]),
                 jnp.atleast_1d(p["Sigma"]))


def _zgauss_lines(grid: Any, p: dict[str, Any]) -> Lines:
    zf = 1.0 + p["Redshift"]
    return Lines(jnp.atleast_1d(p["norm"] / zf), jnp.atleast_1d(p["LineE"] / zf),
                 jnp.atleast_1d(p["Sigma"] / zf))


def gaussian(grid: Any, p: dict[str, Any]) -> Any:
    return line_flux(grid, *_gauss_lines(grid, p))


def zgauss(grid: Any, p: dict[str, Any]) -> Any:
    return line_flux(grid, *_zgauss_lines(grid, p))


def lorentz(grid: Any, p: dict[str, Any]) -> Any:
    e0, w = p["LineE"], p["Width"]
    frac = 0.5 + jnp.arctan(2.0 * e0 / w) / math.pi
    lo, hi = grid.at_edges(lambda e: jnp.arctan(2.0 * (e - e0) / w))
    return p["norm"] * (hi - lo) / (math.pi * frac)


# -------------------------------------------------------------- registration
_PHO = ParamSpec("PhoIndex", 1.0, "", -INF, INF, soft=(-2.0, 9.0), description="photon index")
_KT = ParamSpec("kT", 3.0, "keV", 0.0, INF, soft=(1e-4, 200.0), description="temperature")
_LINE_E = ParamSpec("LineE", 6.5, "keV", 0.0, INF, soft=(0.0, 1e6), description="line energy")
_SIGMA = ParamSpec("Sigma", 0.1, "keV", 0.0, INF, soft=(0.0, 10.0), description="line width")

_spec("powerlaw", [_PHO, _norm()], powerlaw, "power law")
_spec("zpowerlw", [_PHO, _z(), _norm()], zpowerlw, "redshifted power law")
_spec("bknpower", [
    ParamSpec("PhoIndx1", 1.0, "", -INF, INF, soft=(-2.0, 9.0)),
    ParamSpec("BreakE", 5.0, "keV", 0.0, INF, soft=(1e-2, 1e6)),
    ParamSpec("PhoIndx2", 2.0, "", -INF, INF, soft=(-2.0, 9.0)),
    _norm()], bknpower, "broken power law")
_spec("cutoffpl", [_PHO, ParamSpec("HighECut", 15.0, "keV", 0.0, INF, soft=(1e-2, 500.0)),
                   _norm()], cutoffpl, "power law with high-energy exponential cutoff")
_spec("bbody", [_KT, _norm()], bbody, "blackbody, norm = L39/D10^2")
_spec("bbodyrad", [_KT, _norm()], bbodyrad, "blackbody, norm = R_km^2/D10^2")
_spec("zbbody", [_KT, _z(), _norm()], zbbody, "redshifted blackbody")
_spec("diskbb", [ParamSpec("Tin", 1.0, "keV", 0.0, INF, soft=(0.0, 1000.0)), _norm()], diskbb,
      "multi-colour disk blackbody, norm = (Rin_km/D10)^2 cos(i)")
_spec("bremss", [ParamSpec("kT", 7.0, "keV", 0.0, INF, soft=(1e-4, 200.0)), _norm()], bremss,
      "thermal bremsstrahlung (Born Gaunt factor)")
_spec("gaussian", [_LINE_E, _SIGMA, _norm()], gaussian, "Gaussian line", lines=_gauss_lines)
_spec("zgauss", [_LINE_E, _SIGMA, _z(), _norm()], zgauss, "redshifted Gaussian line",
      lines=_zgauss_lines)
_spec("lorentz", [_LINE_E, ParamSpec("Width", 0.1, "keV", 0.0, INF, soft=(0.0, 10.0),
                                     description="FWHM"), _norm()],
      lorentz, "Lorentzian line")
_spec("logpar", [
    ParamSpec("alpha", 1.5, "", -INF, INF, soft=(0.0, 4.0)),
    ParamSpec("beta", 0.2, "", -INF, INF, soft=(-4.0, 4.0)),
    ParamSpec("pivotE", 1.0, "keV", 0.0, INF, frozen=True),
    _norm()], logpar, "log-parabolic power law")
_spec("grbm", [
    ParamSpec("alpha", -1.0, "", -INF, INF, soft=(-3.0, 2.0)),
    ParamSpec("beta", -2.0, "", -INF, INF, soft=(-5.0, 2.0)),
    ParamSpec("tem", 300.0, "keV", 0.0, INF, soft=(50.0, 1000.0)),
    _norm()], grbm, "gamma-ray burst Band function")
_spec("constadd", [_norm()], constadd, "flat additive constant (photons/cm^2/s/keV)")
