"""A notebook written elsewhere (JAX's own tutorials, a colleague's, last year's workshop), run as a
guest: it has none of the lab's parameters, and nothing in it knows the lab.

- The backend reaches it through the environment, as the images set it (``JAX_PLATFORMS``, the
  registry's variables, the CPU's simulated devices), not through a parameter.
- Cells tagged ``raises-exception`` (Jupyter's convention for a cell meant to raise) may raise; any
  other error fails the notebook, naming the cell. nbclient honours that tag; papermill does not.
- Its outputs are kept, and what it printed is recorded cell by cell, with each cell's time, so that
  ``invoke compare`` can hold two runs of it against each other (labkit.compare.printed).
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import nbformat

from . import compile_cache
from .backends import get_backend

RAISES = "raises-exception"  # Jupyter's tag for a cell that is meant to raise
# A package that is not there: Python's own words, and those of libraries with optional parts
# (scipy.datasets asks for pooch so).
_MISSING = re.compile(r"No module named '([\w.]+)'|Missing optional dependency '([\w.-]+)'")


def environment(backend_name: str) -> dict[str, str]:
    """What a guest's kernel needs to start JAX on ``backend_name``, as the images set it."""
    backend = get_backend(backend_name)
    env = {"JAX_PLATFORMS": backend.jax_platforms_value, "INVOKE_JAXLAB_BACKEND": backend.name, **backend.env}
    env |= compile_cache.environment(backend.name)  # the lab's compilation cache, as labkit.setup sets it
    if backend.simulated_devices:
        env["JAX_NUM_CPU_DEVICES"] = str(backend.simulated_devices)
    return env


def text_of(outputs: list) -> str:
    """What a cell showed as text: its streams, its plain-text results, and its error's last line."""
    parts = []
    for out in outputs:
        kind = out.get("output_type")
        if kind == "stream":
            parts.append(out.get("text", ""))
        elif kind in ("execute_result", "display_data"):
            parts.append(out.get("data", {}).get("text/plain", ""))
        elif kind == "error":
            parts.append(f"{out.get('ename', '')}: {out.get('evalue', '')}")
    return "".join(p if p.endswith("\n") else p + "\n" for p in parts if p)


def _seconds(cell) -> float | None:
    timing = cell.get("metadata", {}).get("execution", {})
    start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
    if not (start and end):
        return None
    from datetime import datetime

    return round(
        (datetime.fromisoformat(end.rstrip("Z")) - datetime.fromisoformat(start.rstrip("Z"))).total_seconds(), 3
    )


def run(source: Path, output: Path, backend: str, results_dir: Path, cell_timeout: float | None) -> dict[str, object]:
    """Execute ``source`` as a guest into ``output``; its record into ``results_dir``; its status."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    os.environ.update(environment(backend))  # the kernel inherits this process's environment
    nb = nbformat.read(source, as_version=4)
    client = NotebookClient(
        nb, timeout=cell_timeout, kernel_name="python3", resources={"metadata": {"path": str(output.parent)}}
    )
    start = time.monotonic()
    status: dict[str, object] = {"status": "passed"}
    try:
        client.execute()
    except CellTimeoutError:
        status = {"status": "timeout", "error": f"a cell ran longer than --cell-timeout {cell_timeout:g} s"}
    except CellExecutionError as err:
        status = {"status": "failed", "error": _one_line(err)}
    except DeadKernelError:
        status = {"status": "failed", "error": "the kernel died"}
    finally:
        nbformat.write(nb, output)
    code = [(i, c) for i, c in enumerate(nb.cells, 1) if c.cell_type == "code"]
    if status["status"] != "passed":
        failing = next((i for i, c in reversed(code) if c.get("outputs") or c.get("execution_count")), None)
        status["cell"] = failing
        if failing:
            lines = [ln for ln in nb.cells[failing - 1].source.splitlines() if ln.strip()]
            status["cell_source"] = lines[0] if lines else ""
    status["seconds"] = round(time.monotonic() - start, 2)
    from .results import FORMAT, write_json

    write_json(
        results_dir / f"{source.stem}.json",
        {
            "format": FORMAT,
            "notebook": source.stem,
            "guest": True,
            "params": {"backend": backend},
            "environment": {"backend": backend, "platform": get_backend(backend).platform, "process_count": 1},
            "seconds": status["seconds"],
            "cells": [
                {
                    "cell": i,
                    "seconds": _seconds(c),
                    "text": text_of(c.get("outputs", [])),
                    "raises": RAISES in c.metadata.get("tags", []),
                }
                for i, c in code
            ],
        },
    )
    return status


def _one_line(err: Exception) -> str:
    """A failed cell's error in one line; a missing package says how to add it."""
    ename, evalue = getattr(err, "ename", type(err).__name__), getattr(err, "evalue", str(err))
    if ename in ("ModuleNotFoundError", "ImportError") and (m := _MISSING.search(evalue)):
        package = (m.group(1) or m.group(2)).split(".")[0]
        return (
            f"needs the package {package!r}, which this environment lacks: pip install it where the lab "
            f"runs, or add it to the image with JAXLAB_EXTRA_PACKAGES='{package}==<version>' (README: your "
            f"own notebooks)"
        )
    return f"{ename}: {evalue}".strip()
