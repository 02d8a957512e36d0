"""What a student sees in JupyterLab, in a real browser: Debian's Chromium, driven by Playwright.

`./course open` serves the course (loopback, a token); the test opens a notebook as a student
would, pastes answers into exercise cells, runs every cell, and reads the page: the charts
drawn (an `<img>` of the SVG, loaded), the tables, `✔` under a check that passed, `✘` and
what differed under one that did not, and no error output. Screenshots land in
tests/output/browser/. The notebooks served are a student's workspace, made by `./course open`
in a temporary folder; JupyterLab's autosave is off, so even that copy is not written.
"""

import json
import os
import secrets
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import REPO
from nbrun import exercises, solution_code, wrong_answers
from test_setup import COURSE, OPEN_TIMEOUT, free_port, wait_for

import nbformat

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SCREENSHOTS = REPO / "tests" / "output" / "browser"
# Without these, Chromium tries Google's services at start and on a closed network waits on them.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
RUN_TIMEOUT = 900  # every cell of the notebook, in small mode, on 2 cores

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed: ./course test installs it as root")


def lab_settings(folder):
    """JupyterLab user settings: no autosave (the test's answers stay in the browser), and every
    cell in the page (no windowing), so that the page holds what the notebook holds."""
    for plugin, settings in {
        "docmanager-extension/plugin": {"autosave": False},
        "notebook-extension/tracker": {"windowingMode": "none"},
    }.items():
        path = folder / "@jupyterlab" / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(settings))
    return folder


class Lab:
    """`./course open` on a free port with a known token; stopped with its process group."""

    def __init__(self, tmp_path):
        self.port, self.token = free_port(), secrets.token_hex(16)
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = tmp_path / "open.log"
        # A student's first open: their workspace is made then (kernel/workspace.py).
        self.notebooks = tmp_path / "work" / "notebooks"
        env = dict(os.environ, CI="true", PARCOURS_WORKSPACE=str(tmp_path / "work"),
                   JUPYTERLAB_SETTINGS_DIR=str(lab_settings(tmp_path / "settings")),
                   JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "workspaces"))
        with open(self.log, "w") as log:
            self.server = subprocess.Popen(
                [str(COURSE), "open", f"--ServerApp.port={self.port}",
                 "--ServerApp.port_retries=0", f"--IdentityProvider.token={self.token}",
                 "--LabApp.expose_app_in_browser=True"],
                cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True)

    def wait_until_up(self):
        def up():
            if self.server.poll() is not None:
                pytest.fail(f"./course open exited ({self.server.returncode}):\n"
                            f"{self.log.read_text()}")
            try:
                with urllib.request.urlopen(f"{self.base}/api/status?token={self.token}",
                                            timeout=5) as response:
                    return response.status == 200
            except OSError:
                return False

        assert wait_for(up, OPEN_TIMEOUT, step=1), f"JupyterLab is not up:\n{self.log.read_text()}"

    def stop(self):
        if self.server.poll() is None:
            os.killpg(self.server.pid, signal.SIGTERM)
            try:
                self.server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.server.pid, signal.SIGKILL)
                self.server.wait()


@pytest.fixture
def lab(tmp_path):
    lab = Lab(tmp_path)
    try:
        lab.wait_until_up()
        yield lab
    finally:
        lab.stop()


@pytest.fixture
def page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(viewport={"width": 1400, "height": 1000})
        finally:
            browser.close()


# The notebook panel in view, and its cells as JupyterLab's model holds them.
PANEL = "window.jupyterapp.shell.currentWidget"
KERNEL_STATE = f"""() => {{
    const panel = {PANEL};
    const kernel = panel && panel.sessionContext && panel.sessionContext.session
        && panel.sessionContext.session.kernel;
    return kernel ? [kernel.name, kernel.status] : null;
}}"""
CELLS = f"""() => {PANEL}.content.widgets.map(cell => ({{
    type: cell.model.type,
    count: cell.model.type === 'code' ? cell.model.executionCount : null,
    outputs: cell.model.type === 'code' ? cell.model.outputs.toJSON() : [],
    text: cell.node.querySelector('.jp-OutputArea') ?
        cell.node.querySelector('.jp-OutputArea').innerText : '',
    images: Array.from(cell.node.querySelectorAll('.jp-OutputArea .jp-RenderedSVG img'))
        .map(img => img.complete && img.naturalWidth > 0),
    tables: cell.node.querySelectorAll('.jp-OutputArea .jp-RenderedHTMLCommon table').length,
}}))"""


def open_notebook(page, lab, name, shots, kernel_timeout=300):
    page.goto(f"{lab.base}/lab/tree/notebooks/{name}?token={lab.token}&reset")
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget "
                           "&& window.jupyterapp.shell.currentWidget.content", timeout=120_000)

    def kernel_idle():
        state = page.evaluate(KERNEL_STATE)
        return state if state and state[1] == "idle" else None

    state = wait_for(kernel_idle, kernel_timeout, step=1)
    page.screenshot(path=shots / "opened.png")
    assert state, (f"the course kernel did not start for {name} (kernel: "
                   f"{page.evaluate(KERNEL_STATE)}); see {shots / 'opened.png'}")
    assert state[0] == "parcours", f"{name} runs on kernel {state[0]!r}, not the course's"


def paste_into_cell(page, index, code):
    """Selects the cell's text and pastes `code` over it, as a student pasting an answer."""
    editor = page.locator(".jp-Notebook .jp-Cell").nth(index).locator(".cm-content")
    editor.scroll_into_view_if_needed()
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.insert_text(code)
    page.keyboard.press("Escape")
    source = page.evaluate(f"() => {PANEL}.content.widgets[{index}].model.sharedModel.getSource()")
    assert source.strip() == code.strip(), f"cell {index} holds {source!r}"


