"""Plots of a :class:`~jxspec_nb.results.FitResult` (matplotlib, imported lazily).

Each function returns a ``matplotlib.figure.Figure``. Figures are closed in
pyplot's registry before being returned, so a notebook shows each exactly once
(as the cell's value) and a script can ``fig.savefig(...)`` them::

    >>> from jxspec_nb.results.plots import plot_corner, plot_ppc
    >>> fig = plot_corner(result)                   # doctest: +SKIP
    >>> fig = plot_ppc(result, rebin=3, yscale="log")  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from ..errors import FitError

__all__ = ["plot_corner", "plot_ppc", "plot_trace", "plot_elbo", "ppc_data", "rebin_groups"]

_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2")


def _new_figure(**kwargs: Any) -> Any:
    import matplotlib.pyplot as plt

    fig = plt.figure(**kwargs)
    plt.close(fig)  # displayed once, as the returned value
    return fig


def _posterior(result: Any) -> dict[str, np.ndarray]:
    """``{name: (chain, draw) array}``, from the raw draws when the result has them."""
    draws = getattr(result, "draws", None)
    if draws is not None and isinstance(getattr(draws, "posterior", None), Mapping):
        return {k: np.asarray(v) for k, v in draws.posterior.items()}
    return {k: np.asarray(v.values) for k, v in result.idata.posterior.data_vars.items()}


def _free_names(result: Any, samples: Mapping[str, Any]) -> list[str]:
    """The free parameters in the model's order (tied ones are left out)."""
    free = getattr(getattr(result, "spec", None), "free_names", None)
    if free:
        return [n for n in free if n in samples]
    return list(samples)


def _log_scaled(result: Any) -> set[str]:
    """Parameters with a log-uniform prior: shown as log10 in the corner plot."""
    defs = getattr(getattr(result, "spec", None), "prior_defs", {}) or {}
    return {k for k, v in defs.items() if getattr(v, "kind", "") == "LogUniform"}


def plot_corner(
    result: Any,
    *,
    params: Sequence[str] | None = None,
    log_scale: bool = True,
    truths: dict[str, float] | None = None,
    **corner_kwargs: Any,
) -> Any:
    """Corner plot of the posterior (the ``corner`` package).

    Args:
        result: the fit result.
        params: which parameters (default: all free ones).
        log_scale: show parameters with a log-uniform prior as ``log10``.
        truths: values to mark, e.g. the simulated ones.
        **corner_kwargs: passed to :func:`corner.corner`.

    Returns:
        The figure.

    Example:
        >>> fig = plot_corner(result, params=["powerlaw.PhoIndex", "tbabs.nH"])  # doctest: +SKIP
    """
    import corner

    samples = result.samples()
    names = list(params) if params is not None else _free_names(result, samples)
    missing = [n for n in names if n not in samples]
    if missing:
        raise FitError(f"no samples for {missing}; parameters are: {', '.join(samples)}")
    if len(names) == 0:
        raise FitError("the result has no sampled parameter to plot")
    logs = _log_scaled(result) if log_scale else set()
    columns, labels, marks = [], [], []
    for name in names:
        x = np.asarray(samples[name], dtype=float).ravel()
        mark = None if truths is None else truths.get(name)
        if name in logs and np.all(x > 0):
            x = np.log10(x)
            name = f"log10({name})"
            mark = None if mark is None else float(np.log10(mark))
        columns.append(x)
        labels.append(name)
        marks.append(mark)
    data = np.column_stack(columns)
    k = data.shape[1]
    fig = _new_figure(figsize=(max(2.2 * k, 4.0), max(2.2 * k, 4.0)))
    options = dict(labels=labels, quantiles=[0.16, 0.5, 0.84], show_titles=True,
                   title_fmt=".3g", title_kwargs={"fontsize": 9}, label_kwargs={"fontsize": 9},
                   color=_COLORS[0], fig=fig)
    if truths is not None:
        options["truths"] = marks
    options.update(corner_kwargs)
    if data.shape[0] <= k:  # corner needs more samples than dimensions
        raise FitError(f"{data.shape[0]} samples are too few for a corner plot of {k} parameters")
    return corner.corner(data, **options)


