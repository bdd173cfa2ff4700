"""Turn the raw JSON of one benchmark run into the table of ratios and checks.

    python benchmarks/compare.py [benchmarks/_out/LABEL/summary.json]

Ratios are jaxspec / jxspec_nb for times (> 1 means we are faster) and
jxspec_nb / jaxspec for ESS per second. Posterior agreement is measured in units
of jaxspec NUTS's posterior sd, per parameter (the worst parameter is shown).
"""

from __future__ import annotations

import json
import math
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def machine() -> dict[str, Any]:
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        model = next((ln.split(":", 1)[1].strip() for ln in lscpu.splitlines()
                      if ln.startswith("Model name")), "?")
        cpus = next((ln.split(":", 1)[1].strip() for ln in lscpu.splitlines()
                     if ln.startswith("CPU(s)")), "?")
    except OSError:
        model, cpus = platform.processor(), "?"
    try:
        load = Path("/proc/loadavg").read_text().split()[:3]
    except OSError:
        load = []
    return {"cpu": model, "cpus": cpus, "python": platform.python_version(),
            "platform": platform.platform(), "loadavg_at_end": load}


def _g(d: dict | None, *path: str) -> float:
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return math.nan
        d = d[p]
    try:
        return float(d)
    except (TypeError, ValueError):
        return math.nan


def _fmt(x: float, unit: str = "") -> str:
    if x != x:
        return "n/a"
    if abs(x) >= 100:
        s = f"{x:.0f}"
    elif abs(x) >= 10:
        s = f"{x:.1f}"
    elif abs(x) >= 0.01:
        s = f"{x:.2f}"
    else:
        s = f"{x:.2e}"
    return s + unit


