"""Rich HTML displays for observations, models, model specifications and fit results.

Every function returns a self-contained HTML string: inline CSS (from
``display.css`` beside this module), no JavaScript, and an escaped text fallback
(the object's ``repr``) that shows wherever the CSS is stripped. The objects'
``_repr_html_`` methods delegate here, so in a notebook simply evaluating the
object renders it::

    >>> from jxspec_nb.results import display
    >>> html = display.observation_html(obs)        # doctest: +SKIP
    >>> "<table" in html                            # doctest: +SKIP
    True

Numbers are read defensively (``getattr`` with defaults) so that a partially
filled object still renders.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from html import escape
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "observation_html",
    "model_html",
    "spec_html",
    "result_html",
    "describe_distribution",
    "RHAT_MAX",
    "ESS_PER_CHAIN_MIN",
]

#: R-hat above this value is flagged (Vehtari et al. 2021).
RHAT_MAX = 1.01
#: bulk/tail ESS below this many per chain (at most 400 in total) is flagged.
ESS_PER_CHAIN_MIN = 100


@lru_cache(maxsize=1)
def _css() -> str:
    return resources.files("jxspec_nb.results").joinpath("display.css").read_text()


def _fmt(value: Any, digits: int = 4) -> str:
    """A number with ``digits`` significant digits; '–' for None/NaN."""
    if value is None:
        return "–"
    try:
        x = float(value)
    except (TypeError, ValueError):
        return escape(str(value))
    if math.isnan(x):
        return "–"
    if math.isinf(x):
        return "∞" if x > 0 else "−∞"
    return f"{x:.{digits}g}"


def _wrap(kind: str, title: str, body: str, text: str) -> str:
    """The common frame: style, text fallback, then the (CSS-revealed) HTML body."""
    return (
        f"<div class='jxs-root'><style>{_css()}</style>"
        f"<pre class='jxs-text-fallback'>{escape(text)}</pre>"
        f"<div class='jxs-wrap jxs-{kind}' style='display:none'>"
        f"<div class='jxs-title'><span class='jxs-kind'>{escape(kind)}</span>{title}</div>"
        f"{body}</div></div>"
    )


def _facts(items: Iterable[tuple[str, str]]) -> str:
    cells = "".join(
        f"<div><span class='jxs-key'>{escape(k)}</span>{v}</div>" for k, v in items if v
    )
    return f"<div class='jxs-facts'>{cells}</div>"


def _table(
    headers: Sequence[str],
    rows: Iterable[Sequence[str]],
    *,
    numeric: Sequence[bool] | None = None,
    row_classes: Sequence[str] | None = None,
) -> str:
    numeric = list(numeric) if numeric is not None else [False] * len(headers)
    head = "".join(
        f"<th class='{'jxs-num' if n else ''}'>{escape(h)}</th>" for h, n in zip(headers, numeric)
    )
    body = []
    for i, row in enumerate(rows):
        cls = row_classes[i] if row_classes else ""
        tds = []
        for j, cell in enumerate(row):
            td_cls = "jxs-num" if numeric[j] else ("jxs-name" if j == 0 else "")
            tds.append(f"<td class='{td_cls}'>{cell}</td>")
        body.append(f"<tr class='{cls}'>{''.join(tds)}</tr>")
    return f"<table class='jxs-table'><tr>{head}</tr>{''.join(body)}</table>"


def _safe_repr(obj: Any) -> str:
    try:
        return repr(obj)
    except Exception as exc:  # a display must never raise
        return f"<{type(obj).__name__} (repr failed: {exc})>"


# ----------------------------------------------------------------------- observation


def _sparkline(lo: Any, hi: Any, counts: Any, width: int = 320, height: int = 48) -> str:
    """An inline SVG of counts per keV against log energy (no JavaScript)."""
    try:
        lo = np.asarray(lo, dtype=float)
        hi = np.asarray(hi, dtype=float)
        y = np.asarray(counts, dtype=float) / np.maximum(hi - lo, 1e-12)
    except (TypeError, ValueError):
        return ""
    ok = (lo > 0) & (hi > lo) & np.isfinite(y)
    if ok.sum() < 2:
        return ""
    x = np.log10(0.5 * (lo[ok] + hi[ok]))
    y = np.log10(np.maximum(y[ok], y[ok][y[ok] > 0].min() if (y[ok] > 0).any() else 1.0))
    if len(x) > 400:  # thin for the display only
        idx = np.linspace(0, len(x) - 1, 400).astype(int)
        x, y = x[idx], y[idx]
    span_x = max(x.max() - x.min(), 1e-9)
    span_y = max(y.max() - y.min(), 1e-9)
    px = 2 + (x - x.min()) / span_x * (width - 4)
    py = height - 12 - (y - y.min()) / span_y * (height - 16)
    points = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(px, py))
    e0, e1 = float(lo[ok][0]), float(hi[ok][-1])
    return (
        f"<svg class='jxs-spark' width='{width}' height='{height}' role='img' "
        f"aria-label='counts per keV'><polyline points='{points}'/>"
        f"<text x='2' y='{height - 1}'>{e0:.3g} keV</text>"
        f"<text x='{width - 2}' y='{height - 1}' text-anchor='end'>{e1:.3g} keV</text>"
        f"<text x='{width - 2}' y='9' text-anchor='end'>counts/keV (log)</text></svg>"
    )


def observation_html(obs: Any) -> str:
    """HTML for an :class:`~jxspec_nb.data.Observation`.

    Shows instrument, exposure, counts, band, grouping, background and the shape
    and density of the folding operator, with a small counts-per-keV sketch.

    Example:
        >>> observation_html(obs)                     # doctest: +SKIP
    """
    counts = np.asarray(getattr(obs, "counts", []), dtype=float)
    lo = getattr(obs, "channel_lo", None)
    hi = getattr(obs, "channel_hi", None)
    band = ""
    if lo is not None and hi is not None and len(lo):
        band = f"{float(lo[0]):.3g}–{float(hi[-1]):.3g} keV"
    e_lo, e_hi = getattr(obs, "e_lo", None), getattr(obs, "e_hi", None)
    grid = ""
    if e_lo is not None and len(e_lo):
        grid = f"{float(e_lo[0]):.3g}–{float(e_hi[-1]):.3g} keV"
    fold = getattr(obs, "fold", None)
    shape = density = ""
    if fold is not None and getattr(fold, "shape", None):
        n, m = fold.shape
        nnz = getattr(fold, "nnz", None)
        if nnz is None:
            nnz = int(np.count_nonzero(np.asarray(fold)))
        shape = f"{n} channels × {m} energies"
        density = f"{100.0 * nnz / max(n * m, 1):.2g}% non-zero"
    bkg = getattr(obs, "background", None)
    if bkg is not None:
        ratio = np.asarray(getattr(obs, "background_ratio", 1.0), dtype=float)
        expected = float(np.sum(ratio * np.asarray(bkg, dtype=float)))
        bkg_text = f"{_fmt(np.sum(bkg), 6)} counts (≈ {_fmt(expected)} in source region)"
    else:
        bkg_text = "none"
    instrument = " ".join(
        str(x) for x in (getattr(obs, "telescope", ""), getattr(obs, "instrument", "")) if x
    )
    path = getattr(obs, "spectrum_path", None)
    grouping = getattr(obs, "grouping", None) or getattr(obs, "group", None)
    stat = "Poisson" if getattr(obs, "is_poisson", True) else "Gaussian (STAT_ERR)"
    exposure = getattr(obs, "exposure", None)
    facts = [
        ("instrument", escape(instrument or "unknown")),
        ("exposure", f"{_fmt(exposure, 5)} s" if exposure is not None else ""),
        ("counts", f"{_fmt(counts.sum(), 7)} in {counts.size} groups"),
        ("band", band),
        ("grouping", escape(str(grouping)) if grouping is not None else ""),
        ("statistic", stat),
        ("background", bkg_text),
        ("response", shape),
        ("density", density),
        ("model grid", grid),
        ("file", escape(Path(str(path)).name) if path else ""),
    ]
    name = escape(str(getattr(obs, "name", "") or "observation"))
    body = _facts(facts) + (_sparkline(lo, hi, counts) if lo is not None else "")
    return _wrap("Observation", name, body, _safe_repr(obs))


# ------------------------------------------------------------------------- models


def model_html(model: Any) -> str:
    """HTML for a :class:`~jxspec_nb.model.SpectralModel`: expression + parameter table.

    Example:
        >>> model_html(parse_model("tbabs*powerlaw"))   # doctest: +SKIP
    """
    params = list(getattr(model, "parameters", ()))
    rows, classes = [], []
    for p in params:
        frozen = bool(getattr(p, "frozen", False))
        rows.append(
            [
                escape(str(p.name)),
                _fmt(getattr(p, "default", None)),
                escape(str(getattr(p, "unit", "") or "")),
                _fmt(getattr(p, "lower", None)),
                _fmt(getattr(p, "upper", None)),
                "frozen" if frozen else "",
                escape(str(getattr(p, "description", "") or "")),
            ]
        )
        classes.append("jxs-fixed" if frozen else "")
    table = _table(
        ["parameter", "default", "unit", "lower", "upper", "", "description"],
        rows,
        numeric=[False, True, False, True, True, False, False],
        row_classes=classes,
    )
    expr = f"<span class='jxs-expr'>{escape(str(getattr(model, 'expression', '')))}</span>"
    return _wrap("SpectralModel", expr, table, _safe_repr(model))


def describe_distribution(dist: Any) -> str:
    """A short text form of a numpyro distribution, e.g. ``Uniform(0, 3)``.

    Example:
        >>> import numpyro.distributions as nd
        >>> describe_distribution(nd.Uniform(0.0, 3.0))
        'Uniform(0, 3)'
    """
    name = type(dist).__name__
    args = []
    for key in getattr(dist, "arg_constraints", {}) or {}:
        if not hasattr(dist, key):
            continue
        try:
            value = float(getattr(dist, key))
        except (TypeError, ValueError):
            continue
        args.append(f"{value:.6g}")
    if name == "LogUniform" and not args:  # a TransformedDistribution underneath
        base = getattr(dist, "base_dist", None)
        if base is not None and hasattr(base, "low"):
            args = [f"{math.exp(float(base.low)):.6g}", f"{math.exp(float(base.high)):.6g}"]
    return f"{name}({', '.join(args)})"


def _tie_text(tie: Any) -> str:
    for attr in ("text", "expression", "source"):
        value = getattr(tie, attr, None)
        if isinstance(value, str):
            return value
    return str(tie)


def spec_html(spec: Any) -> str:
    """HTML for a :class:`~jxspec_nb.inference.ModelSpec`: which parameter is free
    (with its prior), fixed (with its value) or tied (with its expression).

    Example:
        >>> text = "powerlaw\\npowerlaw.PhoIndex ~ Uniform(0, 3)"
        >>> spec_html(model_with_priors(text))          # doctest: +SKIP
    """
    model = getattr(spec, "model", None)
    prior_defs: Mapping[str, Any] = getattr(spec, "prior_defs", {}) or {}
    # prefer the prior definitions (text form, no numpyro import) to the distributions
    priors: Mapping[str, Any] = prior_defs or getattr(spec, "priors", {}) or {}
    fixed: Mapping[str, Any] = getattr(spec, "fixed", {}) or {}
    ties: Mapping[str, Any] = getattr(spec, "ties", {}) or {}
    units = {p.name: getattr(p, "unit", "") for p in getattr(model, "parameters", ())}
    limits = {
        p.name: (getattr(p, "lower", None), getattr(p, "upper", None))
        for p in getattr(model, "parameters", ())
    }
    names = list(getattr(model, "param_names", None) or units)
    # per-observation entries (``powerlaw.norm[obs2]``, ``cross.factor[obs2]``) last
    names += [n for n in (*priors, *fixed, *ties) if n not in names]
    rows, classes = [], []
    for name in names:
        if name in prior_defs and hasattr(prior_defs[name], "text"):
            status, what, cls = "free", escape(prior_defs[name].text()), ""
        elif name in priors:
            status, what, cls = "free", escape(describe_distribution(priors[name])), ""
        elif name in ties:
            status, what, cls = "tied", f"= {escape(_tie_text(ties[name]))}", "jxs-fixed"
        elif name in fixed:
            status, what, cls = "fixed", f"= {_fmt(fixed[name], 6)}", "jxs-fixed"
        else:
            status, what, cls = "default", "model default", "jxs-fixed"
        lo, hi = limits.get(name.split("[", 1)[0], (None, None))
        rows.append(
            [escape(name), status, what, escape(str(units.get(name.split("[", 1)[0], "") or "")),
             f"[{_fmt(lo)}, {_fmt(hi)}]"]
        )
        classes.append(cls)
    table = _table(
        ["parameter", "status", "prior / value", "unit", "hard limits"], rows, row_classes=classes
    )
    n_free = len(getattr(spec, "free_names", None) or priors)
    note = f"<div class='jxs-note'>{n_free} free parameter{'s' if n_free != 1 else ''}</div>"
    expr = escape(str(getattr(model, "expression", "")))
    return _wrap("ModelSpec", f"<span class='jxs-expr'>{expr}</span>", table + note,
                 _safe_repr(spec))


# ------------------------------------------------------------------------ results


def _shape(result: Any) -> tuple[int, int] | None:
    """(chains, draws) without building the InferenceData when the result has raw draws."""
    draws = getattr(result, "draws", None)
    if draws is not None and hasattr(draws, "shape"):
        return tuple(int(x) for x in draws.shape)  # type: ignore[return-value]
    try:
        sizes = result.idata.posterior.sizes
        return int(sizes["chain"]), int(sizes["draw"])
    except (AttributeError, KeyError, TypeError):
        return None


def _n_chains(result: Any) -> int:
    shape = _shape(result)
    return 1 if shape is None else shape[0]


def _divergences(result: Any, table: Any) -> int | None:
    attrs = getattr(table, "attrs", None) or {}
    if attrs.get("divergences") is not None:
        return int(attrs["divergences"])
    draws = getattr(result, "draws", None)
    stats = getattr(draws, "sample_stats", None)
    if stats is not None:
        return int(np.sum(stats["diverging"])) if "diverging" in stats else None
    try:
        return int(result.idata.sample_stats["diverging"].values.sum())
    except (AttributeError, KeyError, TypeError):
        return None


def _summary(result: Any) -> Any:
    try:
        return result.summary()
    except Exception:  # noqa: BLE001 - a display falls back to the best fit only
        return None


def _parameter_rows(result: Any, table: Any) -> tuple[list[list[str]], list[str], int]:
    """Rows of the parameter table and how many diagnostics are flagged."""
    chains = _n_chains(result)
    ess_min = min(ESS_PER_CHAIN_MIN * chains, 400)
    flagged = 0
    rows = []
    best = getattr(result, "best_fit", None) or {}
    if table is None:
        for name, value in best.items():
            rows.append([escape(name), _fmt(value), "–", "–", "–", "–", "–"])
        return rows, [""] * len(rows), 0
    for name, rec in table.iterrows():
        med, lo, hi = rec.get("median"), rec.get("q16"), rec.get("q84")
        err = "–"
        if lo is not None and hi is not None and not (math.isnan(lo) or math.isnan(hi)):
            err = f"−{_fmt(med - lo, 2)} / +{_fmt(hi - med, 2)}"
        cells = [escape(str(name)), _fmt(med), err, _fmt(rec.get("sd"), 3)]
        rhat = rec.get("r_hat")
        bad_rhat = rhat is not None and not math.isnan(rhat) and rhat > RHAT_MAX
        cells.append(f"<span class='jxs-bad' title='R-hat &gt; {RHAT_MAX}'>{_fmt(rhat, 4)} ⚠</span>"
                     if bad_rhat else _fmt(rhat, 4))
        for key in ("ess_bulk", "ess_tail"):
            ess = rec.get(key)
            low = ess is not None and not math.isnan(ess) and ess < ess_min
            flagged += int(low)
            text = "–" if ess is None or math.isnan(ess) else f"{ess:.0f}"
            warn = f"<span class='jxs-warn' title='ESS &lt; {ess_min}'>{text} ⚠</span>"
            cells.append(warn if low else text)
        flagged += int(bad_rhat)
        rows.append(cells)
    return rows, [""] * len(rows), flagged


def result_html(result: Any) -> str:
    """HTML for a :class:`~jxspec_nb.results.FitResult`.

    A parameter table (median with the 16/84 % interval, sd, R-hat, bulk and tail
    ESS; R-hat > 1.01 and low ESS flagged), the fit statistic and degrees of
    freedom, the evidence when the method gives one, divergences, method and timings.

    Example:
        >>> result_html(fit(spec, obs, method="mle"))   # doctest: +SKIP
    """
    summary = _summary(result)
    rows, classes, flagged = _parameter_rows(result, summary)
    table = _table(
        ["parameter", "median", "16–84 %", "sd", "R-hat", "ESS bulk", "ESS tail"],
        rows,
        numeric=[False, True, True, True, True, True, True],
        row_classes=classes,
    )
    method = str(getattr(result, "method", "") or "")
    stat = str(getattr(result, "stat", "") or "")
    fstat, dof = getattr(result, "fit_statistic", None), getattr(result, "dof", None)
    stat_text = ""
    if fstat is not None:
        stat_text = f"{escape(stat)} = {_fmt(fstat, 6)}"
        if dof:
            stat_text += f" / {dof} dof ({_fmt(float(fstat) / float(dof), 3)})"
    logz = getattr(result, "log_evidence", None)
    logz_err = getattr(result, "log_evidence_err", None)
    evidence = ""
    if logz is not None and not math.isnan(float(logz)):
        evidence = f"ln Z = {_fmt(logz, 6)}"
        if logz_err is not None and not math.isnan(float(logz_err)):
            evidence += f" ± {_fmt(logz_err, 2)}"
    elbo = getattr(result, "elbo", None)
    elbo_text = ""
    if elbo is not None and len(elbo):
        elbo_text = f"{_fmt(elbo[-1], 6)} after {len(elbo)} steps"
    div = _divergences(result, summary)
    div_text = ""
    if div is not None:
        div_text = f"<span class='jxs-bad'>{div} ⚠</span>" if div else "0"
    chains = _n_chains(result)
    shape = _shape(result)
    draws_text = "" if shape is None else f"{shape[0]} × {shape[1]}"
    timings = getattr(result, "timings", {}) or {}
    time_text = ", ".join(f"{escape(str(k))} {_fmt(v, 3)} s" for k, v in timings.items())
    obs_names = [str(getattr(o, "name", "") or "") for o in getattr(result, "observations", ())]
    facts = [
        ("method", escape(method)),
        ("statistic", stat_text),
        ("evidence", evidence),
        ("ELBO", elbo_text),
        ("draws", draws_text),
        ("divergences", div_text),
        ("data", escape(", ".join(n for n in obs_names if n))),
        ("time", time_text),
    ]
    note = ""
    if flagged:
        note = (
            f"<div class='jxs-note'><span class='jxs-warn'>⚠ {flagged} diagnostic"
            f"{'s' if flagged != 1 else ''} flagged</span>: R-hat &gt; {RHAT_MAX} or ESS "
            f"&lt; {min(ESS_PER_CHAIN_MIN * chains, 400)}; run longer or check the model.</div>"
        )
    spec = getattr(result, "spec", None)
    expr = escape(str(getattr(getattr(spec, "model", None), "expression", "") or ""))
    title = f"<span class='jxs-expr'>{expr}</span>" if expr else escape(method)
    return _wrap("FitResult", title, _facts(facts) + table + note, _safe_repr(result))
