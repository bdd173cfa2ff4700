"""The documentation: generated component reference, and a full offline Sphinx build.

The component reference (docs/reference/components.md) is generated from the
model registry at build time by docs/_ext/jxspec_docs.py; the first tests check
that generator against the registry. The last test runs the real build, with
warnings as errors, and checks that every page was written.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
sys.path.insert(0, str(DOCS / "_ext"))

import jxspec_docs  # noqa: E402
from jxspec_formulas import FORMULAS  # noqa: E402

from jxspec_nb.model.registry import component_names, get_component  # noqa: E402


def _sections(text: str) -> dict[str, str]:
    """``{component name: its section text}`` of the generated page."""
    parts = re.split(r"^### ", text, flags=re.M)[1:]
    return {p.split("\n", 1)[0].strip(): p for p in parts}


def test_component_reference_lists_every_registered_component():
    text = jxspec_docs.components_markdown()
    sections = _sections(text)
    names = component_names()
    assert len(names) >= 20
    assert sorted(sections) == sorted(names)
    for name in names:
        spec = get_component(name)
        body = sections[name]
        assert f"*{spec.kind}" in body
        for p in spec.parameters:  # every parameter, with its unit
            row = next(r for r in body.splitlines() if r.startswith(f"| `{name}.{p.name}` |"))
            if p.unit:
                assert f"`{p.unit}`" in row
        assert f"[{name}](#{name}-component)" in text  # summary table links to it


def test_component_reference_values_come_from_the_registry():
    body = _sections(jxspec_docs.components_markdown())["bbodyrad"]
    kt = next(r for r in body.splitlines() if r.startswith("| `bbodyrad.kT` |"))
    spec = get_component("bbodyrad").parameters[0]
    cells = [c.strip() for c in kt.strip("|").split("|")]
    assert cells[1] == f"{spec.default:g}" and cells[2] == "`keV`"
    assert cells[3] == "[0, +∞]" and cells[5] == "no"
    red = next(r for r in _sections(jxspec_docs.components_markdown())["zpowerlw"].splitlines()
               if r.startswith("| `zpowerlw.Redshift` |"))
    assert "| yes |" in red  # frozen by default, as in XSPEC


def test_every_builtin_component_has_a_formula():
    """A new built-in component must come with its formula (here or in ComponentSpec.extra)."""
    missing = [
        n for n in component_names()
        if get_component(n).builtin
        and not (FORMULAS.get(n) or (get_component(n).extra or {}).get("formula"))
    ]
    assert missing == [], f"add a LaTeX formula for {missing} to docs/_ext/jxspec_formulas.py"
    stale = sorted(set(FORMULAS) - set(component_names()))
    assert stale == [], f"formulas of components that no longer exist: {stale}"


def test_generated_page_marks_user_components():
    from jxspec_nb.model import ComponentSpec, ParamSpec

    user = ComponentSpec("docstestline", "additive", (ParamSpec("norm", 1.0, "", 0.0, 10.0),),
                         description="a test line", builtin=False)
    text = jxspec_docs.components_markdown([get_component("powerlaw"), user])
    assert sorted(_sections(text)) == ["docstestline", "powerlaw"]
    assert "user-registered" in _sections(text)["docstestline"]
    assert "| `docstestline.norm` | 1 | – | [0, 10] |" in text


def test_benchmarks_include(tmp_path):
    gen = tmp_path / "docs" / "_generated" / "benchmarks.md"
    results = tmp_path / "benchmarks" / "RESULTS.md"
    assert "have not been generated" in jxspec_docs.benchmarks_include(results, gen)
    results.parent.mkdir()
    results.write_text("# Results\n")
    assert "{include} ../../benchmarks/RESULTS.md" in jxspec_docs.benchmarks_include(results, gen)


def test_copy_tutorials(tmp_path):
    src, dest = tmp_path / "nb", tmp_path / "docs" / "tutorials"
    src.mkdir()
    (src / "a.ipynb").write_text("{}")
    dest.mkdir(parents=True)
    (dest / "gone.ipynb").write_text("{}")
    copied = jxspec_docs.copy_tutorials(src, dest)
    assert [p.name for p in copied] == ["a.ipynb"]
    assert sorted(p.name for p in dest.glob("*.ipynb")) == ["a.ipynb"]


def test_sphinx_build_offline_without_warnings(tmp_path):
    """Full build (executes the MyST pages and the tutorials): exit 0, every page written."""
    out = tmp_path / "html"
    env = dict(os.environ, JAX_ENABLE_X64="1", JAX_PLATFORMS="cpu",
               JXSPEC_NB_CACHE=str(tmp_path / "jaxcache"))
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-E", "-b", "html",
         "-d", str(tmp_path / "doctrees"), str(DOCS), str(out)],
        capture_output=True, text=True, env=env, timeout=600,
    )
    log = proc.stdout[-3000:] + proc.stderr[-6000:]
    assert proc.returncode == 0, log
    assert "WARNING" not in proc.stderr.replace("[IPKernelApp] WARNING", ""), log
    sources = [p for p in DOCS.rglob("*") if p.suffix in (".md", ".ipynb")
               and not {"_build", "_generated", "jupyter_execute", ".ipynb_checkpoints"}
               & set(p.relative_to(DOCS).parts)]
    for src in sources:
        page = out / src.relative_to(DOCS).with_suffix(".html")
        assert page.is_file(), f"{page} not written"
    html = (out / "reference" / "components.html").read_text(encoding="utf-8")
    for name in component_names():
        assert f'id="{name}"' in html or f"{name}-component" in html
    assert (out / "genindex.html").is_file() and (out / "reference" / "api.html").is_file()
