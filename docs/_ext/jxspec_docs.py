"""Sphinx extension of the jxspec_nb docs: pages generated from the code.

* :func:`components_markdown` writes the component reference from the model
  registry (:mod:`jxspec_nb.model.registry`), so the page lists exactly the
  components that ``parse_model`` accepts, with their parameters, units,
  defaults and limits as the code defines them.
* :func:`copy_tutorials` copies ``notebooks/*.ipynb`` into ``docs/tutorials/``
  (git-ignored there), where myst-nb executes them at build time.

Example:
    >>> text = components_markdown()          # doctest: +SKIP
    >>> "## powerlaw" in text                 # doctest: +SKIP
    True
"""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from jxspec_formulas import FORMULAS

__all__ = [
    "benchmarks_include",
    "components_markdown",
    "copy_tutorials",
    "registered_components",
    "setup",
]

_KIND_TITLES = {
    "additive": "Additive components",
    "multiplicative": "Multiplicative components",
    "convolution": "Convolution components",
}
_KIND_INTRO = {
    "additive": (
        "An additive component is a photon spectrum $A(E)$ in photons/cm²/s/keV; "
        "jxspec_nb integrates it over each energy bin (analytically where a closed "
        "form exists, otherwise by fixed Gauss–Legendre quadrature inside the bin)."
    ),
    "multiplicative": (
        "A multiplicative component is a dimensionless factor $M(E)$, averaged over "
        "each energy bin. For the absorbers, $n_H$ is in units of $10^{22}$ cm⁻² and "
        "$\\sigma(E)$, the photo-absorption cross section per H atom tabulated in the "
        "package for the named abundance set, in units of $10^{-22}$ cm²."
    ),
    "convolution": (
        "A convolution component acts on the spectrum of the expression it is "
        "applied to: `conv(expr)`, or, inside a product, on the factors to its right."
    ),
}


def registered_components() -> list[Any]:
    """The :class:`~jxspec_nb.model.registry.ComponentSpec` of every registered component."""
    from jxspec_nb.model.registry import component_names, get_component

    return [get_component(name) for name in component_names()]


def _number(x: float | None) -> str:
    if x is None:
        return "–"
    x = float(x)
    if math.isinf(x):
        return "−∞" if x < 0 else "+∞"
    text = f"{x:.6g}"
    if "e" in text:
        mant, exp = text.split("e")
        text = f"{mant}e{int(exp)}"
    return text.replace("-", "−")


def _unit(unit: str) -> str:
    return f"`{unit}`" if unit else "–"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _formula(spec: Any) -> str | None:
    extra = getattr(spec, "extra", None) or {}
    formula = extra.get("formula") if hasattr(extra, "get") else None
    return formula or FORMULAS.get(spec.name)