def plot_trace(result: Any, *, params: Sequence[str] | None = None) -> Any:
    """Traces per chain (left) and marginal histograms per chain (right).

    Example:
        >>> fig = plot_trace(result)                    # doctest: +SKIP
    """
    post = _posterior(result)
    names = list(params) if params is not None else _free_names(result, result.samples())
    missing = [n for n in names if n not in post]
    if missing:
        raise FitError(f"no samples for {missing}; parameters are: {', '.join(post)}")
    fig = _new_figure(figsize=(9.0, 1.7 * max(len(names), 1) + 0.4))
    axes = fig.subplots(len(names), 2, squeeze=False, gridspec_kw={"width_ratios": [3, 1]})
    for row, name in enumerate(names):
        values = np.asarray(post[name], dtype=float)
        values = values.reshape(values.shape[0], values.shape[1], -1)[..., 0]
        for c, chain in enumerate(values):
            colour = _COLORS[c % len(_COLORS)]
            axes[row, 0].plot(chain, lw=0.6, color=colour, alpha=0.8)
            axes[row, 1].hist(chain, bins=30, histtype="step", color=colour, density=True)
        axes[row, 0].set_ylabel(name, fontsize=8)
        axes[row, 1].set_yticks([])
    if names:
        axes[-1, 0].set_xlabel("draw")
        axes[0, 0].set_title(f"{getattr(result, 'method', '')}: {values.shape[0]} chain(s)",
                             fontsize=9, loc="left")
    fig.tight_layout()
    return fig


def plot_elbo(result: Any, *, skip: float = 0.05) -> Any:
    """The ELBO of a variational fit against the optimisation step.

    Args:
        result: a VI (or other optimiser) result with an ``elbo`` array.
        skip: fraction of first steps left out of the y range (they are huge).

    Example:
        >>> fig = plot_elbo(fit(spec, obs, method="vi"))  # doctest: +SKIP
    """
    elbo = getattr(result, "elbo", None)
    if elbo is None or len(elbo) == 0:
        raise FitError(f"this {getattr(result, 'method', '')!s} result has no ELBO curve; "
                       "only method='vi' records one")
    elbo = np.asarray(elbo, dtype=float)
    fig = _new_figure(figsize=(6.4, 3.4))
    ax = fig.subplots()
    steps = np.arange(1, elbo.size + 1)
    ax.plot(steps, elbo, lw=0.8, color=_COLORS[0])
    tail = elbo[int(skip * elbo.size):]
    tail = tail[np.isfinite(tail)]
    if tail.size > 1:
        lo, hi = np.percentile(tail, [1, 100])
        pad = 0.05 * max(hi - lo, 1e-9)
        ax.set_ylim(lo - pad, hi + pad)
    ax.set_xlabel("step")
    ax.set_ylabel("ELBO")
    ax.set_title(f"final ELBO {elbo[-1]:.6g}", fontsize=9, loc="left")
    fig.tight_layout()
    return fig


class PPCData(NamedTuple):
    """What :func:`plot_ppc` draws for one observation (grouped as fitted, or rebinned)."""

    name: str
    e_lo: np.ndarray  # keV bounds of each group
    e_hi: np.ndarray
    ch_lo: np.ndarray  # channel bounds of each group (for the channel axis)
    ch_hi: np.ndarray
    exposure: float
    counts: np.ndarray  # observed
    errors: np.ndarray  # 1-sigma errors of the observed counts
    expected: np.ndarray  # (draws, n) posterior expected counts
    predictive: np.ndarray  # (draws, n) Poisson replicas
    background: np.ndarray | None  # expected background counts in the source region
    components: dict[str, np.ndarray]  # folded additive components (best fit)

    def rebinned(self, min_sigma: float) -> PPCData:
        """Adjacent groups merged (display only) until each reaches ``min_sigma``."""
        net = self.counts - (0.0 if self.background is None else self.background)
        starts = rebin_groups(net, self.counts, self.e_lo, self.e_hi, min_sigma)
        ends = np.append(starts[1:], self.counts.size)

        def add(a: np.ndarray) -> np.ndarray:
            return np.add.reduceat(a, starts, axis=-1)

        return self._replace(
            e_lo=self.e_lo[starts], e_hi=self.e_hi[ends - 1],
            ch_lo=self.ch_lo[starts], ch_hi=self.ch_hi[ends - 1],
            counts=add(self.counts), errors=np.sqrt(add(self.errors**2)),
            expected=add(self.expected), predictive=add(self.predictive),
            background=None if self.background is None else add(self.background),
            components={k: add(v) for k, v in self.components.items()},
        )


