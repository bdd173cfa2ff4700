"""Rich HTML displays: content, flags, escaping, and no JavaScript."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest
from _shared import MODEL, ULX  # noqa: E402  (one compiled problem per session)

from jxspec_nb.data import load_observation
from jxspec_nb.inference import fit, model_with_priors
from jxspec_nb.model import parse_model
from jxspec_nb.results import display


@pytest.fixture(scope="module")
def ulx(shared_data):
    return load_observation(shared_data / ULX, band=(0.5, 10.0), name="ulx")


@pytest.fixture(scope="module")
def result(ulx):
    spec = model_with_priors(MODEL)
    return fit(spec, ulx, chains=2, warmup=60, samples=90, seed=3, progress=False)


def _visible(html: str) -> str:
    """The HTML without its style block and text fallback."""
    html = re.sub(r"<style>.*?</style>", "", html, flags=re.S)
    return re.sub(r"<pre class='jxs-text-fallback'>.*?</pre>", "", html, flags=re.S)


def _check_frame(html: str, obj: object) -> None:
    assert "<script" not in html.lower() and "http" not in _visible(html)  # no CDN, no JS
    assert html.count("<style>") == 1 and ".jxs-text-fallback { display: none; }" in html
    fallback = re.search(r"<pre class='jxs-text-fallback'>(.*?)</pre>", html, flags=re.S)
    assert fallback is not None
    from html import unescape

    assert unescape(fallback.group(1)) == repr(obj)


def test_observation_html(ulx, shared_data):
    html = display.observation_html(ulx)
    _check_frame(html, ulx)
    body = _visible(html)
    n, m = ulx.fold.shape
    for text in ("XMM EPN", "20266 s", f"{int(ulx.counts.sum())} in {n} groups",
                 "grouping</span>file", f"{n} channels × {m} energies",
                 "PN_spectrum_grp20.fits", "in source region", "<svg", "<polyline"):
        assert text in body, text
    lo, hi = ulx.channel_lo[0], ulx.channel_hi[-1]
    assert f"{lo:.3g}–{hi:.3g} keV" in body
    assert ulx._repr_html_() == html

    d = shared_data / "chandra_acis/3c273"
    other = load_observation(d / "3c273.pi", bkg=None, group="min:20")
    body = _visible(display.observation_html(other))
    assert "CHANDRA ACIS" in body and "background</span>none" in body and "min" in body


def test_observation_html_escapes_text(ulx):
    evil = dataclasses.replace(ulx, name="<script>alert('x')</script>")
    html = display.observation_html(evil)
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_model_html():
    model = parse_model("tbabs*(powerlaw + bbodyrad + gaussian:fe)")
    html = display.model_html(model)
    _check_frame(html, model)
    body = _visible(html)
    assert body.count("<tr") == len(model.parameters) + 1
    assert "<td class='jxs-name'>fe.LineE</td><td class='jxs-num'>6.5</td><td class=''>keV" in body
    assert "tbabs*(powerlaw + bbodyrad + gaussian:fe)" in body or "fe" in body
    assert "1e22 cm^-2" in body and "∞" in body


def test_spec_html_statuses():
    spec = model_with_priors(
        "tbabs*(powerlaw + bbodyrad + bbodyrad)\n"
        "tbabs.nH = 0.05          # fixed\n"
        "powerlaw.PhoIndex ~ Uniform(0, 4)\n"
        "powerlaw.norm ~ LogUniform(1e-5, 0.1)\n"
        "bbodyrad.kT ~ Uniform(0.05, 3)\n"
        "bbodyrad.norm ~ LogUniform(1e-3, 10)\n"
        "bbodyrad_2.kT = 2 * bbodyrad.kT\n"
        "bbodyrad_2.norm = bbodyrad.norm\n"
        "cross.factor[b] ~ Uniform(0.5, 1.5)\n"
    )
    html = display.spec_html(spec)
    _check_frame(html, spec)
    rows = dict(re.findall(r"<td class='jxs-name'>([^<]+)</td><td class=''>(\w+)</td>", html))
    assert rows["tbabs.nH"] == "fixed" and rows["powerlaw.norm"] == "free"
    assert rows["bbodyrad_2.kT"] == "tied" and rows["cross.factor[b]"] == "free"
    assert "= 2 * bbodyrad.kT" in html and "LogUniform(1e-05, 0.1)" in html and "= 0.05" in html
    assert "5 free parameters" in html


def test_result_html(result):
    html = display.result_html(result)
    _check_frame(html, result)
    body = _visible(html)
    table = result.summary()
    for name, rec in table.iterrows():
        assert f"<td class='jxs-name'>{name}</td><td class='jxs-num'>{rec['median']:.4g}</td>" \
            in body
    assert f"{result.stat} = {result.fit_statistic:.6g} / {result.dof} dof" in body
    assert "2 × 90" in body and "nuts" in body and "compile" in body and "sampling" in body
    assert "data</span>ulx" in body
    assert result._repr_html_() == html


def test_result_html_flags_bad_rhat_and_low_ess(result):
    post = dict(result.draws.posterior)
    post["powerlaw.PhoIndex"] = post["powerlaw.PhoIndex"] + np.array([0.0, 1.0])[:, None]
    walk = np.cumsum(np.random.default_rng(1).normal(size=post["bbodyrad.kT"].shape), axis=1)
    post["bbodyrad.kT"] = walk  # sticky chains: a low ESS
    bad = dataclasses.replace(result, draws=result.draws._replace(posterior=post), _idata=None)
    table = bad.summary()
    assert table.loc["powerlaw.PhoIndex", "r_hat"] > display.RHAT_MAX
    assert table.loc["bbodyrad.kT", "ess_bulk"] < 2 * display.ESS_PER_CHAIN_MIN
    body = _visible(display.result_html(bad))

    def row(name: str) -> str:
        return re.search(rf"<td class='jxs-name'>{name}</td>.*?</tr>", body).group(0)

    assert "class='jxs-bad'" in row("powerlaw.PhoIndex") and "⚠" in row("powerlaw.PhoIndex")
    assert "class='jxs-warn'" in row("bbodyrad.kT")
    assert "diagnostics flagged" in body
    ok = _visible(display.result_html(result))
    assert "jxs-bad'>" not in row_of(ok, "tbabs.nH")


def row_of(body: str, name: str) -> str:
    return re.search(rf"<td class='jxs-name'>{re.escape(name)}</td>.*?</tr>", body).group(0)


def test_result_html_evidence_and_elbo(result):
    other = dataclasses.replace(result, method="ns", log_evidence=-123.456, log_evidence_err=0.21,
                                elbo=np.array([-500.0, -200.0, -150.5]))
    body = _visible(display.result_html(other))
    assert "ln Z = -123.456 ± 0.21" in body and "-150.5 after 3 steps" in body


def test_describe_distribution():
    import numpyro.distributions as nd

    assert display.describe_distribution(nd.Uniform(0.0, 3.0)) == "Uniform(0, 3)"
    assert display.describe_distribution(nd.Normal(1.5, 0.25)) == "Normal(1.5, 0.25)"
