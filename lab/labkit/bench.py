"""Benchmarks that can be rerun: figures are printed and kept in ``out/bench/``, never asserted
in timed tests."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from . import paths, runner
from .errors import LabError
from .results import write_json


def sequential_papermill(run: runner.Plan, workdir: Path) -> float:
    """Seconds to execute the plan's notebooks one after another with papermill's CLI."""
    results_dir = workdir / "results"
    workdir.mkdir(parents=True)
    start = time.monotonic()
    for nb in run.notebooks:
        args = [arg for name, value in run.params[nb.stem].items()
                for arg in ("-p", name, str(value))]
        done = subprocess.run([sys.executable, "-m", "papermill", str(nb), str(workdir / nb.name),
                               *args, "-p", "results_dir", str(results_dir), "--no-progress-bar"],
                              capture_output=True, text=True, cwd=workdir)
        if done.returncode:
            last = done.stderr.strip().splitlines()[-1:] or ["no output"]
            raise LabError(f"papermill failed on {nb.stem}: {last[0]}")
    return time.monotonic() - start


def notebook_phase(backend: str = "cpu", smoke: bool = False, jobs: int | None = None) -> dict:
    """The lab's parallel notebook phase against the papermill CLI one notebook at a time."""
    run = runner.plan(backend, runner.select_notebooks(), {"smoke": smoke})
    jobs = min(jobs or runner.cpu_count(), len(run.notebooks))
    console = Console()
    with tempfile.TemporaryDirectory(prefix="jaxlab-bench-") as tmp:
        tmp = Path(tmp)
        console.print(f"papermill CLI, {len(run.notebooks)} notebooks one after another ...")
        seq = sequential_papermill(run, tmp / "seq")
        console.print(f"lab runner, {jobs} at a time ...")
        start = time.monotonic()
        outcomes = runner.execute_notebooks(run, tmp / "lab", jobs)
        par = time.monotonic() - start
    failed = [o.name for o in outcomes if not o.ok]
    figures = {"backend": backend, "smoke": smoke, "jobs": jobs, "cores": runner.cpu_count(),
               "notebooks": len(run.notebooks), "papermill_sequential_s": round(seq, 1),
               "lab_parallel_s": round(par, 1), "speedup": round(seq / par, 2), "failed": failed}
    table = Table(title="notebook phase")
    for col in ("how", "seconds"):
        table.add_column(col)
    table.add_row("papermill CLI, sequential", f"{seq:.1f}")
    table.add_row(f"invoke lab, {jobs} parallel kernels", f"{par:.1f}")
    table.add_row("speedup", f"{seq / par:.2f}x")
    console.print(table)
    if failed:
        console.print(f"[red]notebooks failed in the lab runner: {', '.join(failed)}[/]")
    write_json(paths.OUT / "bench" / "notebook_phase.json", figures)
    return figures
