"""The one runner: check everything, execute notebooks in parallel, run the checks, write
``out/<backend>/``.

Nothing is written before every input has been checked. A run is assembled in a staging
folder beside its destination and moved into place at the end (see :mod:`labkit.outdir`), so an
interrupted run leaves the previous results as they were, and a finished one (passed or failed)
is complete. Ctrl-C, SIGTERM and SIGHUP stop every worker, kernel and check before the run ends.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from . import consistency, outdir, paths, processes, signals
from . import params as params_mod
from .backends import get_backend, require_device
from .errors import LabError, UsageError
from .results import merge, source_digest, write_json
from .summary import write_markdown

NOTEBOOK_TIMEOUT = 900.0  # seconds for one notebook, kernel start included
CHECKS_TIMEOUT = 900.0


class Interrupted(LabError):
    """A run stopped by Ctrl-C, SIGTERM or SIGHUP, after every child was stopped."""

    exit_code = 130

    def __init__(self, message: str, exit_code: int = 130):
        super().__init__(message)
        self.exit_code = exit_code


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


@dataclass
class LabRun:
    backend: str
    out: Path
    notebooks: list[Outcome]
    checks: Outcome | None
    seconds: float
    params: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(o.ok for o in self.steps)

    @property
    def steps(self) -> list[Outcome]:
        return self.notebooks + ([self.checks] if self.checks else [])


def cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def select_notebooks(names: list[str] | tuple[str, ...] = ()) -> list[Path]:
    """The lab's notebooks by name ("03", "03_to_jit_or_not", "to_jit_or_not") or path; all if none."""
    available = paths.notebook_paths()
    if not names:
        return available
    chosen = []
    for name in names:
        path = Path(name)
        if path.suffix == ".ipynb" and path.is_file():
            chosen.append(path.resolve())
            continue
        stem = path.stem if path.suffix == ".ipynb" else name
        matches = [p for p in available if stem in (p.stem, p.stem[:2], p.stem[3:])]
        if len(matches) != 1:
            raise UsageError(f"unknown notebook {name!r}; available: {', '.join(p.stem for p in available)}")
        chosen.append(matches[0])
    chosen = list(dict.fromkeys(chosen))
    # Outputs are named by the notebook's stem: two notebooks of one name would overwrite each other.
    stems: dict[str, Path] = {}
    for path in chosen:
        if (other := stems.setdefault(path.stem, path)) != path:
            raise UsageError(f"two notebooks named {path.stem!r} ({other} and {path}); their outputs would "
                             f"overwrite each other: rename one, or run them one at a time")
    return chosen


@dataclass
class Plan:
    """A checked run: which notebooks, with which typed parameters each."""

    backend: str
    notebooks: list[Path]
    params: dict[str, dict[str, object]]  # notebook stem -> parameters papermill injects
    given: dict[str, object]


def make_plan(backend: str, notebooks: list[Path], given: dict[str, object], check_device: bool = True) -> Plan:
    be = get_backend(backend)
    if check_device:
        require_device(be)
    if not notebooks:
        raise UsageError("no notebooks to run")
    per_notebook = params_mod.resolve(notebooks, given)
    for values in per_notebook.values():
        values["backend"] = backend
    return Plan(backend, notebooks, per_notebook, dict(given))


def _progress() -> Progress:
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=Console(stderr=True))


