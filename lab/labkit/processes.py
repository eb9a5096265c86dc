"""Child processes that can always be stopped, kernels included.

Jupyter starts each kernel in a session of its own, so a signal to the worker's process group
does not reach it. Stopping therefore asks the worker to exit (papermill then shuts its kernel
down), waits a grace period, and kills whatever is left of the worker's whole process tree.
"""

from __future__ import annotations

import subprocess
import threading
import time

import psutil

from . import signals

GRACE_SECONDS = 10.0


def start(cmd: list[str], **kwargs) -> subprocess.Popen:
    # A session of its own: Ctrl-C reaches the runner only, which then stops children in order.
    return subprocess.Popen(cmd, start_new_session=True, **kwargs)


def stop(proc: subprocess.Popen, grace: float = GRACE_SECONDS) -> None:
    """Terminate ``proc`` and every process it started, however deep."""
    try:
        tree = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        tree = []
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    # Whatever the worker did not clean up (a kernel it could not shut down) goes now.
    for child in tree:
        try:
            child.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(tree, timeout=grace)


def wait(proc: subprocess.Popen, timeout: float | None, cancel: threading.Event) -> str:
    """Wait for ``proc``: "done", or "timeout"/"cancelled" after stopping it. Whatever ends the
    wait early (Ctrl-C, SIGTERM, an error) stops ``proc`` and its whole tree first."""
    try:
        return _wait(proc, timeout, cancel)
    except BaseException:
        with signals.deferred():
            stop(proc)
        raise


def _wait(proc: subprocess.Popen, timeout: float | None, cancel: threading.Event) -> str:
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        try:
            proc.wait(0.2)
            return "done"
        except subprocess.TimeoutExpired:
            pass
        if cancel.is_set():
            stop(proc)
            return "cancelled"
        if deadline is not None and time.monotonic() >= deadline:
            stop(proc)
            return "timeout"
