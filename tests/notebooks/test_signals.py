"""Every way a run can end stops every child: Ctrl-C, SIGTERM and SIGHUP, in the notebook phase
and in the checks phase, leave no worker, kernel or pytest behind, no staging folder, and the
previous run as it was. Even a kill -9, which runs no clean-up, leaves no process for long."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import psutil
import pytest
from helpers import FIXTURES

from labkit import outdir, paths

pytestmark = pytest.mark.slow


def descendants(proc: subprocess.Popen) -> list[psutil.Process]:
    try:
        return psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def wait_for_child(proc: subprocess.Popen, needle: str, timeout: float = 90) -> list[psutil.Process]:
    """Every descendant of ``proc``, once one whose command line holds ``needle`` runs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tree = descendants(proc)
        for child in tree:
            try:
                if needle in " ".join(child.cmdline()):
                    time.sleep(1)  # let it settle into its work
                    return descendants(proc)
            except psutil.Error:
                pass
        time.sleep(0.3)
    proc.kill()
    pytest.fail(f"no process running {needle!r} within {timeout} s")


def alive(procs: list[psutil.Process]) -> list[str]:
    left = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                left.append(" ".join(p.cmdline())[:120])
        except psutil.NoSuchProcess:
            pass
    return left


def previous_run(out):
    out.mkdir()
    (out / outdir.MARKER).write_text("{}\n")
    (out / "summary.md").write_text("an earlier run\n")


def stop_and_check(proc, tree, signum, tmp_path, out, times: int = 1):
    for _ in range(times):  # an impatient user presses Ctrl-C again while the lab is stopping
        proc.send_signal(signum)
        time.sleep(0.05)
    _, stderr = proc.communicate(timeout=90)
    expected = 130 if signum == signal.SIGINT else 128 + signum
    assert proc.returncode == expected, stderr
    lines = stderr.strip().splitlines()
    assert lines[-1].startswith("error: stopped by"), stderr
    time.sleep(0.5)
    assert alive(tree) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no staging folder, no lock
    assert (out / "summary.md").read_text() == "an earlier run\n"


def lab(out, *args) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "invoke", "lab", "--runtime", "local", "--out", str(out), *args]
    return subprocess.Popen(cmd, cwd=paths.ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT], ids=lambda s: s.name)
def test_signal_in_the_notebook_phase_stops_workers_and_kernels(tmp_path, signum):
    out = tmp_path / "out"
    previous_run(out)
    proc = lab(out, "--no-checks", "-n", str(FIXTURES / "03_sleepy.ipynb"), "-n", str(FIXTURES / "01_ok.ipynb"))
    tree = wait_for_child(proc, "ipykernel")
    stop_and_check(proc, tree, signum, tmp_path, out)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=lambda s: s.name)
def test_signal_in_the_checks_phase_stops_pytest(tmp_path, signum):
    out = tmp_path / "out"
    previous_run(out)
    proc = lab(out, "-n", str(FIXTURES / "01_ok.ipynb"))
    tree = wait_for_child(proc, "labkit.consistency.plugin", timeout=180)
    stop_and_check(proc, tree, signum, tmp_path, out)


def test_three_quick_ctrl_cs_still_stop_everything(tmp_path):
    out = tmp_path / "out"
    previous_run(out)
    proc = lab(out, "--no-checks", "-n", str(FIXTURES / "03_sleepy.ipynb"), "-n", str(FIXTURES / "01_ok.ipynb"))
    tree = wait_for_child(proc, "ipykernel")
    stop_and_check(proc, tree, signal.SIGINT, tmp_path, out, times=3)


@pytest.mark.parametrize("phase", ["notebooks", "checks"])
def test_kill_9_of_invoke_leaves_no_worker_kernel_or_pytest_behind(tmp_path, phase):
    """Nothing in invoke runs after SIGKILL: its children must notice on their own, so a GPU or
    TPU is not held by an orphaned kernel until its notebook ends."""
    out = tmp_path / "out"
    if phase == "notebooks":
        proc = lab(out, "--no-checks", "-n", str(FIXTURES / "03_sleepy.ipynb"), "-n", str(FIXTURES / "01_ok.ipynb"))
        tree = wait_for_child(proc, "ipykernel")
    else:
        proc = lab(out, "-n", str(FIXTURES / "01_ok.ipynb"))
        tree = wait_for_child(proc, "labkit.consistency.plugin", timeout=180)
    proc.kill()
    proc.communicate(timeout=30)
    deadline = time.monotonic() + 20
    while alive(tree) and time.monotonic() < deadline:
        time.sleep(0.3)
    left = alive(tree)
    for p in tree:  # never leave one to the next test
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    assert left == []
