"""Fit statistics as per-bin log-likelihoods, in pure JAX.

Every function returns ``(loglik_per_bin, deviance_per_bin, expected_counts)``:
the log-likelihood feeds the samplers (summed) and LOO/WAIC (per bin), the
deviance sums to the statistic XSPEC reports, and the expected counts are the
source-region prediction (source + background) used for posterior predictive draws.

* :func:`cstat` - Poisson; XSPEC's C-stat ``2 sum(m - d + d ln(d/m))``.
* :func:`wstat` - Poisson source and background with the background rate in each
  bin profiled out (XSPEC's W-stat, Cash 1979 / Wachter et al. 1979).
* :func:`poisson_background` - Poisson source and background with given background
  expectations (Bayesian per-bin background rates, or a background spectral model).
* :func:`chi2` - Gaussian with the data's variance or the model's (Pearson).

>>> import jax.numpy as jnp
>>> ll, dev, _ = cstat(jnp.array([3.0, 0.0]), jnp.array([2.0, 0.5]))
>>> round(float(dev.sum()), 6)  # 2 * [(2 - 3 + 3 ln 1.5) + 0.5]
2.432791
"""

from __future__ import annotations

from typing import Any

from .._jax import jnp, jsp

gammaln = jsp.gammaln
xlogy = jsp.xlogy

__all__ = ["cstat", "wstat", "poisson_background", "chi2", "profile_background"]

_TINY = 1e-300


def _pois(d: Any, m: Any, log_fact: Any = None) -> tuple[Any, Any]:
    """Poisson log-likelihood and deviance 2(m - d + d ln(d/m)) per bin.

    ``log_fact``: ln(d!) when known in advance (it does not depend on the model;
    the compiled likelihoods get it precomputed with the data).
    """
    m = jnp.maximum(m, _TINY)
    if log_fact is None:
        log_fact = gammaln(d + 1.0)
    ll = xlogy(d, m) - m - log_fact
    dev = 2.0 * (m - d + xlogy(d, d) - xlogy(d, m))
    return ll, dev


def cstat(counts: Any, model_counts: Any, log_fact: Any = None) -> tuple[Any, Any, Any]:
    """Poisson likelihood of ``counts`` given expected ``model_counts``
    (``log_fact``: ln(counts!) if precomputed)."""
    ll, dev = _pois(counts, model_counts, log_fact)
    return ll, dev, model_counts


def profile_background(src: Any, bkg: Any, mu: Any, ratio: Any) -> Any:
    """Background expectation (in the background spectrum) that maximises the likelihood.

    Solves d/db [Pois(S | mu + a b) + Pois(B | b)] = 0, i.e.
    ``a (a + 1) b^2 + ((a + 1) mu - a (S + B)) b - B mu = 0`` for its root
    ``b >= 0`` (``a`` = ``ratio``), written to avoid cancellation.
    """
    a = ratio
    c = (a + 1.0) * mu - a * (src + bkg)
    q = 4.0 * a * (a + 1.0) * bkg * mu
    root = jnp.sqrt(jnp.maximum(c * c + q, _TINY))
    # each branch's denominator is kept away from zero where the other branch is taken:
    # where() passes the unused branch's gradient on multiplied by zero, and a 0 / 0
    # there (an empty background bin under a model far below the data) made the
    # whole gradient NaN
    pos = 2.0 * bkg * mu / jnp.where(c > 0, c + root, 1.0)
    neg = (root - c) / (2.0 * a * (a + 1.0))
    return jnp.where(c > 0, pos, neg)


def wstat(counts: Any, background: Any, model_counts: Any, ratio: Any,
          log_fact: Any = None, log_fact_bkg: Any = None) -> tuple[Any, Any, Any]:
    """W-stat: Poisson source + background, background profiled out in each bin.

    Args:
        counts: source counts S.
        background: background counts B (background spectrum).
        model_counts: expected source counts mu.
        ratio: expected background counts in the source spectrum per background
            count (BACKSCAL x AREASCAL x EXPOSURE ratio).
    """
    b = profile_background(counts, background, model_counts, ratio)
    return poisson_background(counts, background, model_counts, ratio * b, b,
                              log_fact, log_fact_bkg)


def poisson_background(counts: Any, background: Any, model_counts: Any,
                       bkg_in_source: Any, bkg_expected: Any, log_fact: Any = None,
                       log_fact_bkg: Any = None) -> tuple[Any, Any, Any]:
    """Poisson source (mu + background) and background spectrum with given expectations."""
    total = model_counts + bkg_in_source
    ll_s, dev_s = _pois(counts, total, log_fact)
    ll_b, dev_b = _pois(background, bkg_expected, log_fact_bkg)
    return ll_s + ll_b, dev_s + dev_b, total


def chi2(data: Any, model_counts: Any, variance: Any | None, *,
         extra_variance: Any = 0.0) -> tuple[Any, Any, Any]:
    """Gaussian likelihood; ``variance=None`` uses the model's (Pearson chi^2).

    Args:
        data: counts (net of background when subtracted).
        model_counts: expected counts.
        variance: data variance per bin (``STAT_ERR**2`` or ``max(counts, 1)``),
            or None for the model variance.
        extra_variance: added variance (subtracted background).
    """
    var = (jnp.maximum(model_counts, 1e-10) if variance is None else variance) + extra_variance
    dev = (data - model_counts) ** 2 / var
    ll = -0.5 * (dev + jnp.log(2.0 * jnp.pi * var))
    return ll, dev, model_counts
