"""The tutorials, executed in a fresh kernel with nbclient (widget state stored).

Each notebook must run without an error; the assertions look at what a reader
sees: the progress widgets' final state (through their models), the HTML result
tables, the figures, and the numbers the tutorials print.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO / "notebooks"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def execute(name: str, tmp_path: Path) -> nbformat.NotebookNode:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = NotebookClient(nb, timeout=400, kernel_name="python3", store_widget_state=True,
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            assert out.output_type != "error", f"{name}: {out.ename}: {out.evalue}"
    return nb


def cell(nb: nbformat.NotebookNode, startswith: str) -> nbformat.NotebookNode:
    return next(c for c in nb.cells if c.cell_type == "code" and c.source.startswith(startswith))


def mime(c: nbformat.NotebookNode, kind: str) -> list:
    return [o["data"][kind] for o in c.outputs if kind in o.get("data", {})]


def stream(c: nbformat.NotebookNode) -> str:
    return "".join(o.text for o in c.outputs if o.output_type == "stream")


def widget_models(nb: nbformat.NotebookNode, model_name: str) -> list[dict]:
    state = nb.metadata["widgets"][WIDGET_STATE]["state"]
    return [m["state"] for m in state.values() if m["model_name"] == model_name]


def seconds(c: nbformat.NotebookNode, key: str) -> datetime:
    return datetime.fromisoformat(c.metadata["execution"][key].replace("Z", "+00:00"))


def test_01_quickstart(tmp_path):
    nb = execute("01_quickstart.ipynb", tmp_path)
    fit = cell(nb, "%xfit m ulx4")
    assert len(mime(fit, WIDGET_VIEW)) == 1
    bars = widget_models(nb, "IntProgressModel")
    assert sorted(b["description"] for b in bars) == [f"chain {i}" for i in range(4)]
    assert all(b["value"] == b["max"] == 1000 and b["bar_style"] == "success" for b in bars)
    html = " ".join(m["value"] for m in widget_models(nb, "HTMLModel"))
    for text in ("step size", "acceptance", "divergences", "elapsed", ">done<"):
        assert text in html
    (table,) = mime(fit, "text/html")
    assert "FitResult" in table and "powerlaw.PhoIndex" in table and "4 × 500" in table
    for source in ("m_fit.plot_corner()", "%xplot m_fit ppc"):
        assert len(mime(cell(nb, source), "image/png")) == 1  # shown once
    assert "0.5-10 keV flux" in stream(cell(nb, "flux = "))
    start = seconds(cell(nb, "%load_ext"), "iopub.execute_input")
    done = seconds(fit, "shell.execute_reply")
    print(f"01_quickstart: %load_ext -> rendered NUTS result (4 x 500+500): "
          f"{(done - start).total_seconds():.1f} s")


def test_02_methods(tmp_path):
    nb = execute("02_methods.ipynb", tmp_path)
    methods = ("nuts", "aies", "ns", "vi", "mle")
    for method in methods:
        (table,) = mime(cell(nb, f"%xfit m ulx4 --method {method}"), "text/html")
        assert f"method</span>{method}" in table
    (side_by_side,) = mime(cell(nb, "import pandas"), "text/html")
    assert all(f"<th>{m}</th>" in side_by_side for m in methods)
    assert re.search(r"ln Z = -?\d+\.\d+ ± \d+\.\d+", stream(cell(nb, 'print(f"ln Z')))
    assert len(mime(cell(nb, "%xplot vi elbo"), "image/png")) == 1
    html = " ".join(m["value"] for m in widget_models(nb, "HTMLModel"))
    assert "ELBO" in html and "step size" in html


def _estimate(text: str, name: str) -> tuple[float, float]:
    match = re.search(rf"{re.escape(name)} = ([-\d.]+) \(\+([\d.]+) / -([\d.]+)\)", text)
    assert match, text
    value, up, down = (float(g) for g in match.groups())
    return value, max(up, down)


def test_03_high_resolution(tmp_path):
    nb = execute("03_high_resolution.ipynb", tmp_path)
    assert "SXS (simulated)" in mime(cell(nb, "from jxspec_nb.highres"), "text/html")[0]
    assert len(mime(cell(nb, "start = perseus_init"), WIDGET_VIEW)) == 1
    text = stream(cell(nb, "v = velocity_summary"))
    for name in ("sigma_v", "v_bulk"):
        value, err = _estimate(text, name)
        truth = float(re.search(rf"{name} = .*?\(simulated (-?\d+)\)", text).group(1))
        assert abs(value - truth) < 4 * err + 2.0, text
    assert len(mime(cell(nb, "fe_fit.plot_ppc"), "image/png")) == 1


def test_04_joint_fit(tmp_path):
    nb = execute("04_joint_fit.ipynb", tmp_path)
    (table,) = mime(cell(nb, "%xfit joint a,b"), "text/html")
    assert "cross.factor[b]" in table and "data</span>a, b" in table
    factor, err = _estimate(stream(cell(nb, "import numpy as np")), "cross.factor[b]")
    assert abs(factor - 1.15) < 4 * err
    assert len(mime(cell(nb, "%xplot joint_fit ppc --obs 1"), "image/png")) == 1


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.name)
def test_notebooks_are_stored_clean(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert all(not c.get("outputs") and c.get("execution_count") is None
               for c in nb.cells if c.cell_type == "code")
    assert "widgets" not in nb.metadata
