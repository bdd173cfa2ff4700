"""Rank-normalised split R-hat and bulk/tail ESS (Vehtari et al. 2021), numpy only.

The same estimators as ``arviz.rhat`` / ``arviz.ess`` (method "rank", "bulk",
"tail"), without importing arviz (seconds) for a printed summary.

>>> rng = np.random.default_rng(0)
>>> x = rng.normal(size=(4, 500))
>>> abs(rhat(x) - 1) < 0.01 and ess_bulk(x) > 1500
True
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtri

__all__ = ["rhat", "ess_bulk", "ess_tail", "psis"]


def _split(x: np.ndarray) -> np.ndarray:
    c, n = x.shape
    half = n // 2
    return np.concatenate([x[:, :half], x[:, n - half:]], axis=0)


def _ranks(x: np.ndarray) -> np.ndarray:
    """Average ranks (1-based) of all values, ties averaged."""
    flat = x.reshape(-1)
    order = np.argsort(flat, kind="mergesort")
    ranks = np.empty(flat.size)
    ranks[order] = np.arange(1, flat.size + 1)
    vals = flat[order]
    edges = np.flatnonzero(np.diff(vals)) + 1
    if edges.size < flat.size - 1:  # ties present
        starts = np.concatenate([[0], edges])
        ends = np.concatenate([edges, [flat.size]])
        avg = 0.5 * (starts + 1 + ends)
        ranks[order] = np.repeat(avg, ends - starts)
    return ranks.reshape(x.shape)


def _z_scale(x: np.ndarray) -> np.ndarray:
    return ndtri((_ranks(x) - 0.375) / (x.size + 0.25))


def _rhat_raw(x: np.ndarray) -> float:
    c, n = x.shape
    if n < 2 or c < 2:
        return float("nan")
    between = n * np.var(x.mean(axis=1), ddof=1)
    within = np.mean(np.var(x, axis=1, ddof=1))
    if within == 0:
        return float("nan")
    return float(np.sqrt((between / within + n - 1) / n))


def rhat(x: np.ndarray) -> float:
    """Rank-normalised split R-hat of draws ``x[chain, draw]`` (max of bulk and tail)."""
    x = np.asarray(x, dtype=np.float64)
    if x.shape[1] < 4 or not np.all(np.isfinite(x)):
        return float("nan")
    s = _split(x)
    bulk = _rhat_raw(_z_scale(s))
    tail = _rhat_raw(_z_scale(np.abs(s - np.median(s))))
    return float(max(bulk, tail))


def _autocov(x: np.ndarray) -> np.ndarray:
    c, n = x.shape
    m = 1 << int(np.ceil(np.log2(2 * n)))
    f = np.fft.rfft(x - x.mean(axis=1, keepdims=True), n=m, axis=1)
    return np.fft.irfft(f * np.conj(f), n=m, axis=1)[:, :n] / n


def _ess(x: np.ndarray) -> float:
    c, n = x.shape
    if n < 4 or np.ptp(x) == 0:
        return float("nan")
    acov = _autocov(x)
    mean_var = np.mean(acov[:, 0]) * n / (n - 1.0)
    var_plus = mean_var * (n - 1.0) / n
    if c > 1:
        var_plus += np.var(x.mean(axis=1), ddof=1)
    rho = np.zeros(n)
    rho[0] = 1.0
    even, odd = 1.0, 1.0 - (mean_var - np.mean(acov[:, 1])) / var_plus
    rho[1] = odd
    t = 1
    while t < n - 3 and even + odd > 0.0:
        even = 1.0 - (mean_var - np.mean(acov[:, t + 1])) / var_plus
        odd = 1.0 - (mean_var - np.mean(acov[:, t + 2])) / var_plus
        if even + odd >= 0.0:
            rho[t + 1], rho[t + 2] = even, odd
        t += 2
    max_t = t - 2
    if even > 0.0:
        rho[max_t + 1] = even
    t = 1
    while t <= max_t - 2:  # Geyer's initial monotone sequence
        if rho[t + 1] + rho[t + 2] > rho[t - 1] + rho[t]:
            rho[t + 1] = rho[t + 2] = 0.5 * (rho[t - 1] + rho[t])
        t += 2
    total = c * n
    tau = -1.0 + 2.0 * np.sum(rho[:max_t + 1]) + np.sum(rho[max_t + 1:max_t + 2])
    tau = max(tau, 1.0 / np.log10(total))
    return float(total / tau)


def ess_bulk(x: np.ndarray) -> float:
    """Bulk effective sample size of ``x[chain, draw]``."""
    x = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(x)):
        return float("nan")
    return _ess(_z_scale(_split(x)))


def ess_tail(x: np.ndarray) -> float:
    """Tail ESS: the smaller ESS of the 5% and 95% quantile indicators."""
    x = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(x)):
        return float("nan")
    q05, q95 = np.quantile(x, [0.05, 0.95])
    s = _split(x)
    return float(min(_ess((s <= q05).astype(float)), _ess((s <= q95).astype(float))))


# ------------------------------------------------------------------ importance weights
def _gpd_fit(x: np.ndarray, prior: float = 3.0, prior_k: float = 10.0) -> tuple[float, float]:
    """Shape k and scale sigma of a generalised Pareto fitted to exceedances ``x > 0``
    (sorted ascending): the empirical-Bayes estimator of Zhang & Stephens (2009), with
    k shrunk towards 0.5 by ``prior_k`` pseudo-observations as in Vehtari et al. (2024)."""
    n = x.size
    m = 30 + int(np.sqrt(n))
    b = 1.0 - np.sqrt(m / (np.arange(1, m + 1) - 0.5))
    b = b / (prior * x[int(n / 4 + 0.5) - 1]) + 1.0 / x[-1]
    k = np.mean(np.log1p(-b[:, None] * x[None, :]), axis=1)
    log_lik = n * (np.log(-b / k) - k - 1.0)
    w = 1.0 / np.sum(np.exp(log_lik[None, :] - log_lik[:, None]), axis=1)
    b_post = float(np.sum(b * w) / np.sum(w))
    k_post = float(np.mean(np.log1p(-b_post * x)))
    sigma = -k_post / b_post
    k_post = (n * k_post + prior_k * 0.5) / (n + prior_k)
    return k_post, sigma


def psis(log_weights: np.ndarray) -> tuple[np.ndarray, float]:
    """Pareto-smoothed importance sampling (Vehtari et al. 2024).

    The largest ``M = min(S / 5, 3 sqrt(S))`` raw weights are replaced by the expected
    order statistics of a generalised Pareto fitted to them. Returns the normalised log
    weights and the fitted shape k-hat: below 0.7 the weighted draws are reliable.
    """
    lw = np.asarray(log_weights, dtype=np.float64) - np.max(log_weights)
    s = lw.size
    m = int(np.ceil(min(0.2 * s, 3.0 * np.sqrt(s))))
    k_hat = np.inf
    order = np.argsort(lw)
    if m >= 5 and s > m + 1:
        tail = order[-m:]
        cutoff = lw[order[-m - 1]]
        x = np.exp(lw[tail]) - np.exp(cutoff)
        if np.all(np.isfinite(x)) and x[-1] > 0 and x[0] >= 0:
            x = np.maximum(x, 1e-300)
            k_hat, sigma = _gpd_fit(x)
            p = (np.arange(1, m + 1) - 0.5) / m
            if abs(k_hat) > 1e-12:
                q = sigma * np.expm1(-k_hat * np.log1p(-p)) / k_hat
            else:
                q = -sigma * np.log1p(-p)
            lw = lw.copy()
            lw[tail] = np.minimum(np.log(q + np.exp(cutoff)), 0.0)
    lw = lw - np.log(np.sum(np.exp(lw)))
    return lw, float(k_hat)
