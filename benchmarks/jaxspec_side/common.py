"""jaxspec 0.4.1 set-up shared by the jaxspec-side scripts (runs in benchmarks/.venv-jaxspec).

jaxspec fetches its cross-section tables with pooch from the internet; we point
pooch's cache (``XDG_CACHE_HOME``) at benchmarks/_out/jaxspec_cache, where
run.py has copied the byte-identical tables (sha256 as in jaxspec's registry).
Its example data loader also downloads, so the ULX-4 files are read from
jxspec_nb/datasets/ngc7793_ulx4 (byte-identical to jaxspec's registry entries).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import _util  # noqa: E402

os.environ.setdefault("XDG_CACHE_HOME", str(_util.OUT_DIR / "jaxspec_cache"))

#: our parameter name -> jaxspec 0.4.1 prior key
JAXSPEC_NAMES = {
    "tbabs.nH": "spectrum.tbabs_1.nh",
    "powerlaw.PhoIndex": "spectrum.powerlaw_1.alpha",
    "powerlaw.norm": "spectrum.powerlaw_1.norm",
    "bbodyrad.kT": "spectrum.blackbodyrad_1.kT",
    "bbodyrad.norm": "spectrum.blackbodyrad_1.norm",
}


def setup_jax(n_devices: int = 4) -> None:
    """What jaxspec's docs ask for at the top of a script: x64, CPU, host devices."""
    import numpyro

    numpyro.enable_x64()
    numpyro.set_platform("cpu")
    numpyro.set_host_device_count(n_devices)


def ulx4_obsconf():
    """ULX-4 EPIC-pn, 0.5-10 keV, as the paper's Appendix A loads it."""
    from jaxspec.data import ObsConfiguration

    d = _util.ULX4_DIR
    return ObsConfiguration.from_pha_file(
        str(d / "PN_spectrum_grp20.fits"),
        rmf_path=str(d / "PN.rmf"),
        arf_path=str(d / "PN.arf"),
        bkg_path=str(d / "PNbackground_spectrum.fits"),
        low_energy=_util.ULX4_BAND[0],
        high_energy=_util.ULX4_BAND[1],
    )


def ulx4_model():
    from jaxspec.model.additive import Blackbodyrad, Powerlaw
    from jaxspec.model.multiplicative import Tbabs

    return Tbabs() * (Powerlaw() + Blackbodyrad())


def ulx4_prior() -> dict:
    import numpyro.distributions as dist

    out = {}
    for ours, (kind, lo, hi) in _util.ULX4_PRIORS.items():
        out[JAXSPEC_NAMES[ours]] = getattr(dist, kind)(lo, hi)
    return out


def posterior_by_our_names(idata) -> dict:
    """{our name: np.ndarray (chains, draws)} from a jaxspec InferenceData."""
    import numpy as np

    post = idata.posterior
    out = {}
    for ours, theirs in JAXSPEC_NAMES.items():
        for key in (theirs, theirs.removeprefix("spectrum.")):
            if key in post:
                out[ours] = np.asarray(post[key])
                break
        else:
            raise KeyError(f"{theirs} not in posterior: {list(post.keys())}")
    return out


def posterior_stats(idata, seconds: float) -> dict:
    """Median/quantiles/sd per parameter, min bulk ESS and R-hat (arviz)."""
    import arviz as az
    import numpy as np

    draws = posterior_by_our_names(idata)
    stats = {}
    for name, arr in draws.items():
        flat = arr.reshape(-1)
        q16, q50, q84 = np.quantile(flat, [0.16, 0.5, 0.84])
        entry = {"median": q50, "q16": q16, "q84": q84, "mean": flat.mean(), "sd": flat.std()}
        if arr.shape[0] > 1 or arr.shape[1] > 1:
            entry["ess_bulk"] = float(az.ess(arr, method="bulk"))
            entry["r_hat"] = float(az.rhat(arr)) if arr.shape[0] > 1 else float("nan")
        stats[name] = entry
    ess = [s.get("ess_bulk", float("nan")) for s in stats.values()]
    return {
        "params": stats,
        "min_ess_bulk": float(np.nanmin(ess)) if ess else float("nan"),
        "max_r_hat": float(np.nanmax([s.get("r_hat", np.nan) for s in stats.values()])),
        "min_ess_per_s": float(np.nanmin(ess)) / seconds if seconds > 0 else float("nan"),
    }
