"""Issue 2: time to load spectrum + responses and build the folding operator.

``--case ulx4 | sxs_full | sxs_band | resolve_band``; one case per process so
that peak memory belongs to that case. The microcalorimeter spectra get a
synthetic Gaussian RMF (5 eV FWHM for Hitomi SXS, 4.5 eV for XRISM Resolve).
"""

from __future__ import annotations

import time

from common import _util

args = _util.parse_args({"case": "ulx4", "repeat": 3})
clock = _util.Clock()
with clock("import"):
    import numpy as np

    from jxspec_nb import load_observation

D = _util.SHARED_DATA
CASES = {
    "ulx4": (str(_util.ULX4_DIR / "PN_spectrum_grp20.fits"),
             {"band": _util.ULX4_BAND, "bkg": None}),
    "ulx4_bkg": (str(_util.ULX4_DIR / "PN_spectrum_grp20.fits"), {"band": _util.ULX4_BAND}),
    "sxs_full": (str(D / "hitomi_sxs/perseus/ah100040040sxs_src_grp.pha.gz"),
                 {"rmf": "gaussian:5eV"}),
    "sxs_band": (str(D / "hitomi_sxs/perseus/ah100040040sxs_src_grp.pha.gz"),
                 {"rmf": "gaussian:5eV", "band": (6.49, 6.61)}),
    "resolve_band": (str(D / "xrism_resolve/perseus/xa_merged_p0px1000_Hp.pi.gz"),
                     {"rmf": "gaussian:4.5eV", "arf": str(
                         D / "xrism_resolve/perseus/rsl_standard_GVclosed.arf"),
                      "band": (6.49, 6.61)}),
}
path, kw = CASES[args.case]
times = []
for _ in range(args.repeat):
    t0 = time.perf_counter()
    obs = load_observation(path, **kw)
    fold = obs.fold
    times.append(time.perf_counter() - t0)
print(obs)
_util.emit(args.out, {
    "side": "jxspec_nb",
    "problem": f"load_fold_{args.case}",
    "phases": clock.phases,
    "first_s": times[0],
    "best_s": float(np.min(times)),
    "fold_shape": list(fold.shape),
    "fold_nnz": int(fold.nnz) if hasattr(fold, "nnz") else int(np.count_nonzero(fold)),
    "fold_type": type(fold).__name__,
    "counts": float(np.sum(obs.counts)),
})
