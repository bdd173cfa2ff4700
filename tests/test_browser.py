"""A real JupyterLab page in Chromium: run the quickstart and look at what renders.

Starts ``jupyter lab`` on 127.0.0.1 (free port, no token) in a temporary folder
holding a copy of ``notebooks/01_quickstart.ipynb`` (2 chains x 300+100 NUTS
steps instead of 4 x 500+500, to keep the test short), drives it with
Playwright for Python and Debian's chromium, and asserts that the progress
bars (``.widget-hprogress``), the HTML result table and the corner and PPC
images appear. A screenshot is saved to
``tests/_artifacts/``. Never runs ``playwright install``: the browser is the
system's ``/usr/bin/chromium``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "tests" / "_artifacts"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


def _requirements() -> None:
    missing = []
    if not CHROMIUM.exists():
        missing.append(str(CHROMIUM))
    for module in ("playwright", "jupyterlab"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        if os.environ.get("CI"):
            raise RuntimeError(f"CI is set but the browser test lacks {', '.join(missing)}")
        pytest.skip(f"browser test needs {', '.join(missing)}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"jupyter lab exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"jupyter lab did not answer {url} within {timeout:.0f} s")


@pytest.fixture()
def lab(tmp_path):
    _requirements()
    work = tmp_path / "work"
    work.mkdir()
    nb = json.loads((REPO / "notebooks" / "01_quickstart.ipynb").read_text())
    for c in nb["cells"]:  # same notebook, fewer NUTS steps
        src = "".join(c["source"])
        c["source"] = src.replace("--chains 4 --warmup 500 --samples 500",
                                  "--chains 2 --warmup 300 --samples 100")
    (work / "01_quickstart.ipynb").write_text(json.dumps(nb))
    settings = tmp_path / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)  # no news or update checks (no network; no pop-up)
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    port = _free_port()
    env = dict(os.environ)
    env.update(JUPYTERLAB_SETTINGS_DIR=str(tmp_path / "settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "workspaces"),
               JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"))
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
           f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
           "--IdentityProvider.token=", "--ServerApp.password=",
           f"--ServerApp.root_dir={work}", "--LabApp.expose_app_in_browser=True",
           "--LabApp.news_url=None",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    log = (tmp_path / "lab.log").open("w")
    proc = subprocess.Popen(cmd, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_http(f"http://127.0.0.1:{port}/api/status", proc, timeout=90)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_quickstart_in_jupyterlab(lab):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "browser_quickstart.png"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1600})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(f"{lab}/lab/tree/01_quickstart.ipynb", timeout=90_000)
            page.wait_for_selector(".jp-Notebook", timeout=90_000)
            page.wait_for_function(  # the kernel is up
                "() => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;"
                " const k = w && w.sessionContext && w.sessionContext.session"
                " && w.sessionContext.session.kernel; return k && k.status === 'idle'; }",
                timeout=120_000)
            page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
            try:
                page.wait_for_selector(".widget-hprogress", timeout=180_000)
                page.wait_for_selector(".jxs-FitResult table.jxs-table", timeout=300_000)
                page.wait_for_function(
                    "() => document.querySelectorAll('.jp-RenderedImage img').length >= 2",
                    timeout=180_000)
            finally:
                page.screenshot(path=str(shot), full_page=True)
            page.locator(".jxs-FitResult").first.scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / "browser_quickstart_result.png"))
            page.locator(".jp-RenderedImage img").last.scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / "browser_quickstart_ppc.png"))
            bars = page.locator(".widget-hprogress")
            assert bars.count() == 2  # one per chain
            table = page.locator(".jxs-FitResult table.jxs-table").first
            assert table.is_visible() and "powerlaw.PhoIndex" in table.inner_text()
            assert page.locator(".jxs-text-fallback").first.is_hidden()  # CSS applied
            images = page.locator(".jp-RenderedImage img")
            sizes = [images.nth(i).evaluate("img => img.naturalWidth") for i in range(2)]
            assert all(width > 300 for width in sizes)  # the corner and PPC figures
            assert not errors, errors
        finally:
            browser.close()
    assert shot.stat().st_size > 10_000
