"""Child processes that can always be stopped, kernels included.

Jupyter starts each kernel in a session of its own, so a signal to the worker's process group
does not reach it. Stopping therefore asks the worker to exit (papermill then shuts its kernel
down), waits a grace period, and kills whatever is left of the worker's whole process tree.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
import time

import psutil

from . import signals

GRACE_SECONDS = 10.0


def start(cmd: list[str], **kwargs) -> subprocess.Popen:
    """``cmd`` in a session of its own (Ctrl-C reaches the runner only, which then stops children
    in order), sent SIGTERM should this process die without stopping it (see :func:`with_parent`)."""
    return subprocess.Popen(cmd, start_new_session=True, preexec_fn=with_parent(), **kwargs)


def run(cmd: list[str], **kwargs) -> int:
    """``cmd`` to its end, as :func:`start` starts it; its exit code. However the wait ends early
    (Ctrl-C, SIGTERM), the child and its whole tree are stopped first (see :func:`wait`)."""
    proc = start(cmd, **kwargs)
    wait(proc, None, threading.Event())
    assert proc.returncode is not None  # wait returned "done": the child has ended
    return proc.returncode


def with_parent():
    """For ``preexec_fn``: the child gets SIGTERM when its parent dies, however it dies.

    A ``kill -9`` of invoke runs no clean-up at all; without this its workers, pytest and their
    kernels (which stop when their worker does) would keep a GPU or TPU busy until they ended.
    Linux's parent-death signal does it (a child of PID 1 notices nothing, elsewhere too). It is
    tied to the thread that starts the child, so the runner's pool threads wait for their
    workers. Everything the child runs is prepared here: between fork and exec only a C call and
    two system calls are made, safe whatever other threads held."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def in_child() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before the signal was asked for
            os.kill(os.getpid(), signal.SIGTERM)

    return in_child


PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


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
