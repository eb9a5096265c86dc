"""A run's plan, checked before anything runs: which notebooks (by name, number or path), with
which typed parameters each, and how many steps may run at once on the backend."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from . import params as params_mod
from . import paths
from .backends import get_backend, require_device
from .errors import UsageError


def cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def select_notebooks(names: list[str] | tuple[str, ...] = ()) -> list[Path]:
    """The lab's notebooks by name ("03", "03_to_jit_or_not", "to_jit_or_not"), notebooks by path,
    and every notebook of a folder; all the lab's if none."""
    available = paths.notebook_paths()
    if not names:
        return available
    chosen = []
    for name in names:
        path = Path(name).expanduser()
        if path.suffix == ".ipynb" and path.is_file():
            chosen.append(path.resolve())
            continue
        if path.is_dir():  # a room check of a whole folder: its notebooks, lab-style or guests
            found = sorted(p.resolve() for p in path.glob("*.ipynb") if not p.name.startswith("."))
            if not found:
                raise UsageError(f"-n {name}: the folder holds no notebooks (*.ipynb)")
            chosen += found
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
            raise UsageError(
                f"two notebooks named {path.stem!r} ({other} and {path}); their outputs would "
                f"overwrite each other: rename one, or run them one at a time"
            )
    return chosen


@dataclass
class Plan:
    """A checked run: which notebooks, with which typed parameters each."""

    backend: str
    notebooks: list[Path]
    params: dict[str, dict[str, object]]  # notebook stem -> parameters papermill injects
    given: dict[str, object]


def make_plan(
    backend: str, notebooks: list[Path], given: dict[str, object], check_device: bool = True, processes: int = 1
) -> Plan:
    be = get_backend(backend)
    if check_device:
        require_device(be)
    if not notebooks:
        raise UsageError("no notebooks to run")
    per_notebook = params_mod.resolve(notebooks, given)
    for values in per_notebook.values():
        values["backend"] = backend
    if processes > 1:
        for nb in notebooks:
            per_notebook[nb.stem][params_mod.MULTI_PROCESS] = processes
    return Plan(backend, notebooks, per_notebook, dict(given))


def multi_process_notebooks(names: list[str] | tuple[str, ...]) -> list[Path]:
    """The notebooks a run of several processes runs: those that declare ``processes`` (all of
    them, when none is named); a named notebook that does not is refused."""
    chosen = select_notebooks(names)
    able = [nb for nb in chosen if params_mod.MULTI_PROCESS in params_mod.names(nb)]
    if names and (single := [nb.stem for nb in chosen if nb not in able]):
        every = [nb.stem for nb in select_notebooks() if params_mod.MULTI_PROCESS in params_mod.names(nb)]
        raise UsageError(
            f"{', '.join(single)} runs in one process only; --processes runs the notebooks that declare "
            f"a 'processes' parameter: {', '.join(every) or 'none'}"
        )
    if not able:
        raise UsageError("none of the chosen notebooks declares a 'processes' parameter; --processes needs one")
    return able


def slots(backend: str, jobs: int | None, steps: int) -> int:
    """How many steps (notebook kernels, checks sessions) run at once: ``jobs``, else one per core,
    never more than the backend lets processes open its device at once, nor than there are steps."""
    limit = get_backend(backend).processes_at_once or steps
    return max(1, min(jobs or cpu_count(), limit, steps))
