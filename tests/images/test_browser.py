"""JupyterLab in a real browser: a learner's first minutes with the CPU image, as Chromium shows them.

``invoke jupyter`` serves a fresh workspace from ``jaxlab:cpu``; Playwright (sync API) drives
Debian's Chromium (``/usr/bin/chromium``, from ``apt-get install chromium``; Playwright's own
browser download is never used). Without the token the server shows its login page and refuses the
API; with it (typed into the login form) JupyterLab opens handout 01, its cells run one by one
with Shift+Enter down to exercise 1's check, and the exercise's message shows in an error output.
A screenshot goes to ``out/browser/handout-01.png`` (and the test's tmp folder).

Marked ``container``: where no engine answers it skips, like the other image tests. A missing
Chromium or Playwright skips it too, unless JAXLAB_REQUIRE_ENGINE=1 (CI), which makes it a failure.
"""

from __future__ import annotations

import collections
import contextlib
import re
import secrets
import shutil
import subprocess
import threading
from pathlib import Path

import nbformat
import pytest
from helpers import free_port, start_jupyter, stop

from labkit import paths

try:
    from playwright.sync_api import Page, expect
except ImportError:  # the dev extra brings it; the chromium fixture skips or fails without it
    Page = expect = None

pytestmark = pytest.mark.container

HANDOUT = "01_jax_vs_numpy.ipynb"
SCREENSHOT = paths.OUT / "browser" / "handout-01.png"
NEWS = "Would you like to get notified about official Jupyter news?"  # JupyterLab 4's news toast
ERROR_OUTPUT = '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'  # tracebacks
UI_MS = 60_000  # the page and its widgets (two cores, the server in a container)
KERNEL_MS = 300_000  # a code cell: the first ones start the kernel and import JAX


def drain(proc: subprocess.Popen) -> collections.deque:
    """Keep reading ``invoke jupyter``'s output (JupyterLab's log), so that its pipes never fill
    and block the server; the last lines are kept, for a failure's report."""
    tail: collections.deque = collections.deque(maxlen=100)
    for stream in (proc.stdout, proc.stderr):
        threading.Thread(target=tail.extend, args=(stream,), daemon=True).start()
    return tail


def refused_without_the_token(page: Page, base: str, token: str) -> None:
    # jupyter_server 2 (JupyterLab 4.6): /lab redirects (302) to the login form, the API says 403.
    response = page.goto(f"{base}/lab")
    assert page.url == f"{base}/login?next=%2Flab"
    assert response.status == 200 and response.request.redirected_from.response().status == 302
    expect(page.locator("#password_input")).to_be_visible()
    expect(page.get_by_text("Token authentication is enabled")).to_be_visible()
    expect(page.locator("#jp-main-dock-panel")).to_have_count(0)  # no JupyterLab behind it
    api = page.request.get(f"{base}/api/contents/{HANDOUT}")
    assert (api.status, api.json()) == (403, {"message": "Forbidden", "reason": None})
    # A wrong token, typed into the form: 401, and the form again.
    page.fill("#password_input", f"wrong-{token}")
    with page.expect_navigation() as answer:
        page.click("#login_submit")
    assert answer.value.status == 401 and page.url == f"{base}/login?next=%2Flab"
    expect(page.locator(".message.error")).to_have_text("Invalid credentials")


def log_in(page: Page, base: str, token: str) -> None:
    """The token typed into the login form, as the login page tells a learner to do."""
    page.fill("#password_input", token)
    page.click("#login_submit")
    page.wait_for_url(re.compile(rf"^{re.escape(base)}/lab\b"), timeout=UI_MS)
    expect(page.locator("#jp-main-dock-panel")).to_be_visible(timeout=UI_MS)
    assert token not in page.url
    assert page.request.get(f"{base}/api/contents/{HANDOUT}").status == 200  # the login cookie


def run_through_exercise_1(page: Page, notebook: Path):
    """Open ``notebook`` from the file browser and run its cells with Shift+Enter, one at a time,
    from the top through exercise 1's cell and the check cell after it; the exercise's cells."""
    nb = nbformat.read(notebook, as_version=4)
    exercise = next(i for i, cell in enumerate(nb.cells) if cell.cell_type == "code" and "Exercise 1 (" in cell.source)
    check = next(i for i in range(exercise + 1, len(nb.cells)) if nb.cells[i].cell_type == "code")

    page.locator(".jp-DirListing-itemText").get_by_text(notebook.name, exact=True).dblclick(timeout=UI_MS)
    panel = page.locator(".jp-NotebookPanel")
    cells = panel.locator(".jp-Notebook .jp-Cell")
    expect(cells).to_have_count(len(nb.cells), timeout=UI_MS)
    kernel = page.get_by_title(f"Change kernel for {notebook.name}")  # the status bar's "Python 3 (ipykernel) | Idle"
    expect(kernel).to_have_text(re.compile(r"\| Idle$"), timeout=KERNEL_MS)

    cells.first.locator(".jp-InputArea-prompt").click()  # selects the first cell, in command mode
    for i in range(check + 1):
        expect(cells.nth(i)).to_have_class(re.compile(r"\bjp-mod-active\b"), timeout=UI_MS)
        page.keyboard.press("Shift+Enter")
        if nb.cells[i].cell_type != "code":
            continue
        if nb.cells[i].metadata.get("jupyter", {}).get("source_hidden"):
            # A check cell's code starts folded (its placeholder shows no count): wait for its output.
            expect(cells.nth(i).locator(".jp-OutputArea-output").first).to_be_attached(timeout=KERNEL_MS)
        else:  # "[*]:" while it runs (or waits), then "[n]:"
            expect(cells.nth(i).locator(".jp-InputArea-prompt")).to_have_text(
                re.compile(r"^\[\d+\]:$"), timeout=KERNEL_MS
            )
    expect(kernel).to_have_text(re.compile(r"\| Idle$"), timeout=KERNEL_MS)
    return cells.nth(exercise), cells.nth(check)


def test_a_learner_logs_in_runs_handout_01_to_exercise_1_and_meets_its_message(chromium, cpu_image, tmp_path):
    port, token = free_port(), secrets.token_hex(16)
    base, work = f"http://127.0.0.1:{port}", tmp_path / "work"
    proc = start_jupyter(port, token, work)
    log = drain(proc)
    context = chromium.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(UI_MS)
    try:
        refused_without_the_token(page, base, token)
        log_in(page, base, token)
        exercise_cell, check_cell = run_through_exercise_1(page, work / HANDOUT)
        # The handout's stub raises the exercise's message: in the exercise's cell, or its check's.
        message = (
            exercise_cell.locator(ERROR_OUTPUT)
            .or_(check_cell.locator(ERROR_OUTPUT))
            .filter(has_text="Exercise 1 (")
            .first
        )
        expect(message).to_be_visible(timeout=UI_MS)
        exercise_cell.scroll_into_view_if_needed()
        message.scroll_into_view_if_needed()
        shot = tmp_path / SCREENSHOT.name
        page.screenshot(path=shot)
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, SCREENSHOT)
        # The image turns JupyterLab's news off: no toast asks about it (shown once the app is up).
        expect(page.get_by_text(NEWS)).to_have_count(0)
        expect(page.locator(".Toastify__toast").filter(has_text=re.compile(r"\bnews\b", re.I))).to_have_count(0)
    except BaseException:
        with contextlib.suppress(Exception):
            page.screenshot(path=tmp_path / "failure.png")
        print(f"the page when it failed: {tmp_path / 'failure.png'}\nJupyterLab's log, last lines:\n" + "".join(log))
        raise
    finally:
        context.close()
        stop(proc)
