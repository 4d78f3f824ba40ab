"""JupyterLab in headless Chromium: the widget notebooks run, their widgets render and respond.

Starts JupyterLab on a random loopback port with a token and a throw-away settings folder,
opens each notebook below in one Chromium (through the Python `playwright` package and the
Debian `chromium` binary), runs all cells, checks the ipywidgets render without errors,
moves a slider and checks that the figure under it changes. Screenshots go to pytest's tmp dir.
Skipped, with the reason, when Chromium or playwright is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]
# (solution notebook, index of the slider to move among the notebook's sliders)
WIDGET_NOTEBOOKS = [
    n
    for n in ("00_start_here.ipynb", "04_control_as_inference.ipynb")
    if (ROOT / "solutions" / n).exists()
]

pytestmark = [
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason=f"no Chromium at {CHROMIUM} (install it with `apt-get install chromium`)",
    ),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_server(url: str, process: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"JupyterLab exited early with code {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"JupyterLab did not answer at {url} within {timeout:.0f} s")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server over copies of the widget notebooks; stopped by PID afterwards."""
    if not WIDGET_NOTEBOOKS:
        pytest.skip("no widget notebooks yet")
    work = tmp_path_factory.mktemp("lab")
    for name in WIDGET_NOTEBOOKS:
        shutil.copy(ROOT / "solutions" / name, work / name)
    settings = work / ".settings"
    notification = (
        settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    )
    notification.parent.mkdir(parents=True)
    notification.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    tracker = settings / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings"
    tracker.parent.mkdir(parents=True)
    tracker.write_text(
        json.dumps({"windowingMode": "none"})
    )  # every cell in the DOM, not only visible ones
    port, token = _free_port(), uuid.uuid4().hex
    env = dict(
        os.environ,
        JUPYTERLAB_SETTINGS_DIR=str(settings),
        JUPYTERLAB_WORKSPACES_DIR=str(work / ".workspaces"),
        COURSE_THREADS="1",
    )
    env.pop("MPLBACKEND", None)  # kernels must use the inline backend, as for a student
    log = (work / "lab.log").open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyter",
            "lab",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={port}",
            f"--IdentityProvider.token={token}",
            "--allow-root",
            f"--ServerApp.root_dir={work}",
            "--LabApp.expose_app_in_browser=True",
            "--LabApp.news_url=",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    try:
        _wait_for_server(f"http://127.0.0.1:{port}/api/status?token={token}", process)
        yield f"http://127.0.0.1:{port}", token, work
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        log.close()


@pytest.fixture(scope="module")
def browser():
    playwright_api = pytest.importorskip(
        "playwright.sync_api", reason="the playwright package is not installed"
    )
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def _figure_under(slider):
    """The src of the image in the output that follows the widget's controls."""
    return slider.evaluate(
        """el => {
            const box = el.closest('.widget-vbox, .jp-OutputArea-output');
            const img = box && box.querySelector('img');
            return img ? img.getAttribute('src') : null;
        }"""
    )


def _open(page, base: str, token: str, name: str) -> None:
    """Open notebook ``name`` in a workspace of its own (reset: only it is open), kernel ready."""
    page.goto(
        f"{base}/lab/workspaces/{Path(name).stem}/tree/{name}?reset&token={token}",
        wait_until="domcontentloaded",
    )
    page.wait_for_function(
        "name => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;"
        " return w && w.context && w.context.path === name; }",
        arg=name,
        timeout=60_000,
    )
    page.evaluate(
        "async () => { const w = window.jupyterapp.shell.currentWidget;"
        " await w.context.ready; await w.sessionContext.ready; }"
    )


@pytest.mark.parametrize("name", WIDGET_NOTEBOOKS)
def test_widgets_render_and_respond_in_jupyterlab(lab, browser, name, tmp_path):
    base, token, _ = lab
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        _open(page, base, token, name)
        # the copies hold the stored outputs: clear them, so that everything seen below is new
        page.evaluate(
            "async () => { const app = window.jupyterapp;"
            " await app.commands.execute('notebook:clear-all-cell-outputs');"
            " await app.commands.execute('notebook:run-all-cells'); }"
        )
        page.wait_for_function(
            "() => { const w = window.jupyterapp.shell.currentWidget; const cells = w.content.model.cells;"
            " for (let i = 0; i < cells.length; i++) { const c = cells.get(i);"
            "   if (c.type === 'code' && c.sharedModel.getSource().trim() && !c.executionCount) return false; }"
            " const kernel = w.sessionContext.session && w.sessionContext.session.kernel;"
            " return kernel && kernel.status === 'idle'; }",
            timeout=150_000,
        )
        sliders = page.locator(".widget-slider")
        sliders.first.wait_for(timeout=30_000)
        assert sliders.count() >= 1
        assert "Error displaying widget" not in page.content()
        errors = page.locator(
            ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
        )
        assert not any("Traceback" in errors.nth(i).inner_text() for i in range(errors.count()))

        slider = sliders.first
        slider.scroll_into_view_if_needed()
        page.wait_for_function(
            "el => { const box = el.closest('.widget-vbox, .jp-OutputArea-output');"
            " return box && box.querySelector('img'); }",
            arg=slider.element_handle(),
            timeout=30_000,
        )
        before = _figure_under(slider)
        readout_before = slider.locator(".widget-readout").inner_text()
        slider.locator(".noUi-handle").focus()
        for _ in range(5):
            page.keyboard.press("ArrowRight")
        page.wait_for_function(
            "([el, old]) => { const box = el.closest('.widget-vbox, .jp-OutputArea-output');"
            " const img = box && box.querySelector('img'); return img && img.getAttribute('src') !== old; }",
            arg=[slider.element_handle(), before],
            timeout=30_000,
        )
        assert slider.locator(".widget-readout").inner_text() != readout_before
        assert _figure_under(slider) != before
        page.screenshot(path=str(tmp_path / f"{Path(name).stem}.png"), full_page=False)
    except Exception:
        page.screenshot(path=str(tmp_path / f"{Path(name).stem}-failure.png"), full_page=False)
        (tmp_path / f"{Path(name).stem}-failure.html").write_text(page.content())
        raise
    finally:
        page.close()


FEEDBACK_CELLS = [
    "import numpy as np\nfrom course_utils.checks.ch00 import check_logsumexp",
    "# Exercise 0.1, answered without the keepdims parameter\n"
    "def logsumexp(x, axis=-1):\n"
    "    m = np.max(x, axis=axis, keepdims=True)\n"
    "    return np.squeeze(m + np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)), axis)",
    "check_logsumexp(logsumexp)",
]


def test_check_feedback_shows_only_the_students_frames(lab, browser, tmp_path):
    """A crash in the student's function shows their frames and the feedback, no checker frames."""
    import nbformat

    base, token, work = lab
    name = "feedback.ipynb"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in FEEDBACK_CELLS])
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, work / name)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        _open(page, base, token, name)
        page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
        error = page.locator(
            ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
        ).last
        error.wait_for(timeout=120_000)
        text = error.inner_text()
        page.screenshot(path=str(tmp_path / "feedback.png"), full_page=False)
    finally:
        page.close()
    assert "TypeError" in text and "logsumexp() takes" in text  # the student's own error ...
    assert "Exercise 0.1: `logsumexp` raised TypeError" in text  # ... then the feedback line
    assert "keep them all in your function's signature" in text
    assert text.rstrip().endswith("(input: a (2, 3, 5) array, axis=1, keepdims=True)")
    for internal in ("course_utils/checks", "call_student", "_invoke", "_check_case", "observe("):
        assert internal not in text, f"the checker's frame {internal!r} is shown:\n{text}"
