"""``invoke bench --what lab``: the whole lab (notebooks, checks, verdict), cold and warm, side by
side in one run.

- **cold**: a compilation cache of the benchmark's own, empty: every program is compiled;
- **warm**: the same lab again with that cache, as a second run on the same day finds it.

For each, the wall time and the CPU time of everything the lab started, and where that time
went: XLA (compiling, or loading from the cache) in the notebooks' kernels, as each kernel tallies
it (labkit.compile_cache), and starting processes: each notebook's kernel and each checks session
starts a Python with JAX, each notebook's worker one with papermill, each measured here on its
own. With ``baseline`` (a git revision), that revision's lab runs in turns with this checkout's,
for a ratio of the medians.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from . import compile_cache, paths, processes
from .bench import figures_file
from .checks_phase import CHECK_SESSIONS
from .errors import LabError
from .plan import cpu_count
from .results import write_json

PHASES = ("cold", "warm")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _lab(tree: Path, out: Path, backend: str, given: dict, jobs: int | None, cache: Path) -> dict:
    """One ``invoke lab`` (local runtime) from ``tree``, with ``cache`` as its compilation cache:
    its wall and CPU seconds, and what its results say it compiled and started."""
    args = [sys.executable, "-m", "invoke", "lab", "--backend", backend, "--runtime", "local", "--out", str(out)]
    args += [a for name, value in given.items() for a in ("-p", f"{name}={value}")]
    args += ["--jobs", str(jobs)] if jobs else []
    path = os.pathsep.join([str(tree / "lab"), os.environ.get("PYTHONPATH", "")])
    env = dict(os.environ, PYTHONPATH=path, **{compile_cache.FOLDER: str(cache)})
    env.pop(compile_cache.SWITCH, None)
    cpu, start = _children_cpu(), time.monotonic()
    # The lab's own way to run a child: Ctrl-C or SIGTERM stops its whole tree (workers, kernels).
    code = processes.run(args, cwd=tree, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    figures: dict[str, object] = {
        "wall_s": round(time.monotonic() - start, 1),
        "cpu_s": round(_children_cpu() - cpu, 1),
    }
    figures["ok"] = code == 0
    results = out / "results.json"
    notebooks = json.loads(results.read_text())["notebooks"] if results.is_file() else {}
    tallies = [nb["compilation"] for nb in notebooks.values() if "compilation" in nb]
    figures["notebooks"] = len(notebooks)
    figures["xla_s"] = round(sum(t["xla_seconds"] for t in tallies), 1) if tallies else None
    figures["programs"] = sum(t["programs"] for t in tallies) if tallies else None
    figures["loaded"] = sum(t["loaded"] for t in tallies) if tallies else None
    figures["kernels"] = len(notebooks) + len(CHECK_SESSIONS)  # each starts JAX; so does each checks session
    figures["workers"] = len(notebooks)  # each notebook's papermill
    return figures


def start_seconds(code: str, tries: int = 3) -> float:
    """Median seconds for a fresh Python to run ``code`` (imports, and starting JAX)."""
    env = dict(os.environ, PYTHONPATH=str(paths.NOTEBOOKS), **{compile_cache.SWITCH: "off"})
    times = []
    for _ in range(tries):
        start = time.monotonic()
        subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True)
        times.append(time.monotonic() - start)
    return statistics.median(times)


def _worktree(base: Path, revision: str) -> Path:
    added = subprocess.run(
        ["git", "-C", str(paths.ROOT), "worktree", "add", "--detach", str(base), revision],
        capture_output=True,
        text=True,
    )
    if added.returncode:
        raise LabError(
            f"--baseline {revision}: not a revision of this checkout "
            f"({(added.stderr.strip().splitlines() or ['git failed'])[-1]})"
        )
    return base


def whole_lab(
    backend: str = "cpu", smoke: bool = False, jobs: int | None = None, baseline: str | None = None, repeat: int = 1
) -> dict:
    """The lab cold and warm, ``repeat`` times each, from this checkout (and ``baseline``)."""
    if repeat < 1:
        raise LabError(f"--repeat {repeat}: give a number of runs, 1 or more")
    console = Console()
    given = {"smoke": "true"} if smoke else {}
    figures: dict = {"backend": backend, "smoke": smoke, "cores": cpu_count(), "repeat": repeat}
    # What each kernel (and checks session) pays before its first cell, and each notebook's worker.
    figures["kernel_start_s"] = round(start_seconds(f"import labkit, labkit.notebook; labkit.setup({backend!r})"), 2)
    figures["worker_start_s"] = round(start_seconds("import labkit.execute"), 2)
    with tempfile.TemporaryDirectory(prefix="jaxlab-bench-") as tmp_name:
        tmp = Path(tmp_name)
        trees = {"this checkout": paths.ROOT}
        if baseline:
            trees = {f"revision {baseline}": _worktree(tmp / "baseline", baseline), **trees}
        runs: dict[str, dict[str, list[dict]]] = {name: {phase: [] for phase in PHASES} for name in trees}
        try:
            for i in range(repeat):
                for n, (name, tree) in enumerate(trees.items()):
                    cache = tmp / f"cache-{n}-{i}"  # empty: the cold run compiles everything
                    for phase in PHASES:
                        console.print(f"the lab from {name}, {phase}, run {i + 1} of {repeat} ...")
                        out = tmp / "runs" / f"{n}-{i}-{phase}"
                        runs[name][phase].append(_lab(tree, out, backend, given, jobs, cache))
        finally:
            if baseline:
                subprocess.run(
                    ["git", "-C", str(paths.ROOT), "worktree", "remove", "--force", str(tmp / "baseline")],
                    capture_output=True,
                )
    figures["runs"] = runs
    figures["median"] = {name: {phase: _medians(found) for phase, found in by.items()} for name, by in runs.items()}
    ours = figures["median"]["this checkout"]
    figures["warm_over_cold"] = round(ours["warm"]["wall_s"] / ours["cold"]["wall_s"], 2)
    if baseline:
        theirs = figures["median"][f"revision {baseline}"]
        figures["ratio"] = {phase: round(ours[phase]["wall_s"] / theirs[phase]["wall_s"], 2) for phase in PHASES}
    figures["failed"] = sorted({name for name, by in runs.items() for r in by["cold"] + by["warm"] if not r["ok"]})
    console.print(table(figures))
    if figures["failed"]:
        console.print(f"[red]the lab failed from: {', '.join(figures['failed'])}[/]")
    write_json(figures_file("lab"), figures)
    return figures


def _medians(found: list[dict]) -> dict:
    keys = ("wall_s", "cpu_s", "xla_s", "programs", "loaded", "kernels", "workers", "notebooks")
    return {k: statistics.median(r[k] for r in found) if all(r[k] is not None for r in found) else None for k in keys}


def _share(part: float | None, whole: float) -> str:
    return f"{part:.1f} s ({part / whole:.0%} of CPU)" if part is not None and whole else "not recorded"


def table(figures: dict) -> Table:
    """Cold and warm side by side, for each tree; the ratios below."""
    title = f"whole lab on {figures['backend']}{' (smoke)' if figures['smoke'] else ''}, {figures['cores']} cores"
    out = Table(title=f"{title}, medians of {figures['repeat']}")
    for col in ("lab", "run", "wall", "CPU", "XLA in the notebooks", "programs (loaded)", "kernel and worker starts"):
        out.add_column(col)
    for name, by in figures["median"].items():
        for phase in PHASES:
            m = by[phase]
            starts = m["kernels"] * figures["kernel_start_s"] + m["workers"] * figures["worker_start_s"]
            programs = f"{m['programs']:.0f} ({m['loaded']:.0f})" if m["programs"] is not None else "not recorded"
            out.add_row(
                name,
                phase,
                f"{m['wall_s']:.1f} s",
                f"{m['cpu_s']:.1f} s",
                _share(m["xla_s"], m["cpu_s"]),
                programs,
                f"{m['kernels']:.0f} × {figures['kernel_start_s']:.2f} s + {m['workers']:.0f} × "
                f"{figures['worker_start_s']:.2f} s = {_share(starts, m['cpu_s'])}",
            )
    out.add_row("this checkout", "warm / cold", f"{figures['warm_over_cold']:.2f}x", "", "", "", "")
    for phase, ratio in figures.get("ratio", {}).items():
        out.add_row("this checkout / baseline", phase, f"{ratio:.2f}x", "", "", "", "")
    return out