def rebin_groups(net: np.ndarray, counts: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                 min_sigma: float) -> np.ndarray:
    """Start indices of display bins: merge neighbours until net / sqrt(counts) >= min_sigma.

    Never merges across a gap in energy (an ignored range); a short last bin
    joins its predecessor.

    Example:
        >>> rebin_groups(np.ones(8), np.ones(8), np.arange(8.), np.arange(1., 9.), 2.0)
        array([0, 4])
    """
    def gap(i: int) -> bool:  # an ignored range between groups i-1 and i
        return bool(lo[i] > hi[i - 1] * (1 + 1e-9) + 1e-12)

    def enough(s_net: float, s_counts: float) -> bool:
        return s_counts > 0 and s_net / np.sqrt(s_counts) >= min_sigma

    starts, s_net, s_counts = [0], 0.0, 0.0
    for i in range(counts.size):
        if i > starts[-1] and gap(i):
            starts.append(i)
            s_net = s_counts = 0.0
        s_net += float(net[i])
        s_counts += float(counts[i])
        if enough(s_net, s_counts) and i + 1 < counts.size:
            starts.append(i + 1)
            s_net = s_counts = 0.0
    if len(starts) > 1 and not enough(s_net, s_counts) and not gap(starts[-1]):
        starts.pop()  # the last bin is short: merge it into the previous one
    return np.asarray(starts, dtype=int)


def _resolve_params(result: Any, index: int) -> tuple[dict[str, float], float]:
    """Best-fit model parameters of observation ``index`` and its cross-normalisation."""
    spec = result.spec
    obs = result.observations[index]
    values: dict[str, float] = dict(getattr(spec, "fixed", {}) or {})
    values.update(getattr(result, "best_fit", {}) or {})
    ties: Mapping[str, Any] = getattr(spec, "ties", {}) or {}
    for _ in range(len(ties) + 1):  # evaluate ties in dependency order
        for name, tie in ties.items():
            if name not in values and all(d in values for d in getattr(tie, "depends", ())):
                values[name] = float(tie.evaluate(values))

    def value(base: str) -> float | None:
        for key in (f"{base}[{getattr(obs, 'name', '')}]", f"{base}[{index}]", base):
            if key in values:
                return float(values[key])
        return None

    model = spec.model
    params = {n: v for n in model.param_names if (v := value(n)) is not None}
    cross = value("cross.factor")
    return params, 1.0 if cross is None else cross


def ppc_data(result: Any, index: int, *, n_draws: int = 200,
             rng: np.random.Generator | None = None, components: bool = True) -> PPCData:
    """Arrays for the posterior-predictive plot of observation ``index``."""
    rng = rng or np.random.default_rng(0)
    obs = result.observations[index]
    expected = np.asarray(result.predicted_counts(index), dtype=float)
    if expected.shape[0] > n_draws:
        expected = expected[np.linspace(0, expected.shape[0] - 1, n_draws).astype(int)]
    predictive = rng.poisson(np.maximum(expected, 0.0)).astype(float)
    counts = np.asarray(obs.counts, dtype=float)
    err = getattr(obs, "stat_err", None)
    errors = np.sqrt(np.maximum(counts, 1.0)) if err is None else np.asarray(err, dtype=float)
    background = None
    bkg_mode = str(getattr(result, "background", "none"))
    if obs.background is not None and bkg_mode not in ("none", "ignore", ""):
        background = np.asarray(obs.background_ratio, dtype=float) * np.asarray(obs.background)
    parts: dict[str, np.ndarray] = {}
    if components:
        params, cross = _resolve_params(result, index)
        comps = result.spec.model.evaluate_components(params, obs.e_lo, obs.e_hi)
        if len(comps) > 1:
            parts = {k: cross * np.asarray(obs.fold @ np.asarray(v, dtype=float))
                     for k, v in comps.items()}
    first = getattr(obs, "first_channel", None)
    last = getattr(obs, "last_channel", None)
    if first is None or last is None:
        first = last = np.arange(counts.size)
    return PPCData(
        name=str(getattr(obs, "name", index)), e_lo=np.asarray(obs.channel_lo, dtype=float),
        e_hi=np.asarray(obs.channel_hi, dtype=float),
        ch_lo=np.asarray(first, dtype=float) - 0.5, ch_hi=np.asarray(last, dtype=float) + 0.5,
        exposure=float(obs.exposure), counts=counts, errors=errors, expected=expected,
        predictive=predictive, background=background, components=parts,
    )


