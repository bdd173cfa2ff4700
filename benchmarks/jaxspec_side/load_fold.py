"""jaxspec 0.4.1: load ULX-4 (spectrum + responses) and build its transfer matrix."""

from __future__ import annotations

import time

import common
from common import _util

args = _util.parse_args({"repeat": 3})
clock = _util.Clock()
with clock("import"):
    common.setup_jax(1)
    from jaxspec.data import ObsConfiguration  # noqa: F401

times = []
for _ in range(args.repeat):
    t0 = time.perf_counter()
    obs = common.ulx4_obsconf()
    tm = obs.transfer_matrix.data
    times.append(time.perf_counter() - t0)
_util.emit(args.out, {"side": "jaxspec", "problem": "load_fold_ulx4", "phases": clock.phases,
                      "first_s": times[0], "best_s": min(times), "fold_shape": list(tm.shape)})
