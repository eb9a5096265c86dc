"""`invoke hub`: JupyterHub serving jaxlab:cpu to a class, driven through its REST API as learners
and an organiser would, with the engine CI runs.

Two learners get a server each from the image; one cannot reach the other's; a file survives a
restart of its server; the idle culler stops a server nobody uses; a check a learner runs shows on
the instructor's class page, which a learner cannot open.
"""

from __future__ import annotations

import secrets
import subprocess
import sys

import pytest
from helpers import stop

from labkit import paths
from labkit.hub.api import HubAPI
from labkit.ports import free_ports

pytestmark = pytest.mark.container

IDLE_MINUTES = 1.5  # the culler's timeout in the test; it looks every 45 s
SCREENSHOT = paths.OUT / "browser" / "class-page.png"
UI_MS = 60_000
CHECK = (
    "import numpy as np; from labkit.notebook import Lab; lab = Lab('01_jax_vs_numpy', 'cpu', {{}}, '', {{}}); "
    "lab.exercise = {exercise}; lab.check('standardized', np.ones(3), np.full(3, {value}))"
)


@pytest.fixture(scope="module")
def hub(cpu_image, engine, tmp_path_factory):
    folder = tmp_path_factory.mktemp("hub") / "state"
    port = free_ports(4)
    names = {"ada": f"ada{secrets.token_hex(3)}", "bob": f"bob{secrets.token_hex(3)}"}
    cmd = [
        sys.executable, "-m", "invoke", "hub", "--backend", "cpu", "--learners", "4", "--port", str(port),
        "--out", str(folder), "--idle-minutes", str(IDLE_MINUTES), "--learner-memory", "1",
    ]  # fmt: skip
    log = folder.parent / "hub.log"
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=paths.ROOT, stdout=out, stderr=subprocess.STDOUT, text=True)
    h = HubAPI(f"http://127.0.0.1:{port}", folder)
    if not h.answers(120):
        stop(proc)
        pytest.fail("the hub did not answer:\n" + log.read_text()[-3000:])
    try:
        yield h, names
    finally:
        stop(proc)
        for name in names.values():  # the learners' containers went with the hub; their volumes stay
            subprocess.run([engine.command, "rm", "-f", f"jupyter-{name}"], capture_output=True)
            subprocess.run([engine.command, "volume", "rm", "-f", f"jaxlab-work-{name}"], capture_output=True)
        print(log.read_text()[-3000:])


def test_two_learners_get_servers_of_their_own_that_keep_their_work(hub, engine, chromium):
    h, names = hub
    ada, bob = names["ada"], names["bob"]
    tokens = {name: h.learner(name) for name in (ada, bob)}
    for name in (ada, bob):
        h.start(name, tokens[name])
        status, info = h.call("GET", "/api/status", token=tokens[name], at=f"/user/{name}")
        assert status == 200, info
    # One learner's token does not open the other's server.
    status, _ = h.call("GET", "/api/status", token=tokens[bob], at=f"/user/{ada}")
    assert status in (403, 404)
    # A file of ada's survives a restart of her server (her work volume stays).
    body = {"type": "file", "format": "text", "content": "mine\n"}
    status, _ = h.call("PUT", "/api/contents/mine.txt", token=tokens[ada], body=body, at=f"/user/{ada}")
    assert status in (200, 201)
    h.stop_server(ada)
    h.start(ada, tokens[ada])
    status, saved = h.call("GET", "/api/contents/mine.txt", token=tokens[ada], at=f"/user/{ada}")
    assert status == 200 and saved["content"] == "mine\n"
    # A check each learner runs in their server is noted in their work folder: ada's passes, bob's
    # fails. The instructor's class page shows both; a learner cannot open it.
    for name, value, code in ((ada, 1.0, 0), (bob, 2.0, 1)):
        done = subprocess.run(
            [engine.command, "exec", f"jupyter-{name}", "python3", "-c", CHECK.format(exercise=1, value=value)],
            capture_output=True,
            text=True,
        )
        assert done.returncode == code, done.stderr
    status, instructor = h.call("POST", "/users/instructor/tokens", body={"note": "test"})
    assert status == 201, instructor
    status, page = h.call("GET", "/", token=instructor["token"], at="/services/class")
    assert status == 200, page
    rows = {line.split("</th>")[0].removeprefix("<tr><th>"): line for line in page.splitlines() if "<tr><th>" in line}
    assert 'class="passed"' in rows[ada] and 'class="failing"' in rows[bob]
    status, _ = h.call("GET", "/", token=tokens[ada], at="/services/class")
    assert status in (403, 404), "a learner opened the class page"
    seen_in_the_browser(chromium, h, ada, bob)
    # Nobody uses bob's server: the culler stops it.
    assert h.wait_stopped(bob, IDLE_MINUTES * 60 + 90), "the idle culler left bob's server running"


def seen_in_the_browser(browser, h: HubAPI, ada: str, bob: str) -> None:
    """The instructor logs in and sees the class table (saved as a screenshot); ada, logged in
    with the learners' password, is refused the page."""
    for who, password_file in (("instructor", "instructor_password"), (ada, "learner_password")):
        context = browser.new_context(viewport={"width": 1100, "height": 500})
        page = context.new_page()
        page.set_default_timeout(UI_MS)
        page.goto(f"{h.base}/hub/login?next=/hub/home")  # the home page: no server is started
        page.fill("input#username_input", who)
        page.fill("input#password_input", (h.folder / password_file).read_text().strip())
        page.click("#login_submit")
        page.wait_for_url("**/hub/home")
        response = page.goto(f"{h.base}/services/class/")
        if who == "instructor":
            assert response is not None and response.status == 200
            table = page.locator("table#class")
            table.wait_for()
            assert page.locator("#stuck").inner_text().startswith("Most stuck: 01_jax_vs_numpy, exercise 1")
            assert table.locator("tr", has_text=ada).locator("td.passed").count() == 1
            assert table.locator("tr", has_text=bob).locator("td.failing").count() == 1
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOT))
        else:
            assert response is not None and response.status == 403, "a learner opened the class page"
        context.close()
