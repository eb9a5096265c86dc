"""The steps of a run: every notebook in a worker process of its own, and the checks' pytest
sessions, a number of them at a time, each ending as an :class:`Outcome`.

:mod:`labkit.runner` plans a run, stages its folder and writes its files around these steps;
the benchmark runs the notebook steps alone. Cancelling (a signal, a failed run's end) stops every
worker, kernel and check that is still running.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from rich.progress import Progress

from . import processes, signals
from .checks_phase import CHECK_SESSIONS, CHECKS_TIMEOUT, PYTEST_NO_TESTS, Session, check_session
from .plan import Plan

NOTEBOOK_TIMEOUT = 900.0  # seconds for one notebook, kernel start included


@dataclass
class Outcome:
    """How one step of a run ended: a notebook, or the checks."""

    name: str
    status: str  # passed | failed | timeout | cancelled
    seconds: float
    cell: int | None = None
    cell_source: str = ""
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "passed"


def execute_steps(
    plan: Plan,
    staging: Path,
    jobs: int,
    timeout: float = NOTEBOOK_TIMEOUT,
    progress: Progress | None = None,
    cell_timeout: float | None = None,
    checks: bool = True,
) -> tuple[list[Outcome], Outcome | None]:
    """The notebooks and (with ``checks``) the checks' sessions, ``jobs`` processes at a time.

    The checks' sessions are queued first: they are the longest steps, and run next to the
    notebooks instead of after them, so the run ends when the busiest worker does.
    """
    for sub in ("notebooks", "logs"):
        (staging / sub).mkdir(parents=True, exist_ok=True)
    results_dir = (staging / "results").resolve()
    results_dir.mkdir(exist_ok=True)
    cancel = threading.Event()
    overall = progress.add_task("notebooks", total=len(plan.notebooks)) if progress else None
    checks_task = progress.add_task("checks (pytest)", total=len(CHECK_SESSIONS)) if progress and checks else None

    def notebook(nb: Path) -> Outcome:
        if cancel.is_set():
            return Outcome(nb.stem, "cancelled", 0.0)
        task = progress.add_task(f"  {nb.stem}", total=1) if progress else None
        outcome = run_notebook(plan, nb, staging, results_dir, timeout, cell_timeout, cancel)
        if progress:
            assert task is not None and overall is not None  # both are added whenever progress is given
            progress.update(task, completed=1, description=f"  {nb.stem} [{_STYLE[outcome.status]}]{outcome.status}[/]")
            progress.advance(overall)
        return outcome

    def session(suffix: str, extra: list[str]) -> Session:
        done = check_session(plan.backend, staging, suffix, extra, CHECKS_TIMEOUT, cancel)
        if progress:
            assert checks_task is not None  # added whenever progress is given and the checks run, as here
            progress.advance(checks_task)
        return done

    start = time.monotonic()
    pool = ThreadPoolExecutor(max_workers=max(1, jobs))
    try:
        sessions = [pool.submit(session, suffix, extra) for suffix, extra in CHECK_SESSIONS.items()] if checks else []
        notebooks = [pool.submit(notebook, nb) for nb in plan.notebooks]
        outcomes = [f.result() for f in notebooks]
        check = checks_outcome([f.result() for f in sessions], time.monotonic() - start) if checks else None
        return outcomes, check
    except BaseException:
        with signals.deferred():  # a second Ctrl-C must not cut the stopping short
            cancel.set()  # every worker stops its notebook and kernel, or its pytest
            pool.shutdown(wait=True, cancel_futures=True)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def run_notebook(
    plan: Plan,
    nb: Path,
    staging: Path,
    results_dir: Path,
    timeout: float,
    cell_timeout: float | None,
    cancel: threading.Event,
    suffix: str = "",
) -> Outcome:
    """One notebook in a worker process of its own (``labkit.execute``), and how it ended. Its
    files are named by the notebook's stem, and ``suffix`` (one process's of several: see
    labkit.rank)."""
    name = nb.stem + suffix
    out_nb = staging / "notebooks" / f"{name}.ipynb"
    status_file = staging / "logs" / f"{name}.status.json"
    injected = dict(plan.params[nb.stem], results_dir=str(results_dir))
    start = time.monotonic()
    log_file = staging / "logs" / f"{name}.log"
    with log_file.open("w") as log:
        limit = [str(cell_timeout)] if cell_timeout else []
        proc = processes.start(
            [
                sys.executable,
                "-m",
                "labkit.execute",
                str(nb),
                str(out_nb),
                str(status_file),
                json.dumps(injected),
                *limit,
            ],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        ended = processes.wait(proc, timeout, cancel)
    seconds = round(time.monotonic() - start, 2)
    if ended == "done" and status_file.is_file():
        status = json.loads(status_file.read_text())
        status_file.unlink()
        return Outcome(
            name,
            status["status"],
            seconds,
            status.get("cell"),
            status.get("cell_source", ""),
            status.get("error", ""),
        )
    if ended == "timeout":
        return Outcome(name, "timeout", seconds, error=f"no result after {timeout:.0f} s; kernel stopped")
    if ended == "cancelled":
        return Outcome(name, "cancelled", seconds)
    lines = log_file.read_text().strip().splitlines()
    error = lines[-1] if lines else f"worker exited with code {proc.returncode}"
    return Outcome(name, "failed", seconds, error=error)


_STYLE = {"passed": "green", "failed": "red", "timeout": "red", "cancelled": "yellow"}


def checks_outcome(sessions: list[Session], seconds: float) -> Outcome:
    """The checks as one step: passed only if every session ended well and something passed."""
    seconds = round(seconds, 2)
    if any(s.ended == "cancelled" for s in sessions):
        return Outcome("checks", "cancelled", seconds)
    if any(s.ended == "timeout" for s in sessions):
        return Outcome("checks", "timeout", seconds, error=f"pytest stopped after {CHECKS_TIMEOUT:.0f} s")
    counts: dict[str, int] = {}
    for s in sessions:
        for key, n in s.counts.items():
            counts[key] = counts.get(key, 0) + n
    text = ", ".join(f"{n} {k}" for k, n in counts.items() if n) or "no tests ran"
    # A session with nothing to run (a backend without float64) is not a failure; the total is.
    failed = [s for s in sessions if s.returncode not in (0, PYTEST_NO_TESTS)]
    if not failed and counts.get("passed", 0) > 0:
        return Outcome("checks", "passed", seconds, error=text)
    lines = failed[0].log.read_text().strip().splitlines() if failed else []
    return Outcome("checks", "failed", seconds, error=f"{text}; {lines[-1] if lines else ''}".strip("; "))


def run_checks(
    backend: str, staging: Path, timeout: float = CHECKS_TIMEOUT, cancel: threading.Event | None = None
) -> Outcome:
    """The consistency checks on their own, one session after the other."""
    (staging / "logs").mkdir(parents=True, exist_ok=True)
    start, sessions = time.monotonic(), []
    for suffix, extra in CHECK_SESSIONS.items():
        sessions.append(check_session(backend, staging, suffix, extra, timeout, cancel or threading.Event()))
        if sessions[-1].ended != "done":
            break
    return checks_outcome(sessions, time.monotonic() - start)
