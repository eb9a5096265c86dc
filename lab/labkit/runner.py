"""The one runner: check everything, execute notebooks in parallel, run the checks, write
``out/<backend>/``.

Nothing is written before every input has been checked. A run is assembled in a staging
folder beside its destination and moved into place at the end (see :mod:`labkit.outdir`), so an
interrupted run leaves the previous results as they were, and a finished one (passed or failed)
is complete. Ctrl-C, SIGTERM and SIGHUP stop every worker, kernel and check before the run ends.
"""

from __future__ import annotations

import datetime as dt
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from . import compile_cache, outdir, paths, signals
from .checks_phase import CHECK_SESSIONS
from .errors import LabError, UsageError
from .launch import check_launcher, execute_processes
from .plan import Plan, make_plan, multi_process_notebooks, select_notebooks, slots
from .results import merge, source_digest, write_json
from .steps import NOTEBOOK_TIMEOUT, Outcome, execute_steps
from .summary import write_markdown
from .verdict import Verdict, verdict


class Interrupted(LabError):
    """A run stopped by Ctrl-C, SIGTERM or SIGHUP, after every child was stopped."""

    exit_code = 130

    def __init__(self, message: str, exit_code: int = 130):
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class LabRun:
    backend: str
    out: Path
    notebooks: list[Outcome]
    checks: Outcome | None
    seconds: float
    params: dict = field(default_factory=dict)
    verdict: Verdict | None = None  # against the reference; None when not asked for
    cache: dict = field(default_factory=dict)  # the compilation cache as the run began (compile_cache.state)

    @property
    def ok(self) -> bool:
        return all(o.ok for o in self.steps) and (self.verdict is None or self.verdict.ok)

    @property
    def steps(self) -> list[Outcome]:
        return self.notebooks + ([self.checks] if self.checks else [])


def _progress() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
    )


def plan_run(
    backend: str,
    notebooks: list[str] | tuple[str, ...],
    given: dict,
    processes: int = 1,
    launcher: str = "local",
    check_device: bool = True,
) -> Plan:
    """A run's checked plan: its notebooks (in a run of several processes, those that can run so)
    and their typed parameters, and the launcher that starts the processes."""
    if processes != 1:
        check_launcher(launcher, processes)
    chosen = multi_process_notebooks(notebooks) if processes > 1 else select_notebooks(notebooks)
    return make_plan(backend, chosen, given, check_device, processes)


def run_lab(
    backend: str = "cpu",
    notebooks: list[str] | tuple[str, ...] = (),
    given: dict | None = None,
    out: Path | None = None,
    jobs: int | None = None,
    checks: bool = True,
    timeout: float = NOTEBOOK_TIMEOUT,
    show_progress: bool = True,
    cell_timeout: float | None = None,
    compare: bool = False,
    against: Path | None = None,
    processes: int = 1,
    launcher: str = "local",
    cache: bool = True,
) -> LabRun:
    """Check the inputs, run the notebooks and the checks, and write ``out`` (default ``out/<backend>``).
    With ``compare``, end with the verdict against ``against`` (default: the CPU reference). With
    ``processes`` over 1, the multi-process notebooks and checks run as that many processes, started
    by ``launcher`` (see labkit.launch). Without ``cache``, nothing is read from or written to the
    compilation cache (see labkit.compile_cache)."""
    plan = plan_run(backend, notebooks, dict(given or {}), processes, launcher)
    if cache:
        compile_cache.folder(plan.backend)  # a cache folder in the checkout is refused before any work
    out = outdir.check(out or paths.OUT / backend)
    if jobs is not None and jobs < 1:
        raise UsageError(f"--jobs {jobs}: give a number of notebooks to run at once, 1 or more")
    jobs = slots(plan.backend, jobs, len(plan.notebooks) + (len(CHECK_SESSIONS) if checks else 0))
    if processes > 1:
        jobs = processes
    if cell_timeout is not None and cell_timeout <= 0:
        raise UsageError(f"--cell-timeout {cell_timeout}: give seconds, more than 0")
    with compile_cache.switched(cache), signals.stop_on_signals(), outdir.staged(out, backend) as staging:
        try:
            return _run_staged(
                plan,
                staging,
                out,
                jobs,
                checks,
                timeout,
                show_progress,
                cell_timeout,
                against if compare else False,
                (processes, launcher),
            )
        except KeyboardInterrupt as stop:
            code = getattr(stop, "exit_code", Interrupted.exit_code)
            what = getattr(stop, "signum", None)
            name = signal.Signals(what).name if what else "Ctrl-C"
            raise Interrupted(
                f"stopped by {name}: every notebook, kernel and check was stopped; {out} left as it was", code
            ) from None
        except OSError as err:  # writing the run's files or moving it into place
            raise LabError(f"could not write the run into {out}: {err.strerror or err}; {out} left as it was") from None


def _run_staged(
    plan: Plan,
    staging: Path,
    out: Path,
    jobs: int,
    checks: bool,
    timeout: float,
    show_progress: bool,
    cell_timeout: float | None,
    against: Path | None | Literal[False],
    launched: tuple[int, str] = (1, "local"),
) -> LabRun:
    started = dt.datetime.now(dt.UTC)
    cache = compile_cache.state(plan.backend)  # as the run begins: warm if it holds programs
    start = time.monotonic()
    progress = _progress() if show_progress else None
    processes, launcher = launched
    try:
        if progress:
            progress.start()
        if processes > 1:
            outcomes, check = execute_processes(
                plan, staging, processes, launcher, timeout, progress, cell_timeout, checks
            )
        else:
            outcomes, check = execute_steps(plan, staging, jobs, timeout, progress, cell_timeout, checks)
    finally:
        if progress:
            progress.stop()
    lab = LabRun(plan.backend, out, outcomes, check, round(time.monotonic() - start, 2), plan.given, cache=cache)
    meta = {
        "backend": plan.backend,
        "params": plan.given,
        "jobs": jobs,
        "processes": processes,
        "launcher": launcher if processes > 1 else None,
        "compile_cache": cache,
        "started": started.isoformat(timespec="seconds"),
        "seconds": lab.seconds,
        "ok": lab.ok,
        "steps": [asdict(o) for o in lab.steps],
    }
    digests = {nb.stem: source_digest(nb) for nb in plan.notebooks}
    results = merge(staging / "results", meta, digests)
    if against is not False and results["notebooks"]:
        lab.verdict = verdict(results, against or None)
        results["run"]["ok"], results["run"]["verdict"] = lab.ok, lab.verdict.line
    write_json(staging / "results.json", results)
    write_markdown(lab, staging / "summary.md")
    outdir.promote(staging, out)
    return lab