def execute_notebooks(plan: Plan, staging: Path, jobs: int, timeout: float = NOTEBOOK_TIMEOUT,
                      progress: Progress | None = None, cell_timeout: float | None = None) -> list[Outcome]:
    """Run every notebook of ``plan`` with papermill, ``jobs`` kernels at a time; ``timeout`` bounds
    a whole notebook, ``cell_timeout`` (if set) each cell."""
    for sub in ("notebooks", "logs"):
        (staging / sub).mkdir(parents=True, exist_ok=True)
    results_dir = (staging / "results").resolve()
    results_dir.mkdir(exist_ok=True)
    cancel = threading.Event()
    overall = progress.add_task("notebooks", total=len(plan.notebooks)) if progress else None

    def one(nb: Path) -> Outcome:
        if cancel.is_set():
            return Outcome(nb.stem, "cancelled", 0.0)
        task = progress.add_task(f"  {nb.stem}", total=1) if progress else None
        out_nb = staging / "notebooks" / nb.name
        status_file = staging / "logs" / f"{nb.stem}.status.json"
        injected = dict(plan.params[nb.stem], results_dir=str(results_dir))
        start = time.monotonic()
        log_file = staging / "logs" / f"{nb.stem}.log"
        with log_file.open("w") as log:
            limit = [str(cell_timeout)] if cell_timeout else []
            proc = processes.start([sys.executable, "-m", "labkit.execute", str(nb), str(out_nb),
                                    str(status_file), json.dumps(injected), *limit],
                                   stdout=subprocess.DEVNULL, stderr=log)
            ended = processes.wait(proc, timeout, cancel)
        seconds = round(time.monotonic() - start, 2)
        if ended == "done" and status_file.is_file():
            status = json.loads(status_file.read_text())
            status_file.unlink()
            outcome = Outcome(nb.stem, status["status"], seconds, status.get("cell"),
                              status.get("cell_source", ""), status.get("error", ""))
        elif ended == "timeout":
            outcome = Outcome(nb.stem, "timeout", seconds, error=f"no result after {timeout:.0f} s; kernel stopped")
        elif ended == "cancelled":
            outcome = Outcome(nb.stem, "cancelled", seconds)
        else:
            lines = log_file.read_text().strip().splitlines()
            error = lines[-1] if lines else f"worker exited with code {proc.returncode}"
            outcome = Outcome(nb.stem, "failed", seconds, error=error)
        if progress:
            progress.update(task, completed=1, description=f"  {nb.stem} [{_STYLE[outcome.status]}]{outcome.status}[/]")
            progress.advance(overall)
        return outcome

    pool = ThreadPoolExecutor(max_workers=max(1, jobs))
    try:
        futures = [pool.submit(one, nb) for nb in plan.notebooks]
        return [f.result() for f in futures]
    except BaseException:
        with signals.deferred():  # a second Ctrl-C must not cut the stopping short
            cancel.set()  # every worker stops its notebook and kernel
            pool.shutdown(wait=True, cancel_futures=True)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


_STYLE = {"passed": "green", "failed": "red", "timeout": "red", "cancelled": "yellow"}


# The checks' sessions: float64 needs jax_enable_x64, which changes every default dtype, so it
# runs in a process of its own (see labkit.consistency.plugin). name -> extra pytest arguments.
CHECK_SESSIONS = {"": [], "-x64": ["--x64"]}
PYTEST_NO_TESTS = 5  # pytest's exit code when a session selects nothing


def run_checks(backend: str, staging: Path, timeout: float = CHECKS_TIMEOUT,
               cancel: threading.Event | None = None) -> Outcome:
    """The consistency checks (pytest ``-m consistency``) on ``backend``, one session after the
    other (a TPU takes one process at a time); JUnit XML and a log per session into ``staging``."""
    start = time.monotonic()
    counts: dict[str, int] = {}
    failed_log = None
    for suffix, extra in CHECK_SESSIONS.items():
        junit, log = staging / f"junit{suffix}.xml", staging / "logs" / f"checks{suffix}.log"
        left = timeout - (time.monotonic() - start)
        with log.open("w") as fh:
            # The checks shipped in the package; the project's own tests (tests/) are not the lab's.
            proc = processes.start([sys.executable, "-m", "pytest", "-p", "labkit.consistency.plugin",
                                    str(consistency.HERE), "-m", "consistency", *extra, "--backend", backend,
                                    f"--junitxml={junit}", "-q", "-p", "no:cacheprovider"],
                                   cwd=paths.ROOT, stdout=fh, stderr=fh)
            ended = processes.wait(proc, left, cancel or threading.Event())
        if ended != "done":
            seconds = round(time.monotonic() - start, 2)
            if ended == "cancelled":
                return Outcome("checks", "cancelled", seconds)
            return Outcome("checks", "timeout", seconds, error=f"pytest stopped after {timeout:.0f} s")
        for key, n in junit_counts(junit).items():
            counts[key] = counts.get(key, 0) + n
        # A session with nothing to run (a backend without float64) is not a failure; the total is checked below.
        if proc.returncode not in (0, PYTEST_NO_TESTS) and failed_log is None:
            failed_log = log
    seconds = round(time.monotonic() - start, 2)
    text = ", ".join(f"{n} {k}" for k, n in counts.items() if n) or "no tests ran"
    if failed_log is None and counts.get("passed", 0) > 0:
        return Outcome("checks", "passed", seconds, error=text)
    lines = failed_log.read_text().strip().splitlines() if failed_log else []
    return Outcome("checks", "failed", seconds, error=f"{text}; {lines[-1] if lines else ''}".strip("; "))


