"""Helpers the test folders share: the CLI as a user runs it, and a JupyterLab started and waited for."""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from labkit import paths
from labkit.ports import free_ports

FIXTURES = Path(__file__).parent / "fixtures"  # small notebooks the runner tests run


@contextlib.contextmanager
def held(lock: Path):
    """``lock`` held by this process alone, waiting for any other test process that holds it."""
    with lock.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def invoke(*args: str, cwd: Path = paths.ROOT, timeout: float = 900, **kwargs) -> subprocess.CompletedProcess:
    """``invoke ARGS`` in this Python, as a user types it; output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, **kwargs
    )


def one_line_error(result: subprocess.CompletedProcess, code: int = 2) -> str:
    """A task's refusal: exit ``code``, one line on stderr (pip's notices aside), no traceback."""
    assert result.returncode == code, (result.returncode, result.stdout[-2000:], result.stderr[-2000:])
    lines = [ln for ln in result.stderr.strip().splitlines() if not ln.startswith("notice:")]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-2000:]
    assert "Traceback" not in result.stdout + result.stderr
    return lines[0]


def http_status(url: str) -> int:
    """The HTTP status of GET ``url`` (errors included); OSError when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


def wait_for_jupyter(base: str, token: str, timeout: float = 120) -> int | None:
    """Poll ``base``/api/status with ``token`` until the server answers; its status, or None."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            return http_status(f"{base}/api/status?token={token}")
        except OSError:
            time.sleep(1)
    return None


def free_port() -> int:
    return free_ports()


def start_jupyter(port: int, token: str, work: Path) -> subprocess.Popen:
    """``invoke jupyter`` on ``work``, once it has printed its URL (so the server answers)."""
    import select

    proc = subprocess.Popen(
        [sys.executable, "-m", "invoke", "jupyter", "--port", str(port), "--work", str(work), "--anywhere"],
        cwd=paths.ROOT,
        env=dict(os.environ, JUPYTER_TOKEN=token),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline, line = time.monotonic() + 300, ""
    while time.monotonic() < deadline and "JupyterLab: " not in line:
        ready, _, _ = select.select([proc.stdout], [], [], 1)
        line = proc.stdout.readline() if ready else line
        if proc.poll() is not None:
            pytest.fail(f"invoke jupyter ended: {proc.stderr.read()}")
    assert line.startswith(f"JupyterLab: http://127.0.0.1:{port}/lab?token={token}"), line
    return proc


def stop(proc: subprocess.Popen) -> int:
    import signal

    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()


def read_only_mount(tmp_path: Path) -> Path:
    """A read-only file system at ``tmp_path``/ro (unmount it with ``umount``)."""
    mount = tmp_path / "ro"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro", "tmpfs", str(mount)], capture_output=True)
    if done.returncode:
        pytest.skip("mounting a read-only tmpfs needs root (CI runs as root)")
    return mount


def run_async(make_coroutine):
    """``asyncio.run(make_coroutine())`` in a thread of its own: a test before the caller may have
    left an event loop running in pytest's thread, where asyncio.run refuses to start another."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(make_coroutine())).result()
