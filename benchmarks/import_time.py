"""(f) import time, in-process, of a comma-separated list of statements' modules.

Run with either interpreter: ``python import_time.py --what jxspec_nb --out X``.
``--what`` is one of the keys of WHAT below.
"""

from __future__ import annotations

import time

T0 = time.perf_counter()

import _util  # noqa: E402

WHAT = {
    # the package alone (lazy), and what a fit script touches first
    "jxspec_nb": "import jxspec_nb",
    "jxspec_nb_fit": "from jxspec_nb import fit, load_observation, model_with_priors; "
    "import jxspec_nb.inference._fit",
    "jaxspec": "import jaxspec",
    "jaxspec_fit": "from jaxspec.data import ObsConfiguration; from jaxspec.fit import MCMCFitter;"
    " from jaxspec.model.additive import Powerlaw, Blackbodyrad;"
    " from jaxspec.model.multiplicative import Tbabs",
}
args = _util.parse_args({"what": "jxspec_nb"})
t0 = time.perf_counter()
exec(WHAT[args.what])  # noqa: S102  (fixed statements above, not user input)
dt = time.perf_counter() - t0
_util.emit(args.out, {"problem": f"import_{args.what}", "import_s": dt,
                      "statement": WHAT[args.what]})
