"""Starting a multi-process run: N copies of labkit.rank, by the launcher a cluster already uses.

- ``local``: N processes on this host, told by environment variables where the coordinator is
  (127.0.0.1 at a free port) and which process each is (labkit.distributed);
- ``srun``: Slurm's ``srun -n N`` starts them, on one node or several; JAX reads Slurm's variables
  itself. ``--kill-on-bad-exit`` makes Slurm stop the others when one fails.

No process may hang on behind a failed one: the others cannot finish without it (their next
collective would wait for it). So the first process that fails ends the run: the others and
everything they started are stopped, and the run names the process that failed and why. What each
process wrote so far (its notebook, its log, its results) stays in the run's folder.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
from rich.progress import Progress

from . import processes as procs
from . import signals
from .distributed import COORDINATOR, PROCESS_COUNT, PROCESS_ID
from .errors import UsageError
from .plan import Plan
from .ports import free_ports
from .rank import process_id, write_plan
from .steps import NOTEBOOK_TIMEOUT, Outcome

LAUNCHERS = {
    "local": "N processes on this host, with a coordinator on 127.0.0.1",
    "srun": "Slurm's srun -n N, on the nodes Slurm gives; JAX finds the coordinator itself",
    # invoke pod and the JobSet start `invoke lab --launcher cluster` on every host themselves
    "cluster": "this is one of the N processes a cluster started (a TPU pod's --worker=all, a JobSet's pods): "
    "run this one; JAX finds the others",
}


def check_launcher(launcher: str, processes: int) -> None:
    if launcher not in LAUNCHERS:
        raise UsageError(f"unknown launcher {launcher!r}; valid launchers: {', '.join(LAUNCHERS)}")
    if processes < 2:
        raise UsageError(f"--processes {processes}: give 2 or more (one process is a plain invoke lab)")
    if launcher == "srun" and not shutil.which("srun"):
        raise UsageError("--launcher srun: no srun on PATH; run it on a Slurm node, or use --launcher local")


def rank_commands(launcher: str, processes: int, staging: Path) -> list[tuple[list[str], dict[str, str]]]:
    """The command (and extra environment) of each process that the launcher starts itself."""
    rank = [sys.executable, "-m", "labkit.rank", str(staging)]
    if launcher == "cluster":
        return [(rank, {})]
    if launcher == "srun":
        # One srun starts them all; Slurm stops the others when one fails, and labels their output.
        srun = ["srun", f"--ntasks={processes}", "--kill-on-bad-exit=1", "--label"]
        return [([*srun, *rank], {})]
    address = f"127.0.0.1:{free_ports()}"
    return [(rank, {COORDINATOR: address, PROCESS_ID: str(i), PROCESS_COUNT: str(processes)}) for i in range(processes)]


def execute_processes(
    plan: Plan,
    staging: Path,
    processes: int,
    launcher: str,
    timeout: float = NOTEBOOK_TIMEOUT,
    progress: Progress | None = None,
    cell_timeout: float | None = None,
    checks: bool = True,
) -> tuple[list[Outcome], Outcome | None]:
    """Run ``plan``'s notebooks (and the cross-process checks) as ``processes`` processes."""
    for sub in ("notebooks", "logs", "results", "processes"):
        (staging / sub).mkdir(parents=True, exist_ok=True)
    write_plan(staging, plan, processes, checks, timeout, cell_timeout)
    commands = rank_commands(launcher, processes, staging)
    task = progress.add_task(f"{processes} processes ({launcher})", total=1) if progress else None
    started = time.monotonic()
    ended = _run_all(commands, staging, timeout * (len(plan.notebooks) + checks))
    here: list[int] | range = range(processes)
    if launcher == "cluster":  # a cluster's host runs and gathers its own process only
        here, ended = [process_id()], {process_id(): code for code in ended.values()}
    outcomes = gather(staging, here, ended, time.monotonic() - started, launcher)
    if progress and task is not None:
        progress.update(task, completed=1)
    notebooks = [o for o in outcomes if not o.name.startswith("checks")]
    check = [o for o in outcomes if o.name.startswith("checks")]
    return notebooks, _one_checks_outcome(check) if checks else None