def run_all(page, shots, timeout=RUN_TIMEOUT):
    """Run > Run All Cells, then waits until the kernel has answered every cell (or stopped
    the run at an error) and stayed idle; returns the cells as `CELLS` reads them."""
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    deadline = time.monotonic() + timeout
    idle_since = None
    while time.monotonic() < deadline:
        cells = page.evaluate(CELLS)
        code = [c for c in cells if c["type"] == "code"]
        state = page.evaluate(KERNEL_STATE)
        done = all(c["count"] is not None for c in code) or any(
            o.get("output_type") == "error" for c in code for o in c["outputs"])
        if state and state[1] == "idle" and done:
            idle_since = idle_since or time.monotonic()
            if time.monotonic() - idle_since > 2:
                break
        else:
            idle_since = None
        time.sleep(1)
    page.screenshot(path=shots / "ran.png", full_page=True)
    cells = page.evaluate(CELLS)
    waiting = [i for i, c in enumerate(cells) if c["type"] == "code" and c["count"] is None]
    assert not waiting, f"cells {waiting} never ran (see {shots / 'ran.png'})"
    return cells


def problems_seen(cells):
    """What a student would see go wrong: error outputs, charts that did not load, or no
    chart at all."""
    problems = [f"cell {i} shows an error: {o.get('ename')}: {o.get('evalue', '')[:300]}"
                for i, c in enumerate(cells) for o in c["outputs"] if o.get("output_type") == "error"]
    charts = [(i, loaded) for i, c in enumerate(cells) for loaded in c["images"]]
    problems += [f"cell {i}: a chart that did not render" for i, loaded in charts if not loaded]
    if not charts:
        problems.append("no chart in the page")
    return problems


def test_a_student_sees_charts_tables_and_what_each_check_says(lab, page, tmp_path):
    """Notebook 00: exercise 1 gets its reference solution, exercise 2 a wrong answer (right,
    but on one thread)."""
    name = "00-how-this-course-works.ipynb"
    shots = SCREENSHOTS / name.removesuffix(".ipynb")
    shutil.rmtree(shots, ignore_errors=True)
    shots.mkdir(parents=True)
    nb = nbformat.read(REPO / "notebooks" / name, as_version=4)
    (first, solution, first_check), (second, _, second_check) = exercises(nb)[:2]
    wrong = next(a for a in wrong_answers(REPO / "notebooks" / name) if a.exercise == 2)

    open_notebook(page, lab, name, shots)
    paste_into_cell(page, first, solution_code(nb.cells[solution]))
    paste_into_cell(page, second, wrong.code)
    cells = run_all(page, shots)

    assert not problems_seen(cells), problems_seen(cells)
    assert any(c["tables"] for c in cells), "no table in the page"
    assert "✔" in cells[first_check]["text"] and "✘" not in cells[first_check]["text"], \
        cells[first_check]["text"]
    judged = cells[second_check]["text"]
    assert "✘" in judged and "This cell panicked" in judged, judged
    assert "one thread did" in judged, f"the check does not say what differed: {judged}"
    page.locator(".jp-Notebook .jp-Cell").nth(second_check).screenshot(
        path=shots / "wrong-answer.png")


@pytest.mark.skipif(shutil.which("vulkaninfo") is None and not Path(
    "/usr/share/vulkan/icd.d").is_dir(), reason="no Vulkan driver (./course check)")
def test_a_gpu_lesson_draws_its_charts_and_leaves_unsolved_exercises_failing(lab, page):
    """Notebook 31 on whatever Vulkan driver there is (lavapipe on a machine without a GPU),
    exercises untouched: the demos draw, every check fails on its `todo!()`."""
    name = "31-a-gpu-is-not-a-cpu.ipynb"
    shots = SCREENSHOTS / name.removesuffix(".ipynb")
    shutil.rmtree(shots, ignore_errors=True)
    shots.mkdir(parents=True)
    nb = nbformat.read(REPO / "notebooks" / name, as_version=4)

    open_notebook(page, lab, name, shots)
    cells = run_all(page, shots)

    assert not problems_seen(cells), problems_seen(cells)
    for _, _, check in exercises(nb):
        said = cells[check]["text"]
        assert "not yet implemented" in said and "This cell panicked" in said, (check, said)


def test_it_sees_a_missing_kernel_a_chart_that_does_not_render_and_an_error(lab, page, tmp_path):
    """The test itself: a notebook for a kernel that is not installed, then one whose chart is
    not an image and whose last cell does not compile."""
    shots = tmp_path / "shots"
    shots.mkdir()
    # Not a dot file: Jupyter serves no hidden file.
    scratch = lab.notebooks / f"browser-test-{secrets.token_hex(4)}.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.metadata.kernelspec = {"name": "no-such-kernel", "display_name": "None", "language": "rust"}
    try:
        nbformat.write(nb, scratch)
        with pytest.raises(AssertionError, match="kernel"):
            open_notebook(page, lab, scratch.name, shots, kernel_timeout=10)

        nb.metadata.kernelspec = {"name": "parcours", "display_name": "Rust (parcours)",
                                  "language": "rust"}
        nb.cells = [nbformat.v4.new_code_cell(
                        'parcours::display::emit("image/svg+xml", "<svg><unclosed");'),
                    nbformat.v4.new_code_cell("let broken: u32 = \"not a number\";")]
        nbformat.write(nb, scratch)
        open_notebook(page, lab, scratch.name, shots)
        problems = problems_seen(run_all(page, shots))
        assert any("did not render" in p for p in problems), problems
        assert any("shows an error" in p for p in problems), problems
    finally:
        scratch.unlink(missing_ok=True)
