"""The magics through a real IPython InteractiveShell, and the progress widget's state."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest
from _shared import MODEL, ULX  # noqa: E402  (one compiled problem per session)
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from jxspec_nb.data import Observation
from jxspec_nb.notebook import widgets
from jxspec_nb.notebook.widgets import WidgetProgress, format_info, format_seconds

FAST = "--chains 2 --warmup 60 --samples 90 --seed 3"  # two chunks of 100 steps


@pytest.fixture(scope="module")
def ip():
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "jxspec_nb")
    yield shell
    for name in list(shell.user_ns):
        if not name.startswith("_"):
            shell.user_ns.pop(name, None)


@pytest.fixture(scope="module")
def ulx(ip, shared_data):
    ip.run_line_magic("xdata", f"ulx = {shared_data / ULX} --band 0.5 10")
    ip.run_cell_magic("xmodel", "m", MODEL)
    return ip.user_ns["ulx"]


@pytest.fixture(scope="module")
def fitted(ip, ulx):
    return ip.run_line_magic("xfit", f"m ulx {FAST} --quiet -o r")


def test_load_ext_registers_magics_without_jax():
    code = (
        "import sys; from IPython.core.interactiveshell import InteractiveShell; "
        "ip = InteractiveShell.instance(); ip.run_line_magic('load_ext', 'jxspec_nb'); "
        "m = ip.magics_manager.magics; "
        "ours = {'xdata', 'xfit', 'xplot', 'xsim', 'xmodel'}; "
        "print(sorted(ours & set(m['line'])), sorted(ours & set(m['cell'])), "
        "[h for h in ('jax', 'numpyro', 'matplotlib') if h in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['xdata', 'xfit', 'xplot', 'xsim'] ['xmodel'] []"


# ------------------------------------------------------------------ %xdata


def test_xdata_binds_and_returns(ip, ulx, shared_data):
    assert isinstance(ulx, Observation) and ulx.name == "ulx"
    assert ulx.channel_lo[0] >= 0.5 - 0.05 and ulx.channel_hi[-1] <= 10.0
    assert ulx.background is not None  # BACKFILE from the header
    html = ulx._repr_html_()
    assert "EPN" in html and "20266 s" in html and "10131 in 104 groups" in html
    assert f"104 channels × {ulx.fold.shape[1]} energies" in html


def test_xdata_every_option(ip, shared_data):
    d = shared_data / "chandra_acis/3c273"
    obs = ip.run_line_magic(
        "xdata",
        f"c=  {d / '3c273.pi'} --band 0.5 7 --bkg none --rmf {d / '3c273.rmf'} "
        f"--arf {d / '3c273.arf'} --group min:20",
    )
    assert ip.user_ns["c"] is obs and obs.name == "c"
    assert obs.background is None and obs.grouping.startswith("min")
    assert obs.counts.min() >= 20 and obs.channel_hi[-1] <= 7.0 + 0.02
    h = shared_data / "chandra_hetg/3c120"
    row = ip.run_line_magic(
        "xdata", f"heg = '{h / '3c120_pha2.gz'}' --row 2 --rmf diagonal "
                 f"--arf {h / '3c120_heg_-1.arf.gz'} --band 2 7 --group none",
    )
    assert row.name == "heg" and row.counts.size == 1770 and row.grouping == "none"
    packaged = ip.run_line_magic("xdata", "pk = dataset:ngc7793_ulx4 --bkg none")
    assert packaged.background is None and packaged.name == "pk"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("ulx2 /x.pha", "expected 'NAME = PATH'"),
        ("1x = a.pha", "'1x' is not a valid Python name"),
        ("x = ", "nothing after '='"),
        ("x = /nonexistent/spectrum.pha", "nonexistent/spectrum.pha"),
        ("x = dataset:m87", "unknown dataset 'm87'"),
        ("x = dataset:ngc7793_ulx4 --band 5 1", "--band needs LO < HI"),
        ("x = a.pha --row two", "invalid int value"),
        ("x = a.pha --bogus 1", "unrecognized arguments"),
        ("x = dataset:ngc7793_ulx4 --group sometimes", "sometimes"),
    ],
)
def test_xdata_errors_are_one_line(ip, line, message):
    with pytest.raises(UsageError, match=None) as info:
        ip.run_line_magic("xdata", line)
    text = str(info.value)
    assert message in text and "\n" not in text


# ------------------------------------------------------------------ %%xmodel


def test_xmodel_binds_spec_and_displays(ip, ulx):
    spec = ip.user_ns["m"]
    assert spec.free_names[:3] == ("tbabs.nH", "powerlaw.PhoIndex", "powerlaw.norm")
    html = spec._repr_html_()
    assert "LogUniform(1e-05, 0.1)" in html and "tbabs*(powerlaw + bbodyrad)" in html
    again = ip.run_cell_magic("xmodel", "m2", "tbabs*powerlaw\ntbabs.nH = 0.1\n"
                              "powerlaw.PhoIndex ~ Uniform(0, 4)\n"
                              "powerlaw.norm ~ LogUniform(1e-5, 1e-1)\n")
    assert ip.user_ns["m2"] is again and again.fixed["tbabs.nH"] == 0.1


@pytest.mark.parametrize(
    ("line", "cell", "message"),
    [
        ("m", "tbabs*(powerlaw + bbodyrd)\n", "line 1, column 19: unknown component 'bbodyrd' "
                                              "(did you mean 'bbodyrad'?)"),
        ("m", "tbabs*powerlaw\ntbabs.nH ~ Unifrm(0, 1)\n", "line 2, column 12"),
        ("m", "# comment\ntbabs*powerlaw\npowerlaw.PhoIdx ~ Uniform(0, 1)\n",
         "line 3, column 1: unknown parameter 'powerlaw.PhoIdx'"),
        ("m", "tbabs*powerlaw\ntbabs.nH ~ Uniform(0, 1)\n", "without a prior"),
        ("m", "   \n", "the cell is empty"),
        ("class", "powerlaw\n", "'class' is not a valid Python name"),
        ("", "powerlaw\n", "arguments are required"),
    ],
)
def test_xmodel_errors_name_line_and_column(ip, line, cell, message):
    with pytest.raises(UsageError) as info:
        ip.run_cell_magic("xmodel", line, cell)
    assert message in str(info.value) and "\n" not in str(info.value)


# ------------------------------------------------------------------ %xfit


def test_xfit_options_and_binding(ip, fitted):
    assert ip.user_ns["r"] is fitted
    post = fitted.idata.posterior
    assert post.sizes["chain"] == 2 and post.sizes["draw"] == 90
    assert fitted.method == "nuts" and fitted.observations[0].name == "ulx"
    assert 1.0 < np.median(fitted.samples()["powerlaw.PhoIndex"]) < 3.5
    html = fitted._repr_html_()
    assert "powerlaw.PhoIndex" in html and "R-hat" in html


def test_xfit_default_name_text_progress_and_options(ip, ulx, capsys):
    result = ip.run_line_magic(
        "xfit", f"m ulx {FAST} --stat cstat -O chunk=100 -O max_tree_depth=10"
    )
    assert ip.user_ns["m_fit"] is result and result.stat in ("cstat", "wstat")  # W-stat: bkg
    err = capsys.readouterr().err
    assert "nuts: 2 chain(s)" in err and "done" in err  # the text reporter outside a kernel


def test_xfit_forwards_every_option(ip, ulx, monkeypatch):
    import jxspec_nb.inference

    calls = []

    def recorder(spec, observations, **kwargs):
        calls.append((spec, observations, kwargs))
        return "sentinel"

    monkeypatch.setattr(jxspec_nb.inference, "fit", recorder)
    ip.user_ns["start"] = {"powerlaw.PhoIndex": 2.0}
    out = ip.run_line_magic(
        "xfit", "m ulx,ulx --method vi --chains 3 --warmup 7 --samples 11 --steps 13 --seed 17 "
                "--stat wstat --background bayesian -O learning_rate=0.01 -O guide='diag' "
                "--init start -o v --quiet")
    assert out == "sentinel" and ip.user_ns["v"] == "sentinel"
    ((spec, observations, kwargs),) = calls
    assert spec is ip.user_ns["m"] and [o.name for o in observations] == ["ulx", "ulx"]
    progress = kwargs.pop("progress")
    assert type(progress).__name__ == "_Silent"
    assert kwargs == {"method": "vi", "chains": 3, "warmup": 7, "samples": 11, "steps": 13,
                      "seed": 17, "stat": "wstat", "background": "bayesian",
                      "learning_rate": 0.01, "guide": "diag", "init": {"powerlaw.PhoIndex": 2.0}}


def test_xfit_several_observations(ip, ulx):
    from jxspec_nb.notebook.magics import JxspecMagics

    magics = JxspecMagics(shell=ip)
    ip.user_ns["pair"] = [ulx, ip.user_ns["pk"]] if "pk" in ip.user_ns else [ulx, ulx]
    names = [o.name for o in magics._observations("ulx, pair", "xfit")]
    assert len(names) == 3 and names[0] == "ulx"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("nomodel ulx", "no model named 'nomodel'; define it in a cell starting with %%xmodel"),
        ("m noobs", "no observation named 'noobs'; load one with %xdata noobs = PATH"),
        ("m m", "'m' is a ModelSpec, not an Observation"),
        ("m ulx --method hmc", "invalid choice: 'hmc'"),
        ("m ulx --background maybe", "invalid choice: 'maybe'"),
        ("m ulx --init nowhere", "no dict of starting values named 'nowhere'"),
        ("m ulx --init m", "--init m is a ModelSpec, not a dict"),
        ("m ulx --chains 0", "--chains must be a positive integer"),
        ("m ulx -o 2bad", "'2bad' is not a valid Python name"),
        ("m ulx -O nokey", "--option expects KEY=VALUE"),
        ("m ulx --quiet -O bogus=1", "method 'nuts' has no option 'bogus' (given with -O)"),
        ("m ulx --stat chi3 --quiet", "unknown stat 'chi3'"),
        ("bad ulx --quiet", "matches no observation"),
    ],
)
def test_xfit_errors(ip, ulx, line, message):
    ip.run_cell_magic("xmodel", "bad", MODEL + "powerlaw.norm[other] ~ LogUniform(1e-5, 1)\n")
    with pytest.raises(UsageError) as info:
        ip.run_line_magic("xfit", line)
    assert message in str(info.value) and "\n" not in str(info.value)


class _InterruptingProgress(WidgetProgress):
    """Raises KeyboardInterrupt in the second round of updates, like a kernel interrupt."""

    def update(self, *, chain, done, info):
        super().update(chain=chain, done=done, info=info)
        if done >= 100:
            raise KeyboardInterrupt


def test_xfit_interrupt_keeps_samples_and_widget_says_so(ip, ulx, monkeypatch):
    made = []

    def fake_auto():
        made.append(_InterruptingProgress(show=False))
        return made[-1]

    monkeypatch.setattr(widgets, "auto_progress", fake_auto)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = ip.run_line_magic("xfit", f"m ulx {FAST} -o cut")
    assert any("interrupted" in str(w.message) for w in caught)
    assert result.idata.posterior.sizes["draw"] == 40  # the 100 steps run: 60 warm-up + 40
    (progress,) = made
    assert progress.status == "interrupted"
    assert {b.bar_style for b in progress.bars} == {"warning"}
    assert "interrupted" in progress._header.value


# ------------------------------------------------------------------ %xsim / %xplot


def test_xsim_from_spec_result_and_model(ip, ulx, fitted):
    a = ip.run_line_magic("xsim", "s1 = m ulx --set powerlaw.norm=3e-4 --seed 1")
    b = ip.run_line_magic("xsim", "s2 = m ulx --set powerlaw.norm=3e-4 --seed 1 --scale 2")
    assert a.name == "s1" and ip.user_ns["s2"] is b and a.simulated
    assert 1.6 < b.counts.sum() / a.counts.sum() < 2.4
    c = ip.run_line_magic("xsim", "s3 = r ulx --no-background --seed 2")
    assert c.background is None
    assert abs(c.counts.sum() - ulx.counts.sum()) < 0.2 * ulx.counts.sum()
    ip.user_ns["bare"] = ip.user_ns["m"].model
    d = ip.run_line_magic("xsim", "s4 = bare ulx --set powerlaw.norm=1e-4 --set tbabs.nH=0.1 "
                                  "--set bbodyrad.norm=0.1 --set bbodyrad.kT=0.8")
    assert d.counts.sum() > 0


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("s = m ulx --set powerlaw.nrm=1", "unknown parameter 'powerlaw.nrm'"),
        ("s = m ulx --set powerlaw.norm=abc", "is not a number"),
        ("s = ulx ulx", "cannot simulate from a Observation"),
        ("s = m", "expected 'NAME = SOURCE OBS'"),
        ("s = nothing ulx", "no model or fit result named 'nothing'"),
    ],
)
def test_xsim_errors(ip, ulx, line, message):
    with pytest.raises(UsageError) as info:
        ip.run_line_magic("xsim", line)
    assert message in str(info.value)


def test_xplot_kinds_and_errors(ip, fitted):
    import matplotlib.figure

    for line in ("r", "r corner", "r trace", "r ppc --x channel --yscale linear --rebin 3 --obs 0"):
        assert isinstance(ip.run_line_magic("xplot", line), matplotlib.figure.Figure)
    for line, message in [
        ("r elbo", "no ELBO curve"),
        ("r ppc --obs 4", "obs_index 4 is out of range"),
        ("ulx", "is a Observation, not a FitResult"),
        ("r pie", "invalid choice: 'pie'"),
        ("zz", "no fit result named 'zz'"),
    ]:
        with pytest.raises(UsageError, match=message):
            ip.run_line_magic("xplot", line)


# ------------------------------------------------------------------ widgets


def test_widget_progress_state_per_chain():
    p = WidgetProgress(show=False, min_interval=0.0)
    p.start(method="nuts", total=200, chains=2, labels=["chain 0", "chain 1"])
    assert [b.description for b in p.bars] == ["chain 0", "chain 1"]
    assert all(b.max == 200 and b.value == 0 and b.bar_style == "info" for b in p.bars)
    p.update(chain=0, done=100, info={"step_size": 0.25, "accept_prob": 0.9, "divergences": 1})
    p.update(chain=1, done=50, info={"step_size": 0.5, "accept_prob": 0.8, "divergences": 2})
    assert [b.value for b in p.bars] == [100, 50]
    assert "step size 0.25" in p._stats[0].value and "acceptance 0.90" in p._stats[0].value
    footer = p._footer.value
    assert "elapsed" in footer and "remaining" in footer and "divergences (all chains) 3" in footer
    p.update(chain=None, done=200, info={})
    p.finish()
    assert [b.value for b in p.bars] == [200, 200] and p.status == "done"
    assert {b.bar_style for b in p.bars} == {"success"} and "remaining" not in p._footer.value


def test_widget_progress_overall_bar_and_other_diagnostics():
    p = WidgetProgress(show=False, min_interval=0.0)
    p.start(method="vi", total=1000, chains=1, labels=[])
    assert [b.description for b in p.bars] == ["vi"]
    p.update(chain=None, done=500, info={"elbo": -1234.5678})
    assert "ELBO -1235" in p._stats[0].value and p.remaining() > 0
    p.finish(interrupted=True)
    assert p.bars[0].bar_style == "warning" and "interrupted" in p._header.value


def test_auto_progress_is_text_outside_a_kernel():
    from jxspec_nb.inference.progress import TextProgress

    assert not widgets.in_kernel()
    assert isinstance(widgets.auto_progress(), TextProgress)


def test_formatting_helpers():
    assert format_seconds(None) == "?" and format_seconds(3.21) == "3.2 s"
    assert format_seconds(3725) == "1 h 2 min"
    assert format_info({"log_z": -101.23456, "steps": 7.0}) == "leapfrog steps 7 · ln Z -101.2"


def test_widget_prepared_then_filled_or_failed(ip, ulx, monkeypatch):
    p = WidgetProgress(show=False)
    p.prepare("nuts")
    box = p.widget
    assert p.status == "preparing" and "compiling" in p._header.value
    p.start(method="nuts", total=10, chains=1, labels=["chain 0"])
    assert p.widget is box and len(box.children) == 3 and p.bars[0].max == 10
    made = []
    monkeypatch.setattr(widgets, "auto_progress",
                        lambda: made.append(WidgetProgress(show=False)) or made[-1])
    ip.run_cell_magic("xmodel", "bad", MODEL + "powerlaw.norm[other] ~ LogUniform(1e-5, 1)\n")
    with pytest.raises(UsageError, match="matches no observation"):
        ip.run_line_magic("xfit", "bad ulx")
    assert made[0].status == "failed" and "matches no observation" in made[0]._header.value