def plot_ppc(
    result: Any,
    obs_index: int | None = 0,
    *,
    x: str = "energy",
    yscale: str = "log",
    xscale: str | None = None,
    rebin: float | None = None,
    components: bool = True,
    background: bool = True,
    bands: Sequence[float] = (68.0, 95.0),
    n_draws: int = 200,
    seed: int = 0,
) -> Any:
    """Folded counts with posterior-predictive bands and residuals in sigma.

    Top: the data (counts s⁻¹ keV⁻¹ against energy, or counts s⁻¹ channel⁻¹),
    the posterior-predictive bands, the median folded model, each additive
    component folded through the response, and the scaled background. Bottom:
    (data − model) / σ.

    Args:
        result: the fit result.
        obs_index: which observation (None: all, overlaid).
        x: ``"energy"`` (keV) or ``"channel"`` (detector channel number).
        yscale: ``"log"`` or ``"linear"``.
        xscale: default log for energy, linear for channel.
        rebin: merge adjacent groups for the display only until each has this
            many sigma (data over its Poisson error); None keeps the fit's groups.
        components: draw the folded additive components (median parameters).
        background: draw the expected background in the source region.
        bands: central posterior-predictive intervals in percent.
        n_draws: posterior draws used for the bands.
        seed: seed of the Poisson draws of the predictive bands.

    Returns:
        The figure (two axes: spectrum and residuals).

    Example:
        >>> fig = plot_ppc(result, rebin=5, x="energy", yscale="log")  # doctest: +SKIP
    """
    if x not in ("energy", "channel"):
        raise FitError(f"x must be 'energy' or 'channel', not {x!r}")
    if yscale not in ("log", "linear"):
        raise FitError(f"yscale must be 'log' or 'linear', not {yscale!r}")
    n_obs = len(getattr(result, "observations", ()) or ())
    indices = range(n_obs) if obs_index is None else [obs_index]
    for i in indices:
        if not 0 <= i < n_obs:
            raise FitError(f"obs_index {i} is out of range: the fit has {n_obs} observation(s)")
    fig = _new_figure(figsize=(7.5, 5.6))
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1.2],
                                                                "hspace": 0.05})
    rng = np.random.default_rng(seed)
    for k, i in enumerate(indices):
        data = ppc_data(result, i, n_draws=n_draws, rng=rng, components=components)
        if rebin:
            data = data.rebinned(float(rebin))
        _draw_ppc(top, bottom, data, x=x, colour=_COLORS[k % len(_COLORS)], bands=bands,
                  components=components and len(indices) == 1, background=background)
    top.set_yscale(yscale)
    xs = xscale or ("log" if x == "energy" else "linear")
    top.set_xscale(xs)
    top.set_ylabel("counts s$^{-1}$ keV$^{-1}$" if x == "energy" else
                   "counts s$^{-1}$ channel$^{-1}$")
    bottom.set_xlabel("energy (keV)" if x == "energy" else "channel")
    bottom.set_ylabel("(data − model) / σ")
    bottom.axhline(0.0, color="0.4", lw=0.8)
    top.legend(fontsize=8, loc="best", frameon=False)
    title = getattr(getattr(getattr(result, "spec", None), "model", None), "expression", "")
    top.set_title(f"{title}  [{getattr(result, 'method', '')}]", fontsize=9, loc="left")
    return fig


def _draw_ppc(top: Any, bottom: Any, d: PPCData, *, x: str, colour: str,
              bands: Sequence[float], components: bool, background: bool) -> None:
    lo, hi = (d.e_lo, d.e_hi) if x == "energy" else (d.ch_lo, d.ch_hi)
    scale = 1.0 / (d.exposure * (hi - lo))
    mid = 0.5 * (lo + hi)
    edges = np.append(lo, hi[-1])
    for j, width in enumerate(sorted(bands, reverse=True)):
        q_lo, q_hi = np.percentile(d.predictive, [50 - width / 2, 50 + width / 2], axis=0)
        top.stairs(q_hi * scale, edges, baseline=q_lo * scale, fill=True, color=colour,
                   alpha=0.15 + 0.15 * j, lw=0, label=f"{width:g}% predictive")
    model = np.median(d.expected, axis=0)
    top.stairs(model * scale, edges, color=colour, lw=1.2, label=f"model ({d.name})",
               baseline=None)
    if background and d.background is not None and np.any(d.background > 0):
        top.stairs(d.background * scale, edges, color="0.45", lw=0.9, ls="--",
                   label="background", baseline=None)
    if components:
        for k, (label, folded) in enumerate(d.components.items()):
            top.stairs(folded * scale, edges, lw=0.9, ls=":", baseline=None,
                       color=_COLORS[(k + 1) % len(_COLORS)], label=label)
    err = d.errors
    top.errorbar(mid, d.counts * scale, yerr=err * scale, xerr=0.5 * (hi - lo), fmt="o", ms=2,
                 color="k", elinewidth=0.6, lw=0, label="data")
    sigma = np.sqrt(np.maximum(np.var(d.predictive, axis=0), 1e-12))
    resid = (d.counts - model) / sigma
    bottom.errorbar(mid, resid, yerr=err / sigma, xerr=0.5 * (hi - lo), fmt="o", ms=2,
                    color=colour, elinewidth=0.6, lw=0)
