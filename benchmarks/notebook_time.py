"""(e) time from ``%load_ext`` (a fresh kernel) to a rendered result, via nbclient.

Runs in the project's .venv (nbclient lives there) for both sides: ``--side jxspec_nb``
uses the project's python3 kernel; ``--side jaxspec`` registers a kernel spec for
benchmarks/.venv-jaxspec (it needs ipykernel, which run.py installs there) and runs
the same problem written with jaxspec's API. Each cell's duration comes from nbclient's
timing metadata; the total includes the kernel's start.
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import datetime

import _util

args = _util.parse_args({"side": "jxspec_nb"})
warm, samples = (300, 300) if args.quick else (1000, 1000)

PRIORS = "\n".join(f"{n} ~ {k}({lo:g}, {hi:g})" for n, (k, lo, hi) in _util.ULX4_PRIORS.items())
OURS = [
    "%load_ext jxspec_nb",
    "%xdata ulx4 = dataset:ngc7793_ulx4 --band 0.5 10 --bkg none",
    "%%xmodel ulx\ntbabs*(powerlaw + bbodyrad)\n" + PRIORS,
    f"%xfit ulx ulx4 --chains 4 --warmup {warm} --samples {samples} --quiet",
]
JAXSPEC = [
    "import sys; sys.path.insert(0, {bench!r}); sys.path.insert(0, {side!r})\n"
    "import common\ncommon.setup_jax(4)",
    "obs = common.ulx4_obsconf()",
    "from jaxspec.fit import MCMCFitter\n"
    "fitter = MCMCFitter(common.ulx4_model(), common.ulx4_prior(), obs)",
    f"result = fitter.fit(num_chains=4, num_warmup={warm}, num_samples={samples}, "
    "mcmc_kwargs={{'progress_bar': False}})\n"
    "import arviz as az\naz.summary(result.inference_data)",
]


def kernel_for_jaxspec() -> str:
    kdir = _util.OUT_DIR / "kernels" / "kernels" / "jaxspec-bench"
    kdir.mkdir(parents=True, exist_ok=True)
    py = str(_util.HERE / ".venv-jaxspec" / "bin" / "python")
    (kdir / "kernel.json").write_text(json.dumps({
        "argv": [py, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "jaxspec bench", "language": "python",
        "env": {"XDG_CACHE_HOME": str(_util.OUT_DIR / "jaxspec_cache")},
    }))
    os.environ["JUPYTER_PATH"] = str(_util.OUT_DIR / "kernels")
    return "jaxspec-bench"


import nbformat  # noqa: E402
from nbclient import NotebookClient  # noqa: E402

if args.side == "jaxspec":
    kernel = kernel_for_jaxspec()
    src = [c.format(bench=str(_util.HERE), side=str(_util.HERE / "jaxspec_side"))
           for c in JAXSPEC]
else:
    kernel = "python3"
    src = OURS
nb = nbformat.v4.new_notebook()
nb.cells = [nbformat.v4.new_code_cell(s) for s in src]
client = NotebookClient(nb, kernel_name=kernel, timeout=600, record_timing=True,
                        resources={"metadata": {"path": str(_util.HERE)}})
t0 = time.perf_counter()
client.execute()
total = time.perf_counter() - t0


def cell_seconds(cell) -> float:
    ex = cell.metadata.get("execution", {})
    a, b = ex.get("iopub.execute_input"), ex.get("shell.execute_reply")
    if not (a and b):
        return float("nan")
    f = "%Y-%m-%dT%H:%M:%S.%fZ"
    return (datetime.strptime(b, f) - datetime.strptime(a, f)).total_seconds()


last = nb.cells[-1].outputs
rendered = any("text/html" in o.get("data", {}) for o in last)
cells = [cell_seconds(c) for c in nb.cells]
print(f"[notebook {args.side}] total {total:.1f} s, cells {cells}, html={rendered}",
      file=sys.stderr)
_util.emit(args.out, {
    "side": args.side,
    "problem": "notebook_load_ext_to_result",
    "total_s": total,
    "kernel_start_and_overhead_s": total - sum(c for c in cells if c == c),
    "cell_s": cells,
    "rendered_html": rendered,
    "config": {"warmup": warm, "samples": samples},
})
