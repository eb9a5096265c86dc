"""Signals that end a run: Ctrl-C (SIGINT), SIGTERM (``kill``, a service manager, a batch
scheduler) and SIGHUP (a dropped ssh connection) all become :class:`Stopped` in the main thread,
so ``finally`` blocks run and every child is stopped; Python's default for the last two is to
die on the spot and leave kernels, pytest and containers running.

While children are being stopped, further signals are noted and not acted on: a second or third
Ctrl-C must not cut the clean-up short.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

ENDING = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Stopped(KeyboardInterrupt):
    """A run ended by a signal; ``exit_code`` follows the shell's 128 + signal number."""

    def __init__(self, signum: int = signal.SIGINT):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def _raise(signum, frame):
    raise Stopped(signum)


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within this block, SIGINT, SIGTERM and SIGHUP raise :class:`Stopped` in the main thread."""
    if not _in_main_thread():  # handlers can only be set there; the main thread's own apply
        yield
        return
    previous = {s: signal.signal(s, _raise) for s in ENDING}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@contextmanager
def deferred() -> Iterator[list[int]]:
    """Within this block (a clean-up), ending signals are recorded, not raised."""
    if not _in_main_thread():
        yield []
        return
    seen: list[int] = []
    previous = {s: signal.signal(s, lambda signum, frame: seen.append(signum)) for s in ENDING}
    try:
        yield seen
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