def junit_counts(junit: Path) -> dict[str, int]:
    if not junit.is_file():
        return {}
    root = ET.parse(junit).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    total = {k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors", "skipped")}
    return {"passed": total["tests"] - total["failures"] - total["errors"] - total["skipped"],
            "failed": total["failures"], "errors": total["errors"], "skipped": total["skipped"]}


def run_lab(backend: str = "cpu", notebooks: list[str] | tuple[str, ...] = (), given: dict | None = None,
            out: Path | None = None, jobs: int | None = None, checks: bool = True,
            timeout: float = NOTEBOOK_TIMEOUT, show_progress: bool = True,
            cell_timeout: float | None = None) -> LabRun:
    """Check the inputs, run the notebooks and the checks, and write ``out`` (default ``out/<backend>``)."""
    plan = make_plan(backend, select_notebooks(notebooks), dict(given or {}))
    out = outdir.check(out or paths.OUT / backend)
    if jobs is not None and jobs < 1:
        raise UsageError(f"--jobs {jobs}: give a number of notebooks to run at once, 1 or more")
    jobs = min(jobs or cpu_count(), len(plan.notebooks))
    if cell_timeout is not None and cell_timeout <= 0:
        raise UsageError(f"--cell-timeout {cell_timeout}: give seconds, more than 0")
    with signals.stop_on_signals(), outdir.staged(out, backend) as staging:
        try:
            return _run_staged(plan, staging, out, jobs, checks, timeout, show_progress, cell_timeout)
        except KeyboardInterrupt as stop:
            code = getattr(stop, "exit_code", Interrupted.exit_code)
            what = getattr(stop, "signum", None)
            name = signal.Signals(what).name if what else "Ctrl-C"
            raise Interrupted(f"stopped by {name}: every notebook, kernel and check was stopped; {out} left as "
                              f"it was", code) from None
        except OSError as err:  # writing the run's files or moving it into place
            raise LabError(f"could not write the run into {out}: {err.strerror or err}; {out} left as it was") from None


def _run_staged(plan: Plan, staging: Path, out: Path, jobs: int, checks: bool, timeout: float,
                show_progress: bool, cell_timeout: float | None) -> LabRun:
    started = dt.datetime.now(dt.UTC)
    start = time.monotonic()
    progress = _progress() if show_progress else None
    try:
        if progress:
            progress.start()
        outcomes = execute_notebooks(plan, staging, jobs, timeout, progress, cell_timeout)
        check = None
        if checks:
            task = progress.add_task("checks (pytest)", total=1) if progress else None
            check = run_checks(plan.backend, staging)
            if progress:
                progress.update(task, completed=1)
    finally:
        if progress:
            progress.stop()
    lab = LabRun(plan.backend, out, outcomes, check, round(time.monotonic() - start, 2), plan.given)
    meta = {"backend": plan.backend, "params": plan.given, "jobs": jobs,
            "started": started.isoformat(timespec="seconds"), "seconds": lab.seconds, "ok": lab.ok,
            "steps": [asdict(o) for o in lab.steps]}
    digests = {nb.stem: source_digest(nb) for nb in plan.notebooks}
    write_json(staging / "results.json", merge(staging / "results", meta, digests))
    write_markdown(lab, staging / "summary.md")
    outdir.promote(staging, out)
    return lab
