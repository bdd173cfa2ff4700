"""Multiplicative components: dimensionless factors averaged over each bin.

Each factor M(E) is averaged over the bin with the grid's Gauss-Legendre nodes
(not taken at the bin centre). Definitions (XSPEC manual):

- tbabs / phabs / wabs: exp(-nH SIGMA(E)), SIGMA from the packaged tables
  (tbabs: Wilms et al. 2000 abundances; phabs and wabs: Anders & Grevesse 1989);
  ztbabs / zphabs / zwabs use SIGMA(E (1+z)). See :mod:`.tables` for the
  interpolation and the behaviour outside 0.1-20 keV. On a concrete grid the bin
  average uses a 3-node rule in cross-section space that resolves absorption
  edges inside a bin (:func:`sigma_rule`), and bins holding a resonance or an edge
  too sharp for it are integrated piece by piece between the table's energies
  (:func:`absorption_rule`); on a traced grid, Gauss-Legendre nodes.
- constant: factor
- expabs: exp(-LowECut / E)
- highecut: 1 below cutoffE, exp((cutoffE - E) / foldE) above
- gabs: exp(-(Strength / (sqrt(2 pi) Sigma)) exp(-(E - LineE)^2 / (2 Sigma^2)))
- zedge: 1 below the observed edge edgeE/(1+z), exp(-MaxTau (E(1+z)/edgeE)^-3) above
- cabs: exp(-nH 1e22 sigma_KN(E)), sigma_KN the Klein-Nishina total cross section
  (Thomson at low energy); no energy redistribution (scattering out of the beam)

Example:
    >>> import numpy as np
    >>> from jxspec_nb.model.components._quadrature import Grid
    >>> from jxspec_nb.model import get_component
    >>> g = Grid(np.array([1.0]), np.array([1.001]))
    >>> round(float(get_component("tbabs").evaluate(g, {"nH": 1.0})[0]), 3)
    0.176
"""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

import numpy as np

from ..._jax import jax, jnp
from ..registry import ComponentSpec, ParamSpec, _add
from ._quadrature import row_sum
from .tables import cross_section

INF = math.inf
_SIGMA_T = 0.66524587  # Thomson cross section in 1e-24 cm^2 -> x nH(1e22) = 0.0066524587 nH
_ME_KEV = 510.99895
_TRACED_ORDER = 8


