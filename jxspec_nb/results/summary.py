"""Summary table and text of a :class:`~jxspec_nb.results.FitResult` (no arviz needed)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._diagnostics import ess_bulk, ess_tail, rhat

__all__ = ["fit_summary", "summary_rows", "summary_text", "COLUMNS"]

COLUMNS = ("median", "q16", "q84", "mean", "sd", "r_hat", "ess_bulk", "ess_tail")


def summary_rows(result: Any) -> dict[str, dict[str, float]]:
    """``{parameter: {column: value}}`` for every scalar parameter."""
    rows: dict[str, dict[str, float]] = {}
    for name, arr in result.draws.posterior.items():
        if arr.ndim != 2:
            continue
        x = arr.reshape(-1)
        q16, med, q84 = np.percentile(x, [16, 50, 84])
        rows[name] = {
            "median": float(med), "q16": float(q16), "q84": float(q84),
            "mean": float(x.mean()), "sd": float(x.std(ddof=1)) if x.size > 1 else 0.0,
            "r_hat": rhat(arr), "ess_bulk": ess_bulk(arr), "ess_tail": ess_tail(arr),
        }
    return rows


def divergences(result: Any) -> int:
    """Number of divergent transitions (0 for methods without)."""
    div = result.draws.sample_stats.get("diverging")
    return 0 if div is None else int(np.asarray(div).sum())


def fit_summary(result: Any) -> Any:
    """pandas DataFrame with :data:`COLUMNS` per scalar parameter;
    ``attrs["divergences"]`` counts divergent transitions."""
    import pandas as pd

    rows = summary_rows(result)
    df = pd.DataFrame([[r[c] for c in COLUMNS] for r in rows.values()],
                      index=pd.Index(list(rows), name="parameter"), columns=list(COLUMNS))
    df.attrs["divergences"] = divergences(result)
    return df


def _g(x: float | None) -> str:
    if x is None or not np.isfinite(x):
        return "nan"
    return f"{x:.4g}"


def summary_text(result: Any) -> str:
    """The text form of a result (its ``__repr__``)."""
    expr = getattr(getattr(result.spec, "model", None), "expression", "?")
    chains, draws = result.draws.shape
    head = [f"FitResult: {expr}  [{result.method}, {chains} x {draws} draws]"]
    if result.fit_statistic is not None:
        line = f"  {result.stat} = {result.fit_statistic:.6g}"
        if result.dof:
            line += f" / {result.dof} dof"
        head.append(line)
    if result.log_evidence is not None:
        err = result.log_evidence_err
        head.append(f"  ln Z = {result.log_evidence:.6g}" +
                    (f" +- {err:.2g}" if err is not None else ""))
    if result.elbo is not None and len(result.elbo):
        head.append(f"  ELBO = {float(result.elbo[-1]):.6g} after {len(result.elbo)} steps")
    n_div = divergences(result)
    if n_div:
        head.append(f"  divergences: {n_div}")
    rows = summary_rows(result)
    width = max([len(n) for n in rows] + [9])
    cols = ("median", "q16", "q84", "sd", "r_hat", "ess_bulk", "ess_tail")
    lines = ["  " + "parameter".ljust(width) + "".join(c.rjust(11) for c in cols)]
    for n, row in rows.items():
        lines.append("  " + n.ljust(width) + "".join(_g(row[c]).rjust(11) for c in cols))
    if result.timings:
        t = ", ".join(f"{k} {v:.2f}s" for k, v in result.timings.items())
        lines.append(f"  time: {t}")
    return "\n".join(head + lines)
