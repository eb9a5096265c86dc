"""The one runner: check everything, execute notebooks in parallel, run the checks, write
``out/<backend>/``.

Nothing is written before every input has been checked. A run is assembled in a staging
folder beside its destination and moved into place at the end, so an interrupted run leaves the
previous results as they were, and a finished one (passed or failed) is complete.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
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

from . import consistency, paths, processes
from . import params as params_mod
from .backends import get_backend, require_device
from .errors import LabError, UsageError
from .results import merge, source_digest, write_json

NOTEBOOK_TIMEOUT = 900.0  # seconds for one notebook, kernel start included
CHECKS_TIMEOUT = 900.0


class Interrupted(LabError):
    exit_code = 130


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
    return list(dict.fromkeys(chosen))


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
        cancel.set()  # every worker stops its notebook and kernel
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


def promote(staging: Path, out: Path) -> None:
    """Move a finished run into place, replacing the previous one only now."""
    old = out.with_name(f".{out.name}.old-{os.getpid()}")
    if out.exists():
        out.rename(old)
    staging.rename(out)
    shutil.rmtree(old, ignore_errors=True)


def run_lab(backend: str = "cpu", notebooks: list[str] | tuple[str, ...] = (), given: dict | None = None,
            out: Path | None = None, jobs: int | None = None, checks: bool = True,
            timeout: float = NOTEBOOK_TIMEOUT, show_progress: bool = True,
            cell_timeout: float | None = None) -> LabRun:
    """Check the inputs, run the notebooks and the checks, and write ``out`` (default ``out/<backend>``)."""
    plan = make_plan(backend, select_notebooks(notebooks), dict(given or {}))
    out = Path(out or paths.OUT / backend).resolve()
    jobs = min(jobs or cpu_count(), len(plan.notebooks))
    started = dt.datetime.now(dt.UTC)
    start = time.monotonic()
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.with_name(f".{out.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    progress = _progress() if show_progress else None
    try:
        if progress:
            progress.start()
        outcomes = execute_notebooks(plan, staging, jobs, timeout, progress, cell_timeout)
        check = None
        if checks:
            task = progress.add_task("checks (pytest)", total=1) if progress else None
            check = run_checks(backend, staging)
            if progress:
                progress.update(task, completed=1)
    except KeyboardInterrupt:
        shutil.rmtree(staging, ignore_errors=True)
        raise Interrupted(f"interrupted: notebooks and kernels stopped; {out} left as it was") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        if progress:
            progress.stop()
    lab = LabRun(backend, out, outcomes, check, round(time.monotonic() - start, 2), plan.given)
    meta = {"backend": backend, "params": plan.given, "jobs": jobs, "started": started.isoformat(timespec="seconds"),
            "seconds": lab.seconds, "ok": lab.ok, "steps": [asdict(o) for o in lab.steps]}
    digests = {nb.stem: source_digest(nb) for nb in plan.notebooks}
    write_json(staging / "results.json", merge(staging / "results", meta, digests))
    from .summary import write_markdown

    write_markdown(lab, staging / "summary.md")
    promote(staging, out)
    return lab