@functools.lru_cache(maxsize=64)
def _leggauss(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes and weights on [-1, 1] (memoised: the rough-bin rule asks
    for the same few orders hundreds of times)."""
    return np.polynomial.legendre.leggauss(n)


def _gauss_rule(x: np.ndarray, q: int) -> tuple[np.ndarray, np.ndarray]:
    """q-node Gauss rule of the equal-weight discrete measures in the rows of ``x``."""
    mean = x.mean(axis=1, keepdims=True)
    sd = x.std(axis=1, keepdims=True)
    flat = sd[:, 0] <= 1e-12 * np.abs(mean[:, 0])
    y = (x - mean) / np.where(sd > 0, sd, 1.0)
    w = np.full(x.shape, 1.0 / x.shape[1])
    alpha = np.zeros((x.shape[0], q))
    beta = np.zeros((x.shape[0], q))
    p_prev, p = np.zeros_like(y), np.ones_like(y)
    norm_prev = np.ones(x.shape[0])
    for k in range(q):  # Stieltjes procedure
        norm = np.sum(w * p * p, axis=1)
        alpha[:, k] = np.sum(w * y * p * p, axis=1) / np.maximum(norm, 1e-300)
        if k:
            beta[:, k] = norm / np.maximum(norm_prev, 1e-300)
        p_prev, p = p, (y - alpha[:, k:k + 1]) * p - beta[:, k:k + 1] * p_prev
        norm_prev = norm
    jac = np.zeros((x.shape[0], q, q))
    idx = np.arange(q)
    jac[:, idx, idx] = alpha
    off = np.sqrt(np.maximum(beta[:, 1:], 0.0))
    jac[:, idx[:-1], idx[1:]] = off
    jac[:, idx[1:], idx[:-1]] = off
    vals, vecs = np.linalg.eigh(jac)
    nodes = mean + sd * vals
    weights = vecs[:, 0, :] ** 2
    nodes[flat] = mean[flat]
    weights[flat] = 1.0 / q
    return nodes.T, weights.T


def sigma_rule(
    sigma_of: Any, e_lo: np.ndarray, e_hi: np.ndarray, q: int = 3
) -> tuple[np.ndarray, np.ndarray]:
    """A q-node rule in cross-section space for the bin averages of exp(-nH sigma(E)).

    For each bin, the distribution of sigma(E) over the bin (sampled finely from
    the table, so absorption edges and resonances inside the bin are resolved) is
    replaced by its q-node Gauss rule (matching 2q moments): the bin average is
    ``sum_j w_j exp(-nH sigma_j)``, q exponentials per bin, exact when the bin
    straddles a jump between flat levels and accurate to O((nH dsigma)^(2q))
    otherwise.

    Returns:
        ``(sigma_nodes, weights)``, each of shape (q, m).
    """
    rel = (e_hi - e_lo) / (0.5 * (e_hi + e_lo))
    n = int(np.clip(64 * np.ceil(np.max(rel, initial=0.0) / 5e-4), 64, 1024))
    t = (np.arange(n) + 0.5) / n
    out_s = np.empty((q, e_lo.size))
    out_w = np.empty((q, e_lo.size))
    step = max(1, 2_000_000 // n)
    for start in range(0, e_lo.size, step):
        lo, hi = e_lo[start:start + step], e_hi[start:start + step]
        sig = sigma_of(lo[:, None] + (hi - lo)[:, None] * t[None, :])
        out_s[:, start:start + step], out_w[:, start:start + step] = _gauss_rule(sig, q)
    return out_s, out_w


# Bins where the q-node rule in cross-section space is not enough (a resonance or an
# edge inside the bin): checked for these columns (1e22 cm^-2) to this relative error
_ROUGH_NH = (0.1, 1.0, 10.0)
_ROUGH_TOL = 1e-7
_ROUGH_SAMPLES = 4096


class RoughBins(NamedTuple):
    """Bins integrated piece by piece between the table's energies (see absorption_rule).

    The nodes of all rough bins are one flat array (a sorted segment sum gathers them
    by bin: measured faster under jax.grad than a padded (bins, nodes) array).
    """

    index: np.ndarray  # (r,) bins
    segment: np.ndarray  # (n,) position in ``index`` of each node, sorted
    sigma: np.ndarray  # (n,) cross sections at the nodes
    weight: np.ndarray  # (n,) weights (sum to 1 per bin)


def _rough_candidates(sigma_of: Any, e_lo: np.ndarray, e_hi: np.ndarray,
                      table_e: np.ndarray) -> np.ndarray:
    """Bins whose cross section spans enough, over the table's energies inside them and
    the bin edges, for the largest checked column to matter (cheap pre-filter)."""
    s_lo, s_hi = sigma_of(e_lo), sigma_of(e_hi)
    smin, smax = np.minimum(s_lo, s_hi), np.maximum(s_lo, s_hi)
    first = np.searchsorted(table_e, e_lo, side="right")
    last = np.searchsorted(table_e, e_hi, side="left")
    s_tab = sigma_of(table_e)
    has = last > first
    for i in np.flatnonzero(has):
        seg = s_tab[first[i]:last[i]]
        smin[i] = min(smin[i], seg.min())
        smax[i] = max(smax[i], seg.max())
    return np.flatnonzero(max(_ROUGH_NH) * (smax - smin) > 1e-3)


def absorption_rule(model: str, e_lo: np.ndarray, e_hi: np.ndarray,
                    q: int = 3) -> tuple[np.ndarray, np.ndarray, RoughBins | None]:
    """Bin averages of exp(-nH SIGMA(E)) on a fixed grid: the q-node rule of
    :func:`sigma_rule` for every bin, and a piecewise rule for the "rough" bins.

    A rough bin is one where the q-node rule misses the bin average of its own
    cross sections (4096 samples) by more than 1e-7 at nH = 0.1, 1 or 10: bins holding
    a resonance (O I at 0.527 keV) or an edge, where the distribution of SIGMA over
    the bin has a far tail (the 3-node rule was off by 85 % at nH = 1 at 0.527 keV).
    There the bin is split at the table's energies (SIGMA is a power law between
    them) and each piece gets Gauss-Legendre nodes, 2 + 24 |Delta ln SIGMA| of them
    (at most 48): within 1e-8 of a 65536-point average for nH <= 1, 1e-5 at nH = 10.

    Returns:
        ``(sigma_nodes (q, m), weights (q, m), rough or None)``.
    """
    from .tables import absorption_table

    def sigma_of(e: np.ndarray) -> np.ndarray:
        return cross_section(model, e)

    sig, w = sigma_rule(sigma_of, e_lo, e_hi, q)
    table_e = np.exp(absorption_table(model)[0])
    t = (np.arange(_ROUGH_SAMPLES) + 0.5) / _ROUGH_SAMPLES
    cand = _rough_candidates(sigma_of, e_lo, e_hi, table_e)
    is_rough = np.zeros(cand.size, dtype=bool)
    for start in range(0, cand.size, 256):  # (candidates, samples) in blocks of 256 bins
        c = cand[start:start + 256]
        samples = sigma_of(e_lo[c, None] + (e_hi[c] - e_lo[c])[:, None] * t[None, :])
        for nh in _ROUGH_NH:
            exact = np.mean(np.exp(-nh * samples), axis=1)
            rule = np.sum(w[:, c] * np.exp(-nh * sig[:, c]), axis=0)
            ok = exact > 1e-30
            bad = np.abs(rule / np.where(ok, exact, 1.0) - 1.0) > _ROUGH_TOL
            is_rough[start:start + 256] |= ok & bad
    rough = [int(i) for i in cand[is_rough]]
    if not rough:
        return sig, w, None
    sigmas, weights = [], []
    for i in rough:
        lo, hi = e_lo[i], e_hi[i]
        inner = table_e[(table_e > lo) & (table_e < hi)]
        br = np.concatenate([[lo], inner, [hi]])
        dl = np.abs(np.diff(np.log(sigma_of(br))))
        nodes, w_bin = [], []
        for a, b, d in zip(br[:-1], br[1:], dl, strict=True):
            x, wx = _leggauss(int(np.clip(np.ceil(2 + 24 * d), 2, 48)))
            nodes.append(a + (b - a) * 0.5 * (x + 1.0))
            w_bin.append((b - a) * 0.5 * wx / (hi - lo))
        sigmas.append(sigma_of(np.concatenate(nodes)))
        weights.append(np.concatenate(w_bin))
    segment = np.repeat(np.arange(len(rough), dtype=np.int32), [s.size for s in sigmas])
    return sig, w, RoughBins(np.asarray(rough, dtype=np.int32), segment,
                             np.concatenate(sigmas), np.concatenate(weights))


def _absorber(model: str, *, redshift: bool):
    def evaluate(grid: Any, p: dict[str, Any]) -> Any:
        if grid.concrete and not redshift:
            sig, w, rough = grid.cached(
                ("absorption_rule", model),
                lambda: absorption_rule(model, grid.e_lo, grid.e_hi),
            )
            out = row_sum(w * jnp.exp(-p["nH"] * sig))
            if rough is not None:
                tr = jax.ops.segment_sum(rough.weight * jnp.exp(-p["nH"] * rough.sigma),
                                         rough.segment, num_segments=rough.index.size,
                                         indices_are_sorted=True)
                out = out.at[rough.index].set(tr, indices_are_sorted=True,
                                              unique_indices=True)
            return out
        # traced grid (or redshift): Gauss-Legendre nodes, more of them than for smooth
        # components because edges and resonances of the cross section fall inside bins
        x, w = np.polynomial.legendre.leggauss(_TRACED_ORDER)
        lo, hi = jnp.asarray(grid.e_lo), jnp.asarray(grid.e_hi)
        nodes = lo[None, :] + (hi - lo)[None, :] * (0.5 * (x + 1.0))[:, None]
        energy = nodes * (1.0 + p["Redshift"]) if redshift else nodes
        sigma = cross_section(model, energy, xp=jnp)
        return jnp.sum(0.5 * w[:, None] * jnp.exp(-p["nH"] * sigma), axis=0)

    return evaluate


def constant(grid: Any, p: dict[str, Any]) -> Any:
    return jnp.full(grid.size, 1.0) * p["factor"]


def expabs(grid: Any, p: dict[str, Any]) -> Any:
    return grid.average(lambda e: jnp.exp(-p["LowECut"] / e))


def highecut(grid: Any, p: dict[str, Any]) -> Any:
    ec, ef = p["cutoffE"], p["foldE"]
    return grid.average(lambda e: jnp.where(e < ec, 1.0, jnp.exp((ec - jnp.maximum(e, ec)) / ef)))


def gabs(grid: Any, p: dict[str, Any]) -> Any:
    e0, s, k = p["LineE"], p["Sigma"], p["Strength"]
    s_safe = jnp.where(s > 0, s, 1.0)

    def f(e: Any) -> Any:
        tau = k / (math.sqrt(2.0 * math.pi) * s_safe) * jnp.exp(-0.5 * ((e - e0) / s_safe) ** 2)
        return jnp.where(s > 0, jnp.exp(-tau), 1.0)

    return grid.average(f)


def zedge(grid: Any, p: dict[str, Any]) -> Any:
    ec, tau, zf = p["edgeE"], p["MaxTau"], 1.0 + p["Redshift"]

    def f(e: Any) -> Any:
        x = jnp.maximum(e * zf / ec, 1.0)
        return jnp.where(e * zf < ec, 1.0, jnp.exp(-tau * x ** (-3.0)))

    return grid.average(f)


def klein_nishina(energy: Any, xp: Any = jnp) -> Any:
    """Klein-Nishina total cross section divided by the Thomson one."""
    x = energy / _ME_KEV
    small = x < 1e-3
    xs = xp.where(small, 1.0, x)
    one = 1.0 + 2.0 * xs
    full = 0.75 * (
        (1.0 + xs) / xs**3 * (2.0 * xs * (1.0 + xs) / one - xp.log(one))
        + xp.log(one) / (2.0 * xs)
        - (1.0 + 3.0 * xs) / one**2
    )
    series = 1.0 - 2.0 * x + 5.2 * x * x - 13.3 * x**3
    return xp.where(small, series, full)


def cabs(grid: Any, p: dict[str, Any]) -> Any:
    if grid.concrete:
        kn = grid.cached("klein_nishina", lambda: klein_nishina(grid.node_energies(), np))
    else:
        kn = klein_nishina(grid.node_energies())
    return grid.average(jnp.exp(-p["nH"] * 0.01 * _SIGMA_T * kn))


def _spec(name: str, params: list[ParamSpec], evaluate, description: str) -> None:
    _add(ComponentSpec(name, "multiplicative", tuple(params), evaluate=evaluate,
                       description=description))


_NH = ParamSpec("nH", 1.0, "1e22 cm^-2", 0.0, INF, soft=(0.0, 1e5),
                description="equivalent hydrogen column")
_Z = ParamSpec("Redshift", 0.0, "", -0.999, 10.0, frozen=True)

_spec("tbabs", [_NH], _absorber("tbabs", redshift=False), "Tuebingen-Boulder ISM absorption")
_spec("ztbabs", [_NH, _Z], _absorber("tbabs", redshift=True), "redshifted tbabs")
_spec("phabs", [_NH], _absorber("phabs", redshift=False), "photo-electric absorption")
_spec("zphabs", [_NH, _Z], _absorber("phabs", redshift=True), "redshifted phabs")
_spec("wabs", [_NH], _absorber("wabs", redshift=False), "Morrison & McCammon absorption")
_spec("zwabs", [_NH, _Z], _absorber("wabs", redshift=True), "redshifted wabs")
_spec("constant", [ParamSpec("factor", 1.0, "", 0.0, INF, soft=(0.0, 1e10))], constant,
      "energy-independent factor")
_spec("expabs", [ParamSpec("LowECut", 2.0, "keV", 0.0, INF, soft=(0.0, 200.0))], expabs,
      "exponential roll-off at low energies")
_spec("highecut", [ParamSpec("cutoffE", 10.0, "keV", 0.0, INF, soft=(1e-4, 1e6)),
                   ParamSpec("foldE", 15.0, "keV", 0.0, INF, soft=(1e-4, 1e6))], highecut,
      "high-energy cutoff")
_spec("gabs", [ParamSpec("LineE", 1.0, "keV", 0.0, INF, soft=(0.0, 1e6)),
               ParamSpec("Sigma", 0.01, "keV", 0.0, INF, soft=(0.0, 10.0)),
               ParamSpec("Strength", 1.0, "keV", 0.0, INF, soft=(0.0, 1e6))], gabs,
      "Gaussian absorption line")
_spec("zedge", [ParamSpec("edgeE", 7.0, "keV", 0.0, INF, soft=(0.0, 100.0)),
                ParamSpec("MaxTau", 1.0, "", 0.0, INF, soft=(0.0, 10.0)), _Z], zedge,
      "redshifted absorption edge")
_spec("cabs", [_NH], cabs, "optically thin Compton scattering (Klein-Nishina)")
