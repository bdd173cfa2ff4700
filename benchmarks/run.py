"""Benchmarks of jxspec_nb side by side with jaxspec 0.4.1: one entry point.

    python benchmarks/run.py                 # everything (about 65 min on 2 cores, 48 of
                                             # them jaxspec on Perseus)
    python benchmarks/run.py --quick         # short chains, for a smoke test
    python benchmarks/run.py --only nuts,vg  # some problems
    python benchmarks/run.py --label final   # results under benchmarks/_out/final/

Run it with the project's interpreter (``.venv/bin/python``). It creates
benchmarks/.venv-jaxspec (``python3 -m venv`` + ``pip install jaxspec==0.4.1``,
plus ``jaxns<3`` for jaxspec's nested sampler and ``ipykernel`` for the notebook
problem) if missing; jaxspec is never a dependency of jxspec_nb. Every problem
runs in a fresh subprocess; the whole-process wall time and peak RSS are measured
from outside (``os.wait4``). Raw JSON goes to benchmarks/_out/LABEL/, the table
of ratios to stdout and to benchmarks/_out/LABEL/table.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _util  # noqa: E402
import compare  # noqa: E402

OURS_PY = Path(sys.executable)
JAXSPEC_VENV = HERE / ".venv-jaxspec"
JAXSPEC_PY = JAXSPEC_VENV / "bin" / "python"
JAXSPEC_PINS = ["jaxspec==0.4.1", "jaxns<3", "ipykernel", "psutil"]
# the byte-identical tables jaxspec would fetch with pooch (sha256 from its registry)
POOCH_FILES = {
    "xsect_tbabs_wilm.fits": "3cf45e45c9d671c4c4fc128314b7c3a68b30f096eede6b3eb08bf55224a44935",
    "xsect_phabs_aspl.fits": "3eaffba2a62e3a611e0a4e1ff4a57342d7d576f023d7bbb632710dc75b9a5019",
    "xsect_wabs_angr.fits": "9b3073a477a30b52e207f2c4bf79afc6ae19abba8f207190ac4c697024f74073",
}
PROBLEMS = ("import", "load", "vg", "nuts", "methods", "notebook", "perseus")
# not in the default set: a longer jaxspec NUTS reference for the posterior agreement
# (the quantiles of a 4 x 1000 run carry ~0.05-0.1 sd of Monte-Carlo noise)
EXTRA = ("reference",)


def prepare_jaxspec() -> None:
    """Create the jaxspec venv once, and its offline pooch cache."""
    ok = JAXSPEC_PY.exists() and subprocess.run(
        [str(JAXSPEC_PY), "-c", "import jaxspec, jaxns, ipykernel, psutil;"
         "from importlib.metadata import version; assert version('jaxspec') == '0.4.1'"],
        capture_output=True).returncode == 0
    if not ok:
        print("[run] creating benchmarks/.venv-jaxspec with jaxspec 0.4.1 ...", flush=True)
        subprocess.run(["python3", "-m", "venv", str(JAXSPEC_VENV)], check=True)
        subprocess.run([str(JAXSPEC_PY), "-m", "pip", "install", "-q", *JAXSPEC_PINS],
                       check=True)
    cache = _util.OUT_DIR / "jaxspec_cache" / "jaxspec"
    cache.mkdir(parents=True, exist_ok=True)
    sources = [HERE.parent / "jxspec_nb" / "model" / "tables", _util.SHARED_DATA / "absorption"]
    for name, sha in POOCH_FILES.items():
        dest = cache / name
        if dest.exists() and _sha256(dest) == sha:
            continue
        for src in sources:
            if (src / name).exists() and _sha256(src / name) == sha:
                shutil.copyfile(src / name, dest)
                break


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_one(tag: str, python: Path, script: str, out: Path, *extra: str,
            env: dict[str, str] | None = None, quick: bool = False) -> dict:
    """Run one benchmark script in a fresh process; add outside wall time and peak RSS."""
    cmd = [str(python), str(HERE / script), "--out", str(out), *extra]
    if quick:
        cmd.append("--quick")
    full_env = dict(os.environ)
    full_env.setdefault("XDG_CACHE_HOME", str(_util.OUT_DIR / "jaxspec_cache"))
    full_env.update(env or {})
    log = out.with_suffix(".log")
    print(f"[run] {tag:28s} ...", end=" ", flush=True)
    t0 = time.perf_counter()
    launch = time.monotonic()
    with log.open("w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=full_env,
                                cwd=str(HERE / Path(script).parent))
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    print(f"{wall:7.1f} s  rc={code}", flush=True)
    if code != 0 or not out.exists():
        return {"tag": tag, "failed": True, "rc": code, "wall_s": wall,
                "log_tail": log.read_text()[-2000:]}
    data = json.loads(out.read_text())
    data.update(tag=tag, wall_s=wall, peak_rss_mb_outside=usage.ru_maxrss / 1024.0)
    ends = data.get("phase_end_monotonic") or {}
    if "summary" in ends:  # launch -> printed summary: the issues' "whole process"
        data["to_summary_s"] = ends["summary"] - launch
    out.write_text(json.dumps(data, indent=1))
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short runs (smoke test)")
    parser.add_argument("--only", default=",".join(PROBLEMS),
                        help=f"comma-separated subset of {','.join(PROBLEMS + EXTRA)}")
    parser.add_argument("--label", default="latest", help="folder under benchmarks/_out")
    parser.add_argument("--methods", default="aies,ns,vi,mle", help="problem (c) methods")
    parser.add_argument("--seeds", default="0",
                        help="comma-separated NUTS seeds for problem (a); the first is the "
                             "main row, medians over all are reported too")
    parser.add_argument("--method-seeds", default="0",
                        help="comma-separated seeds for problem (c)'s AIES and VI (not NS: "
                             "jaxspec's takes 3 minutes); the first is the main row, "
                             "medians over all are reported too")
    args = parser.parse_args()
    only = set(args.only.split(","))
    seeds = [int(x) for x in args.seeds.split(",")]
    out_dir = _util.OUT_DIR / args.label
    out_dir.mkdir(parents=True, exist_ok=True)
    prepare_jaxspec()
    q = args.quick
    res: dict[str, dict] = {}
    cold_dirs: list[Path] = []

    def cold_env() -> dict[str, str]:
        """A fresh, empty persistent compilation cache: every 'cold' run compiles."""
        cold_dirs.append(Path(tempfile.mkdtemp(prefix="jxspec_cold_cache_")))
        return {"JXSPEC_NB_CACHE": str(cold_dirs[-1])}

    warm = _util.OUT_DIR / "jxspec_warm_cache"

    def ours(tag, script, *extra, env=None):
        res[tag] = run_one(tag, OURS_PY, script, out_dir / f"{tag}.json", *extra,
                           env=env, quick=q)

    def theirs(tag, script, *extra):
        res[tag] = run_one(tag, JAXSPEC_PY, script, out_dir / f"{tag}.json", *extra, quick=q)

    if "import" in only:
        for what in ("jxspec_nb", "jxspec_nb_fit"):
            ours(f"import_{what}", "import_time.py", "--what", what)
        for what in ("jaxspec", "jaxspec_fit"):
            theirs(f"import_{what}", "import_time.py", "--what", what)
    if "load" in only:
        theirs("load_ulx4_jaxspec", "jaxspec_side/load_fold.py")
        for case in ("ulx4", "sxs_full", "sxs_band", "resolve_band"):
            ours(f"load_{case}_jxspec", "jxspec_side/load_fold.py", "--case", case)
    if "vg" in only:
        theirs("vg_jaxspec", "jaxspec_side/vg.py")
        ours("vg_jxspec", "jxspec_side/vg.py")
    if "nuts" in only:
        first = ("--seed", str(seeds[0]))
        theirs("nuts_jaxspec", "jaxspec_side/nuts.py", *first)
        ours("nuts_jxspec", "jxspec_side/nuts.py", *first, env=cold_env())
        ours("nuts_jxspec_warm_prime", "jxspec_side/nuts.py", *first,
             env={"JXSPEC_NB_CACHE": str(warm)})
        ours("nuts_jxspec_warm", "jxspec_side/nuts.py", *first, env={"JXSPEC_NB_CACHE": str(warm)})
        # further seeds, both sides: the leapfrog count per iteration, and so the time,
        # moves with the seed by about +-10 % (compare.py reports medians over seeds)
        for seed in seeds[1:]:
            theirs(f"nuts_jaxspec_s{seed}", "jaxspec_side/nuts.py", "--seed", str(seed))
            ours(f"nuts_jxspec_s{seed}", "jxspec_side/nuts.py", "--seed", str(seed),
                 env=cold_env())
            ours(f"nuts_jxspec_warm_s{seed}", "jxspec_side/nuts.py", "--seed", str(seed),
                 env={"JXSPEC_NB_CACHE": str(warm)})
    if "methods" in only:
        for m in args.methods.split(","):
            if m != "mle":
                theirs(f"{m}_jaxspec", "jaxspec_side/methods.py", "--method", m)
            ours(f"{m}_jxspec", "jxspec_side/methods.py", "--method", m, env=cold_env())
            if m != "mle":  # second run with a primed persistent cache, as a user's next fit
                wenv = {"JXSPEC_NB_CACHE": str(warm)}
                ours(f"{m}_jxspec_warm_prime", "jxspec_side/methods.py", "--method", m, env=wenv)
                ours(f"{m}_jxspec_warm", "jxspec_side/methods.py", "--method", m, env=wenv)
        for seed in [int(x) for x in args.method_seeds.split(",")][1:]:
            for m in [m for m in args.methods.split(",") if m in ("aies", "vi")]:
                theirs(f"{m}_jaxspec_s{seed}", "jaxspec_side/methods.py", "--method", m,
                       "--seed", str(seed))
                ours(f"{m}_jxspec_s{seed}", "jxspec_side/methods.py", "--method", m,
                     "--seed", str(seed), env=cold_env())
    if "notebook" in only:
        res["notebook_jaxspec"] = run_one("notebook_jaxspec", OURS_PY, "notebook_time.py",
                                          out_dir / "notebook_jaxspec.json", "--side",
                                          "jaxspec", quick=q)
        ours("notebook_jxspec", "notebook_time.py", "--side", "jxspec_nb", env=cold_env())
    if "reference" in only:  # a longer jaxspec NUTS: 4 x (1000 + 4000), for agreement only
        theirs("nuts_jaxspec_reference", "jaxspec_side/nuts.py", "--samples", "4000")
    if "perseus" in only:  # jaxspec reads the inputs our side writes (RMF, priors, start)
        prep = _util.OUT_DIR / "perseus_jaxspec"
        subprocess.run([str(OURS_PY), str(HERE / "jxspec_side" / "perseus.py"), "--prepare",
                        str(prep)], check=True, cwd=str(HERE / "jxspec_side"))
        for m in ("vi", "nuts"):
            theirs(f"perseus_{m}_jaxspec", "jaxspec_side/perseus.py", "--method", m,
                   "--problem", str(prep / "perseus_problem.json"))
            ours(f"perseus_{m}_jxspec", "jxspec_side/perseus.py", "--method", m, env=cold_env())
    for d in cold_dirs:
        shutil.rmtree(d, ignore_errors=True)

    merged = {}
    summary = out_dir / "summary.json"
    if summary.exists():
        merged = json.loads(summary.read_text())
    merged.update(res)
    merged["_machine"] = compare.machine()
    summary.write_text(json.dumps(merged, indent=1, default=str))
    table = compare.report(merged)
    (out_dir / "table.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
