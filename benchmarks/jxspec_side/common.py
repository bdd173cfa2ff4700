"""jxspec_nb set-up shared by our side's scripts (runs in the project's .venv)."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import _util  # noqa: E402

ULX4_SPEC = "tbabs*(powerlaw + bbodyrad)\n" + "\n".join(
    f"{name} ~ {kind}({lo:g}, {hi:g})" for name, (kind, lo, hi) in _util.ULX4_PRIORS.items()
)


def ulx4_observation():
    """ULX-4 EPIC-pn, 0.5-10 keV, file grouping, no background (issue 4)."""
    from jxspec_nb import load_observation

    return load_observation(
        str(_util.ULX4_DIR / "PN_spectrum_grp20.fits"), band=_util.ULX4_BAND, bkg=None
    )


def posterior_stats(result, seconds: float) -> dict:
    """Same statistics as jaxspec_side.common.posterior_stats, from our FitResult."""
    import arviz as az
    import numpy as np

    post = result.idata.posterior
    stats = {}
    for name in _util.ULX4_PRIORS:
        arr = np.asarray(post[name])
        arr = arr.reshape(1, -1) if arr.ndim == 1 else arr
        flat = arr.reshape(-1)
        q16, q50, q84 = np.quantile(flat, [0.16, 0.5, 0.84])
        entry = {"median": q50, "q16": q16, "q84": q84, "mean": flat.mean(), "sd": flat.std()}
        entry["ess_bulk"] = float(az.ess(arr, method="bulk"))
        entry["r_hat"] = float(az.rhat(arr)) if arr.shape[0] > 1 else float("nan")
        stats[name] = entry
    ess = [s["ess_bulk"] for s in stats.values()]
    return {
        "params": stats,
        "min_ess_bulk": float(np.nanmin(ess)),
        "max_r_hat": float(np.nanmax([s["r_hat"] for s in stats.values()])),
        "min_ess_per_s": float(np.nanmin(ess)) / seconds if seconds > 0 else float("nan"),
    }
