"""Plots of a real fit: what each figure contains, its options and its errors."""

from __future__ import annotations

import dataclasses
import io

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from _shared import MODEL, ULX  # noqa: E402  (one compiled problem per session)

from jxspec_nb.data import load_observation  # noqa: E402
from jxspec_nb.errors import FitError  # noqa: E402
from jxspec_nb.inference import fit, model_with_priors  # noqa: E402
from jxspec_nb.results import plots  # noqa: E402


@pytest.fixture(scope="module")
def result(shared_data):
    obs = load_observation(shared_data / ULX, band=(0.5, 10.0), name="ulx")
    spec = model_with_priors(MODEL)
    return fit(spec, obs, chains=2, warmup=60, samples=90, seed=3, progress=False)


def _render(fig) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=40)
    assert buf.getvalue()[:4] == b"\x89PNG"


def _data_points(ax) -> tuple[np.ndarray, np.ndarray]:
    """x and y of the 'data' error bars of an axis."""
    for container in ax.containers:
        if container.get_label() == "data":
            x, y = container.lines[0].get_data()
            return np.asarray(x), np.asarray(y)
    raise AssertionError("no data points")


def test_ppc_default(result):
    fig = plots.plot_ppc(result)
    top, bottom = fig.axes
    assert top.get_xscale() == "log" and top.get_yscale() == "log"
    assert bottom.get_xlabel() == "energy (keV)" and "σ" in bottom.get_ylabel()
    labels = [t.get_text() for t in top.get_legend().get_texts()]
    for label in ("data", "model (ulx)", "68% predictive", "95% predictive", "powerlaw",
                  "bbodyrad", "background"):
        assert label in labels
    obs = result.observations[0]
    x, y = _data_points(top)
    assert x.size == obs.counts.size
    rate = obs.counts / obs.exposure / (obs.channel_hi - obs.channel_lo)
    np.testing.assert_allclose(y, rate)
    resid = bottom.containers[0].lines[0].get_data()[1]
    assert np.all(np.abs(resid) < 6) and abs(np.mean(resid)) < 1.0  # a good fit
    assert plt.get_fignums() == []  # not left open in pyplot: shown once in a notebook
    _render(fig)


def test_ppc_rebin_is_display_only(result):
    obs = result.observations[0]
    fig = plots.plot_ppc(result, rebin=8.0, components=False, background=False)
    top = fig.axes[0]
    x, y = _data_points(top)
    assert 3 < x.size < obs.counts.size
    labels = [t.get_text() for t in top.get_legend().get_texts()]
    assert "powerlaw" not in labels and "background" not in labels
    data = plots.ppc_data(result, 0).rebinned(8.0)
    assert data.counts.sum() == obs.counts.sum() and data.counts.size == x.size
    net = data.counts - data.background
    assert np.all(net[:-1] / np.sqrt(data.counts[:-1]) >= 8.0)
    assert result.observations[0].counts.size == obs.counts.size  # the fit's data untouched
    _render(fig)


def test_ppc_channel_axis_linear(result):
    obs = result.observations[0]
    fig = plots.plot_ppc(result, x="channel", yscale="linear")
    top, bottom = fig.axes
    assert top.get_xscale() == "linear" and top.get_yscale() == "linear"
    assert bottom.get_xlabel() == "channel" and "channel" in top.get_ylabel()
    x, _ = _data_points(top)
    np.testing.assert_allclose(x, 0.5 * (obs.first_channel + obs.last_channel))
    _render(fig)


def test_ppc_errors(result):
    with pytest.raises(FitError, match="obs_index 3 is out of range"):
        plots.plot_ppc(result, 3)
    with pytest.raises(FitError, match="x must be 'energy' or 'channel'"):
        plots.plot_ppc(result, x="wavelength")
    with pytest.raises(FitError, match="yscale"):
        plots.plot_ppc(result, yscale="symlog")


def test_rebin_groups_respects_gaps():
    lo = np.array([0.0, 1.0, 2.0, 5.0, 6.0, 7.0])
    starts = plots.rebin_groups(np.ones(6), np.ones(6), lo, lo + 1.0, 2.0)
    assert starts.tolist() == [0, 3]  # never merged across the 3-5 keV gap
    assert plots.rebin_groups(np.full(4, 100.0), np.full(4, 100.0), lo[:4], lo[:4] + 1,
                              3.0).tolist() == [0, 1, 2, 3]


def test_corner(result):
    fig = plots.plot_corner(result)
    k = len(result.spec.free_names)
    assert len(fig.axes) == k * k
    xlabels = [ax.get_xlabel() for ax in fig.axes[-k:]]
    assert xlabels == [("log10(" + n + ")") if "norm" in n else n for n in result.spec.free_names]
    small = plots.plot_corner(result, params=["tbabs.nH", "powerlaw.PhoIndex"], log_scale=False,
                              truths={"tbabs.nH": 0.15, "powerlaw.PhoIndex": 2.3})
    assert len(small.axes) == 4 and plt.get_fignums() == []
    with pytest.raises(FitError, match="no samples for"):
        plots.plot_corner(result, params=["powerlaw.Gamma"])
    _render(small)


def test_trace(result):
    fig = plots.plot_trace(result)
    k = len(result.spec.free_names)
    assert len(fig.axes) == 2 * k
    assert [ax.get_ylabel() for ax in fig.axes[::2]] == list(result.spec.free_names)
    chains, draws = result.draws.shape
    assert len(fig.axes[0].lines) == chains and fig.axes[0].lines[0].get_xdata().size == draws
    _render(fig)


def test_elbo(result):
    with pytest.raises(FitError, match="no ELBO curve"):
        plots.plot_elbo(result)
    curve = -1000.0 / np.arange(1, 201) - 150.0
    fig = plots.plot_elbo(dataclasses.replace(result, method="vi", elbo=curve))
    (ax,) = fig.axes
    np.testing.assert_allclose(ax.lines[0].get_ydata(), curve)
    assert ax.get_ylim()[0] > curve[0]  # the huge first steps are left out of the range
    _render(fig)


def test_result_methods_delegate(result):
    assert len(result.plot_corner().axes) == len(result.spec.free_names) ** 2
    assert len(result.plot_ppc(rebin=5).axes) == 2