def _run_all(commands, staging: Path, timeout: float) -> dict[int, int | str]:
    """Start every command, and wait until all have ended or the first has failed; then stop the
    rest. Returns each command's exit code, or "stopped" for those stopped here."""
    log_dir = staging / "logs"
    started: list[subprocess.Popen] = []
    seen: dict[int, psutil.Process] = {}  # every process the commands started, however deep
    codes: dict[int, int | str] = {}
    logs = []
    try:
        for i, (cmd, env) in enumerate(commands):
            logs.append((log_dir / (f"process-{i}.log" if len(commands) > 1 else "processes.log")).open("w"))
            started.append(procs.start(cmd, stdout=logs[-1], stderr=subprocess.STDOUT, env={**os.environ, **env}))
        deadline = time.monotonic() + timeout
        while len(codes) < len(started):
            _remember_tree(started, seen)
            for i, proc in enumerate(started):
                if i not in codes and proc.poll() is not None:
                    codes[i] = proc.returncode
            if any(code != 0 for code in codes.values()) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    finally:
        with signals.deferred():  # a second Ctrl-C must not cut the stopping short
            for i, proc in enumerate(started):
                if proc.poll() is None:
                    procs.stop(proc)
                    codes.setdefault(i, "stopped")
            _stop_leftovers(seen)
            for log in logs:
                log.close()
    return codes


def _remember_tree(started: list[subprocess.Popen], seen: dict[int, psutil.Process]) -> None:
    """A kernel outlives a process that was killed (it runs in a session of its own), so the
    processes under each command are remembered while they run, to be stopped at the end."""
    for proc in started:
        try:
            for child in psutil.Process(proc.pid).children(recursive=True):
                seen.setdefault(child.pid, child)
        except psutil.NoSuchProcess:
            pass


def _stop_leftovers(seen: dict[int, psutil.Process]) -> None:
    alive = [p for p in seen.values() if p.is_running()]  # is_running also rules out a reused pid
    for p in alive:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=procs.GRACE_SECONDS)


_SRUN_TASK = re.compile(r"task (\d+): (.+)$", re.M)


def gather(staging: Path, processes, ended: dict[int, int | str], seconds: float, launcher: str) -> list[Outcome]:
    """The steps of ``processes`` (their numbers), from the reports they wrote; a process that
    wrote none (killed, or stopped here) gets one step that says so, naming the process that failed
    first."""
    reports = {}
    for i in processes:
        path = staging / "processes" / f"{i}.json"
        if path.is_file():
            reports[i] = json.loads(path.read_text())
    culprit = _first_failure(staging, ended, reports, launcher)
    outcomes: list[Outcome] = []
    for i in processes:
        if i in reports:
            outcomes += [Outcome(**step) for step in reports[i]["steps"]]
        elif culprit and culprit[0] == i:
            outcomes.append(Outcome(f"process {i}", "failed", round(seconds, 2), error=culprit[1]))
        else:
            why = f"stopped: process {culprit[0]} failed first" if culprit else "stopped before it reported"
            outcomes.append(Outcome(f"process {i}", "cancelled", round(seconds, 2), error=why))
    for o in outcomes:  # a failure names its process, wherever it is read
        if o.status in ("failed", "timeout") and not o.error.startswith("process "):
            o.error = f"process {_process_of(o.name)}: {o.error or o.status}"
    return outcomes


def _process_of(name: str) -> int:
    m = re.search(r"\.process-(\d+)$|^process (\d+)$", name)
    return int(m.group(1) or m.group(2)) if m else 0


def _first_failure(staging, ended, reports, launcher) -> tuple[int, str] | None:
    """(the process that failed first, why), from its report, its exit, or srun's log."""
    for i, report in sorted(reports.items()):
        failed = [s for s in report["steps"] if s["status"] != "passed"]
        if failed:
            return i, f"{failed[0]['name']}: {failed[0]['error'] or failed[0]['status']}"
    if launcher == "srun":
        log = staging / "logs" / "processes.log"
        text = log.read_text() if log.is_file() else ""
        if m := _SRUN_TASK.search(text):
            return int(m.group(1)), f"srun: task {m.group(1)}: {m.group(2).strip()}"
        return None
    for i, code in sorted(ended.items()):
        if isinstance(code, int) and code != 0:
            how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exited with code {code}"
            return i, f"process {i} {how} before it reported (see logs/process-{i}.log)"
    return None


def _one_checks_outcome(per_process: list[Outcome]) -> Outcome:
    if not per_process:
        return Outcome("checks", "cancelled", 0.0, error="no process reached the checks")
    worst = next((o for o in per_process if not o.ok), per_process[0])
    return Outcome("checks", worst.status, max(o.seconds for o in per_process), error=worst.error)