def _median(xs: list[float]) -> float:
    xs = sorted(x for x in xs if x == x)
    if not xs:
        return math.nan
    n = len(xs)
    return xs[n // 2] if n % 2 else 0.5 * (xs[n // 2 - 1] + xs[n // 2])


def _spread(theirs: list[float], ours: list[float]) -> str:
    """'; per seed a - b' over the seeds' ratios theirs / ours (nothing when none)."""
    ratios = sorted(a / b for a, b in zip(theirs, ours, strict=True) if a == a and b == b)
    return f"; per seed {ratios[0]:.2f}x - {ratios[-1]:.2f}x" if ratios else ""


def _ratio(a: float, b: float) -> str:
    return "n/a" if (a != a or b != b or b == 0) else f"{a / b:.2f}x"


def agreement(ours: dict, ref: dict) -> dict[str, float]:
    """Worst |difference| / sd_ref of the median, q16 and q84 over parameters."""
    pa, pr = ours.get("posterior", {}).get("params", {}), ref.get("posterior", {}).get("params", {})
    out = {"median": 0.0, "q16": 0.0, "q84": 0.0}
    if not pa or not pr:
        return {k: math.nan for k in out}
    for name, r in pr.items():
        if name not in pa:
            return {k: math.nan for k in out}
        for k in out:
            out[k] = max(out[k], abs(pa[name][k] - r[k]) / r["sd"])
    return out


def report(res: dict[str, Any]) -> str:
    rows = ["| problem | quantity | jaxspec 0.4.1 | jxspec_nb | ratio | target |",
            "| --- | --- | --- | --- | --- | --- |"]

    def row(problem, quantity, theirs, ours, unit="s", target="", invert=False):
        ratio = _ratio(ours, theirs) if invert else _ratio(theirs, ours)
        rows.append(f"| {problem} | {quantity} | {_fmt(theirs, ' ' + unit if unit else '')} | "
                    f"{_fmt(ours, ' ' + unit if unit else '')} | {ratio} | {target} |")

    j, o = res.get("nuts_jaxspec", {}), res.get("nuts_jxspec", {})
    ow = res.get("nuts_jxspec_warm", {})
    row("(a) NUTS 4x(1000+1000)", "launch to printed summary (cold compile cache)",
        _g(j, "to_summary_s"), _g(o, "to_summary_s"), target=">= 10x")
    row("(a)", "launch to printed summary (warm persistent cache)", _g(j, "to_summary_s"),
        _g(ow, "to_summary_s"), target=">= 10x")
    row("(a)", "whole process to exit (cold; incl. the script's bookkeeping)", _g(j, "wall_s"),
        _g(o, "wall_s"))
    row("(a)", "whole process to exit (warm)", _g(j, "wall_s"), _g(ow, "wall_s"))
    row("(a)", "import", _g(j, "phases", "import"), _g(o, "phases", "import"))
    row("(a)", "setup (data + model + priors)", _g(j, "phases", "setup"),
        _g(o, "phases", "setup"))
    row("(a)", "compile (JAX compile events)", _g(j, "compile_s"), _g(o, "compile_s"),
        target="ours < 2 s")
    row("(a)", "sampling", _g(j, "sampling_s"), _g(o, "sampling_s"))
    row("(a)", "mean leapfrog steps / iteration", _g(j, "mean_steps_per_iter"),
        _g(o, "mean_steps_per_iter"), unit="")
    row("(a)", "min bulk ESS", _g(j, "posterior", "min_ess_bulk"),
        _g(o, "posterior", "min_ess_bulk"), unit="", invert=True)
    row("(a)", "min bulk ESS / s of sampling", _g(j, "posterior", "min_ess_per_s"),
        _g(o, "posterior", "min_ess_per_s"), unit="/s", target=">= 10x", invert=True)
    row("(a)", "max R-hat", _g(j, "posterior", "max_r_hat"), _g(o, "posterior", "max_r_hat"),
        unit="", target="< 1.01")
    row("(a)", "peak RSS", _g(j, "peak_rss_mb_outside"), _g(o, "peak_rss_mb_outside"),
        unit="MiB")

    seeds = sorted(int(k.rsplit("_s", 1)[1]) for k in res if k.startswith("nuts_jaxspec_s"))
    if seeds:  # the same problem at further seeds (run.py --seeds): medians and spread
        def per_seed(tag: str) -> list[float]:
            first = [_g(res.get(tag, {}), "to_summary_s")]
            return first + [_g(res.get(f"{tag}_s{s}", {}), "to_summary_s") for s in seeds]

        j_t = per_seed("nuts_jaxspec")
        for label, tag in (("cold", "nuts_jxspec"), ("warm", "nuts_jxspec_warm")):
            o_t = per_seed(tag)
            row("(a)", f"launch to printed summary, {label}, median of {len(o_t)} seeds"
                f"{_spread(j_t, o_t)}", _median(j_t), _median(o_t), target=">= 10x")
        row("(a)", f"mean leapfrog steps / iteration, median of {len(j_t)} seeds",
            _median([_g(res.get(t, {}), "mean_steps_per_iter") for t in
                     ["nuts_jaxspec"] + [f"nuts_jaxspec_s{s}" for s in seeds]]),
            _median([_g(res.get(t, {}), "mean_steps_per_iter") for t in
                     ["nuts_jxspec_warm"] + [f"nuts_jxspec_warm_s{s}" for s in seeds]]),
            unit="")

    j, o = res.get("vg_jaxspec", {}), res.get("vg_jxspec", {})
    row("(b) v&g", "potential value+grad per call", _g(j, "potential_vg", "per_call_us"),
        _g(o, "potential_vg", "per_call_us"), unit="us", target=">= 10x")
    row("(b)", "potential value+grad in a compiled loop", _g(j, "potential_vg", "in_loop_us"),
        _g(o, "potential_vg", "in_loop_us"), unit="us", target=">= 10x")
    row("(b)", "model tbabs*(po+bbrad) v+grad, 2067 bins", _g(j, "model_vg", "per_call_us"),
        _g(o, "model_vg", "per_call_us"), unit="us", target=">= 10x")
    row("(b)", "model v+grad in a compiled loop", _g(j, "model_vg", "in_loop_us"),
        _g(o, "model_vg", "in_loop_us"), unit="us", target=">= 10x")
    row("(b)", "model value only, 2067 bins", _g(j, "model_eval", "per_call_us"),
        _g(o, "model_eval", "per_call_us"), unit="us")
    floor = _g(o, "floor", "min_us")
    rows.append(f"| (b) | fold floor per call: matvec + transpose ({o.get('fold_nnz', '?')} "
                f"nonzeros) | | {_fmt(floor, ' us')} | potential / floor = "
                f"{_ratio(_g(o, 'potential_vg', 'per_call_us'), floor)} | within 3x |")
    floor = _g(o, "floor", "min_in_loop_us")
    impl = o.get("floor", {}).get("min_in_loop_impl", "?")
    rows.append(f"| (b) | fold floor in a compiled loop (fastest: {impl}) | "
                f"| {_fmt(floor, ' us')} | potential / floor = "
                f"{_ratio(_g(o, 'potential_vg', 'in_loop_us'), floor)} | within 3x |")
    tr_j, tr_o = (_g(d, "potential_transcendentals", "count") for d in (j, o))
    rows.append(f"| (b) | transcendentals (exp, log, pow) per potential v&g, XLA's cost analysis "
                f"| {_fmt(tr_j)} | {_fmt(tr_o)} | | |")
    exp_ns = _g(o, "potential_transcendentals", "exp_ns")
    both = floor + _g(o, "potential_transcendentals", "floor_us")
    rows.append(f"| (b) | fold floor in a loop + transcendentals x one float64 exp "
                f"({_fmt(exp_ns, ' ns')}) | | {_fmt(both, ' us')} | jaxspec / this floor = "
                f"{_ratio(_g(j, 'potential_vg', 'in_loop_us'), both)} | 10x needs "
                f"{_fmt(_g(j, 'potential_vg', 'in_loop_us') / 10, ' us')} |")

    for m in ("aies", "ns", "vi"):
        j, o = res.get(f"{m}_jaxspec", {}), res.get(f"{m}_jxspec", {})
        ow = res.get(f"{m}_jxspec_warm", {})
        row(f"(c) {m.upper()}", "launch to printed summary (cold)", _g(j, "to_summary_s"),
            _g(o, "to_summary_s"), target=">= 5x")
        if ow:
            row(f"(c) {m.upper()}", "launch to printed summary (warm)", _g(j, "to_summary_s"),
                _g(ow, "to_summary_s"), target=">= 5x")
        seeds = sorted(int(k.rsplit("_s", 1)[1]) for k in res if k.startswith(f"{m}_jaxspec_s"))
        if seeds:  # run.py --method-seeds: both sides cold at each seed
            j_t = [_g(j, "to_summary_s")] + [_g(res.get(f"{m}_jaxspec_s{s}", {}), "to_summary_s")
                                             for s in seeds]
            o_t = [_g(o, "to_summary_s")] + [_g(res.get(f"{m}_jxspec_s{s}", {}), "to_summary_s")
                                             for s in seeds]
            row(f"(c) {m.upper()}", f"launch to printed summary, cold, median of {len(o_t)} "
                f"seeds{_spread(j_t, o_t)}", _median(j_t), _median(o_t), target=">= 5x")
        row(f"(c) {m.upper()}", "whole process to exit (cold)", _g(j, "wall_s"), _g(o, "wall_s"))
        row(f"(c) {m.upper()}", "fit call", _g(j, "phases", "fit"), _g(o, "phases", "fit"))
    o = res.get("mle_jxspec", {})
    if o:
        rows.append(f"| (c) MLE | whole process / fit statistic | | {_fmt(_g(o, 'wall_s'), ' s')}"
                    f" / C={_fmt(_g(o, 'extra', 'fit_statistic'))} | | global minimum |")

    for m in ("vi", "nuts"):
        o = res.get(f"perseus_{m}_jxspec", {})
        j = res.get(f"perseus_{m}_jaxspec", {})
        if o and not o.get("failed"):
            def pm(q: str, side: dict) -> str:
                v = side.get("velocity", {})
                return f"{_fmt(_g(v, q, 'median'))} +/- {_fmt(_g(v, q, 'sd'))}"

            def side_text(d: dict, fit: Any, rh: Any, div: Any = None) -> str:
                if not d or d.get("failed"):
                    return "failed" if d else "not run"
                return (f"{_fmt(fit, ' s')} / {_fmt(_g(d, 'wall_s'), ' s')} / "
                        f"{_fmt(_g(d, 'peak_rss_mb_outside'))} MiB; {pm('sigma_v', d)}, "
                        f"{pm('v_bulk', d)}" + (f"; R-hat {rh:.3f}" if rh == rh else "")
                        + (f"; {div} divergences" if div is not None else ""))

            nuts = m == "nuts"
            theirs = side_text(j, _g(j, "phases", "fit"), _g(j, "extra", "max_r_hat"),
                               _g(j, "extra", "divergences") if nuts else None)
            ours = side_text(o, _g(o, "phases", "fit"), _g(o, "max_r_hat"),
                             o.get("divergences") if nuts else None)
            rows.append(
                f"| (d) Perseus SXS {m.upper()} | fit incl. compile / process / peak RSS; "
                f"sigma_v, v_bulk (km/s) | {theirs} | {ours} | "
                f"{_ratio(_g(j, 'phases', 'fit'), _g(o, 'phases', 'fit'))} | < 15 s |")
    j, o = res.get("notebook_jaxspec", {}), res.get("notebook_jxspec", {})
    row("(e) notebook", "fresh kernel -> rendered result", _g(j, "total_s"), _g(o, "total_s"))
    for a, b, label in (("import_jaxspec", "import_jxspec_nb", "import package"),
                        ("import_jaxspec_fit", "import_jxspec_nb_fit", "import fit API")):
        row("(f) import", label, _g(res.get(a), "import_s"), _g(res.get(b), "import_s"),
            target="ours < 0.3 s" if b == "import_jxspec_nb" else "")
    row("load+fold", "ULX-4 0.5-10 keV (first call)", _g(res.get("load_ulx4_jaxspec"), "first_s"),
        _g(res.get("load_ulx4_jxspec"), "first_s"), target="ours < 0.3 s")
    for case in ("sxs_full", "sxs_band", "resolve_band"):
        o = res.get(f"load_{case}_jxspec", {})
        rows.append(f"| load+fold | {case} (synthetic RMF), fold {o.get('fold_shape')} | | "
                    f"{_fmt(_g(o, 'first_s'), ' s')}, {_fmt(_g(o, 'peak_rss_mb_outside'))} MiB"
                    f" | | < 3 s |")

    checks = ["", "| check | result | target |", "| --- | --- | --- |"]
    fc = res.get("vg_jxspec", {}).get("fold_compare", {})
    if fc:
        checks.append(
            f"| fold ULX-4 0.5-10 keV vs jaxspec (issue 2) | rows {fc.get('shape_ours', ['?'])[0]}"
            f" vs {fc.get('shape_jaxspec', ['?'])[0]}; columns {fc.get('shape_ours')} vs "
            f"{fc.get('shape_jaxspec')} (jaxspec's extra columns all zero: "
            f"{fc.get('jaxspec_columns_outside_ours_all_zero')}); nonzeros "
            f"{fc.get('nnz_ours')} vs {fc.get('nnz_jaxspec')}; max rel diff "
            f"{_fmt(_g(fc, 'max_rel'))} | 104 groups, 1e-6 |")
    mc = res.get("vg_jxspec", {}).get("model_compare", {})
    if mc:
        checks.append(
            f"| model values vs jaxspec converged (issue 3) | median rel "
            f"{_fmt(_g(mc, 'vs_converged_significant', 'median'))}, max "
            f"{_fmt(_g(mc, 'vs_converged_significant', 'max'))} at "
            f"{_fmt(_g(mc, 'vs_converged_significant', 'worst_bin_keV'))} keV; bins > 1e-6: "
            f"{mc.get('n_above_1e-6', '?')} of {mc.get('n_significant', '?')} | 1e-6 |")
        checks.append(
            f"| model values vs jaxspec default n_points=2 | max rel "
            f"{_fmt(_g(mc, 'vs_n2_significant', 'max'))} | (jaxspec's own quadrature error) |")
    ref = res.get("nuts_jaxspec_reference") or res.get("nuts_jaxspec", {})
    ref_name = ("jaxspec NUTS 4x(1000+4000)" if "nuts_jaxspec_reference" in res
                else "jaxspec NUTS")
    for m, tol in (("nuts", "0.1 / 0.15"), ("ns", "0.1 / 0.15"), ("aies", "0.3"),
                   ("vi", "0.3"), ("mle", "")):
        o = res.get(f"{m}_jxspec", {})
        if not o or not ref or "posterior" not in o:
            continue
        a = agreement(o, ref)
        checks.append(
            f"| {m.upper()} vs {ref_name} (issue 4), in its sd | median "
            f"{_fmt(a['median'])}, q16 {_fmt(a['q16'])}, q84 {_fmt(a['q84'])}; R-hat "
            f"{_fmt(_g(o, 'posterior', 'max_r_hat'))} | {tol} |")
    for m in ("nuts", "aies", "ns", "vi"):
        j = res.get(f"{m}_jaxspec", {})
        if m == "nuts" and ref is j:
            continue
        if j and ref and "posterior" in j:
            a = agreement(j, ref)
            checks.append(
                f"| (jaxspec's own {m.upper()} vs {ref_name}) | median {_fmt(a['median'])}, "
                f"q16 {_fmt(a['q16'])}, q84 {_fmt(a['q84'])}; R-hat "
                f"{_fmt(_g(j, 'posterior', 'max_r_hat'))} | for reference |")
    failed = [f"- {k}: rc={v.get('rc')} ... {v.get('log_tail', '')[-300:]!r}"
              for k, v in res.items() if isinstance(v, dict) and v.get("failed")]
    m = res.get("_machine", {})
    head = [f"Machine: {m.get('cpu')} ({m.get('cpus')} CPUs), Python {m.get('python')}, "
            f"load average at end {m.get('loadavg_at_end')}", ""]
    tail = ["", "Failed runs:", *failed] if failed else []
    return "\n".join(head + rows + checks + tail) + "\n"


if __name__ == "__main__":
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "_out" / "latest" / "summary.json"
    print(report(json.loads(path.read_text())))