def _parameter_table(spec: Any) -> list[str]:
    rows = [
        "| Parameter | Default | Unit | Hard limits | Soft limits | Frozen | Meaning |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for p in spec.parameters:
        soft = getattr(p, "soft", None)
        soft_text = f"[{_number(soft[0])}, {_number(soft[1])}]" if soft else "–"
        rows.append(
            f"| `{spec.name}.{p.name}` | {_number(p.default)} | {_unit(p.unit)} "
            f"| [{_number(p.lower)}, {_number(p.upper)}] | {soft_text} "
            f"| {'yes' if p.frozen else 'no'} | {_cell(getattr(p, 'description', '') or '')} |"
        )
    return rows


def _section(spec: Any) -> list[str]:
    lines = [f"({spec.name}-component)=", f"### {spec.name}", ""]
    description = (spec.description or "").strip()
    kind = spec.kind
    origin = "" if getattr(spec, "builtin", True) else " (user-registered)"
    lines.append(f"*{kind}{origin}* — {description}" if description else f"*{kind}{origin}*")
    lines.append("")
    formula = _formula(spec)
    if formula:
        lines += ["$$", formula.strip(), "$$", ""]
    if spec.parameters:
        lines += _parameter_table(spec)
    else:
        lines.append("No parameters.")
    lines.append("")
    return lines


def components_markdown(specs: Iterable[Any] | None = None) -> str:
    """The MyST markdown of the component reference page.

    Args:
        specs: component specs to document; default: every registered component.

    Returns:
        The page text: a summary table, then one section per component with
        its formula and a table of its parameters (default, unit, hard and
        soft limits, frozen flag).
    """
    specs = list(registered_components() if specs is None else specs)
    out = [
        "# Component reference",
        "",
        "```{admonition} Generated page",
        ":class: note",
        "This page is written at every documentation build from the component",
        "registry (`jxspec_nb.model.registry`): it lists exactly the components",
        "that model expressions accept, with their parameters as the code defines them.",
        "```",
        "",
        "Parameters are named `component.parameter` in priors and results "
        "(`powerlaw.PhoIndex`); a repeated component is `gaussian_2`, `gaussian_3`... "
        "*Hard limits* bound what a prior may cover; *soft limits* are XSPEC's "
        "usual range, for orientation only. *Frozen* parameters are fixed at their "
        "default unless a prior line frees them. Energies $E$ are in keV, $K$ is "
        "`norm`. In Python: `jxspec_nb.model.registry.component_names()` and "
        "`get_component(name)`.",
        "",
    ]
    kinds = [k for k in _KIND_TITLES if any(s.kind == k for s in specs)]
    kinds += sorted({s.kind for s in specs} - set(kinds))
    out += ["| Component | Kind | Parameters | Description |", "| --- | --- | --- | --- |"]
    for kind in kinds:
        for s in (s for s in specs if s.kind == kind):
            params = ", ".join(f"`{p.name}`" for p in s.parameters) or "–"
            out.append(
                f"| [{s.name}](#{s.name}-component) | {kind} | {params} "
                f"| {_cell(s.description or '')} |"
            )
    out.append("")
    for kind in kinds:
        out += [f"## {_KIND_TITLES.get(kind, kind.title())}", ""]
        if kind in _KIND_INTRO:
            out += [_KIND_INTRO[kind], ""]
        for s in (s for s in specs if s.kind == kind):
            out += _section(s)
    return "\n".join(out).rstrip() + "\n"


def _write_if_changed(path: Path, text: str) -> None:
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def copy_tutorials(src: Path, dest: Path) -> list[Path]:
    """Copy the tutorial notebooks ``src/*.ipynb`` into ``dest`` (unchanged files stay).

    Copies of notebooks that no longer exist in ``src`` are removed.

    Returns:
        The copied paths, sorted.
    """
    dest.mkdir(parents=True, exist_ok=True)
    wanted = sorted(Path(src).glob("*.ipynb")) if Path(src).is_dir() else []
    names = {p.name for p in wanted}
    for stale in dest.glob("*.ipynb"):
        if stale.name not in names:
            stale.unlink()
    copied = []
    for nb in wanted:
        target = dest / nb.name
        if not target.exists() or target.read_bytes() != nb.read_bytes():
            shutil.copyfile(nb, target)
        copied.append(target)
    return copied


def benchmarks_include(results: Path, generated: Path) -> str:
    """MyST text that includes ``benchmarks/RESULTS.md``, or says it is not there yet.

    The text is written to ``docs/_generated/benchmarks.md`` (excluded from the
    documents, included by the performance guide), so the guide shows the
    benchmark tables exactly as the benchmark scripts last wrote them.
    """
    if results.is_file():
        rel = Path(os.path.relpath(results, generated.parent)).as_posix()
        return f"```{{include}} {rel}\n:relative-images:\n:heading-offset: 2\n```\n"
    return (
        "```{note}\nThe benchmark results (`benchmarks/RESULTS.md`) have not been "
        "generated in this checkout; run the scripts of `benchmarks/` to produce them.\n```\n"
    )


def _generate(app: Any) -> None:
    srcdir = Path(app.srcdir)
    _write_if_changed(srcdir / "reference" / "components.md", components_markdown())
    generated = srcdir / "_generated" / "benchmarks.md"
    results = srcdir.parent / "benchmarks" / "RESULTS.md"
    _write_if_changed(generated, benchmarks_include(results, generated))


def setup(app: Any) -> dict[str, Any]:
    """Sphinx entry point: regenerate the component page when the builder starts."""
    app.connect("builder-inited", _generate)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
