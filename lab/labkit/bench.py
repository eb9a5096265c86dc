"""Benchmarks that can be rerun: figures are printed and kept in ``out/bench/``, never asserted
in timed tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from . import compile_cache, paths, steps
from . import plan as plan_mod
from .errors import LabError
from .hub.leases import MEASURED_HERE
from .results import write_json

# What each kind of benchmark writes its figures to, under out/bench/.
FIGURES = {
    "notebooks": "notebook_phase.json",
    "lab": "whole_lab.json",
    "images": "images.json",
    "learner": MEASURED_HERE.name,  # one learner's memory, which the hub's lease plan reads
    "hub": "hub.json",  # a class logging in at once
}


def figures_file(what: str) -> Path:
    return paths.OUT / "bench" / FIGURES[what]


def sequential_papermill(plan: plan_mod.Plan, workdir: Path) -> float:
    """Seconds to execute the plan's notebooks one after another with papermill's CLI."""
    results_dir = workdir / "results"
    workdir.mkdir(parents=True)
    start = time.monotonic()
    for nb in plan.notebooks:
        args = [arg for name, value in plan.params[nb.stem].items() for arg in ("-p", name, str(value))]
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "papermill",
                str(nb),
                str(workdir / nb.name),
                *args,
                "-p",
                "results_dir",
                str(results_dir),
                "--no-progress-bar",
            ],
            capture_output=True,
            text=True,
            cwd=workdir,
        )
        if done.returncode:
            last = done.stderr.strip().splitlines()[-1:] or ["no output"]
            raise LabError(f"papermill failed on {nb.stem}: {last[0]}")
    return time.monotonic() - start


def notebook_phase(backend: str = "cpu", smoke: bool = False, jobs: int | None = None) -> dict:
    """The lab's parallel notebook phase against the papermill CLI one notebook at a time. Both
    without the compilation cache: this compares how the notebooks are run, and whichever ran
    second would otherwise load what the first compiled (``--what lab`` measures the cache)."""
    plan = plan_mod.make_plan(backend, plan_mod.select_notebooks(), {"smoke": smoke})
    jobs = plan_mod.slots(backend, jobs, len(plan.notebooks))
    console = Console()
    with tempfile.TemporaryDirectory(prefix="jaxlab-bench-") as tmp_name, compile_cache.switched(False):
        tmp = Path(tmp_name)
        console.print(f"papermill CLI, {len(plan.notebooks)} notebooks one after another ...")
        seq = sequential_papermill(plan, tmp / "seq")
        console.print(f"lab runner, {jobs} at a time ...")
        start = time.monotonic()
        outcomes, _ = steps.execute_steps(plan, tmp / "lab", jobs, checks=False)
        par = time.monotonic() - start
    failed = [o.name for o in outcomes if not o.ok]
    figures = {
        "backend": backend,
        "smoke": smoke,
        "jobs": jobs,
        "cores": plan_mod.cpu_count(),
        "notebooks": len(plan.notebooks),
        "papermill_sequential_s": round(seq, 1),
        "lab_parallel_s": round(par, 1),
        "speedup": round(seq / par, 2),
        "failed": failed,
    }
    table = Table(title="notebook phase")
    for col in ("how", "seconds"):
        table.add_column(col)
    table.add_row("papermill CLI, sequential", f"{seq:.1f}")
    table.add_row(f"invoke lab, {jobs} parallel kernels", f"{par:.1f}")
    table.add_row("speedup", f"{seq / par:.2f}x")
    console.print(table)
    if failed:
        console.print(f"[red]notebooks failed in the lab runner: {', '.join(failed)}[/]")
    write_json(figures_file("notebooks"), figures)
    return figures


def _image_size(engine, image: str) -> int:
    size = engine.image_field(image, "{{.Size}}")
    if size is None:
        raise LabError(f"no image {image}: build it first (invoke build --backend {image.split(':')[1]})")
    return int(size)


def _breakdown(engine, image: str) -> dict[str, int]:
    """MB per part of the image: the Python packages by name (nvidia's per library), the rest."""
    script = (
        "cd /opt/venv/lib/python3*/site-packages && du -sm nvidia/* jax_plugins jaxlib scipy* numpy* "
        "2>/dev/null; du -sm --exclude=nvidia --exclude=jax_plugins --exclude=jaxlib --exclude='scipy*' "
        "--exclude='numpy*' . | sed 's/\\t\\.$/\\tother packages/'; du -smx / 2>/dev/null | tail -1"
    )
    output = engine.run_script(image, script)
    parts = {}
    for line in output.splitlines():
        size, _, name = line.partition("\t")
        parts["whole filesystem" if name == "/" else name] = int(size)
    return parts


def _context_copy(dest: Path) -> Path:
    """The build context (tracked files and the locks) in a folder of its own, to edit freely."""
    files = subprocess.run(["git", "-C", str(paths.ROOT), "ls-files"], capture_output=True, text=True).stdout.split()
    for rel in files + [str(p.relative_to(paths.ROOT)) for p in (paths.ROOT / "docker" / "locks").glob("*.txt")]:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(paths.ROOT / rel, target)
    return dest


def _timed(cmd: list[str], **kwargs) -> float:
    start = time.monotonic()
    done = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if done.returncode:
        raise LabError(f"{' '.join(cmd[:4])} ... failed: {(done.stderr.strip().splitlines() or ['?'])[-1]}")
    return time.monotonic() - start


def images(engine) -> dict:
    """Image sizes (CUDA's broken down), the rebuild after a notebook edit, docker vs local lab time."""
    from . import images as images_mod
    from .backends import get_backend

    console = Console()
    engine.require()
    env = dict(os.environ, DOCKER_BUILDKIT="1")
    figures: dict = {"cpu_image_bytes": _image_size(engine, "jaxlab:cpu")}
    try:
        figures["cuda_image_bytes"] = _image_size(engine, "jaxlab:cuda")
        # The target is for the default lock; a cuda12 build is larger (docker/prune/ trims both).
        figures["cuda_lock"] = images_mod.built_lock(engine, get_backend("cuda"))
        figures["cuda_breakdown_mb"] = _breakdown(engine, "jaxlab:cuda")
    except LabError as err:
        console.print(f"[yellow]{err}[/]")
    with tempfile.TemporaryDirectory(prefix="jaxlab-bench-") as tmp:
        # "Once built": the image is current first, so the docker run below only finds it so.
        images_mod.build(engine, "cpu", quiet=True)
        console.print("lab, local runtime ...")
        figures["lab_local_s"] = round(
            _timed(
                [sys.executable, "-m", "invoke", "lab", "--runtime", "local", "--out", f"{tmp}/local/cpu"],
                cwd=paths.ROOT,
            ),
            1,
        )
        console.print("lab, docker runtime ...")
        figures["lab_docker_s"] = round(
            _timed(
                [sys.executable, "-m", "invoke", "lab", "--runtime", "docker", "--out", f"{tmp}/docker/cpu"],
                cwd=paths.ROOT,
            ),
            1,
        )
        console.print("rebuild after editing a notebook ...")
        ctx = _context_copy(Path(tmp) / "ctx")
        cmd = images_mod.build_command(engine, get_backend("cpu"), context=ctx)
        _timed(cmd, env=env)  # warm: every layer from the cache
        notebook = sorted(ctx.glob("lab/[0-9][0-9]_*.ipynb"))[0]
        notebook.write_text(notebook.read_text().replace('"cells": [', '"cells": [\n  ', 1))
        figures["rebuild_after_notebook_edit_s"] = round(_timed(cmd, env=env), 1)
    # Leave jaxlab:cpu as this checkout builds it, not with the edited copy's notebook.
    images_mod.build(engine, "cpu", quiet=True)
    figures["docker_over_local"] = round(figures["lab_docker_s"] / figures["lab_local_s"], 2)
    table = Table(title="images")
    for col in ("figure", "value", "target"):
        table.add_column(col)
    table.add_row("CPU image", f"{figures['cpu_image_bytes'] / 1e9:.2f} GB", "≤ 1.0 GB")
    if "cuda_image_bytes" in figures:
        target = "≤ 4.5 GB" if figures["cuda_lock"] == get_backend("cuda").locks[0] else ""
        size = f"{figures['cuda_image_bytes'] / 1e9:.2f} GB"
        table.add_row(f"CUDA image (lock {figures['cuda_lock']})", size, target)
        for part, mb in sorted(figures["cuda_breakdown_mb"].items(), key=lambda kv: -kv[1]):
            table.add_row(f"  {part}", f"{mb} MB", "")
    table.add_row("rebuild after editing a notebook", f"{figures['rebuild_after_notebook_edit_s']} s", "≤ 15 s")
    table.add_row("lab, local runtime", f"{figures['lab_local_s']} s", "")
    table.add_row("lab, docker runtime", f"{figures['lab_docker_s']} s", "")
    table.add_row("docker / local", f"{figures['docker_over_local']}x", "≤ 1.3x")
    console.print(table)
    write_json(figures_file("images"), figures)
    return figures
