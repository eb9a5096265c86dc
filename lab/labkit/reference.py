"""Reference results: a known-good run per backend, at full sizes and in smoke mode, that later
runs are compared with (``tests/unit/test_compare.py`` compares every smoke run with its backend's).

    regenerate("cpu")  ->  tests/reference/cpu.json, tests/reference/cpu-smoke.json

Regenerate whenever a notebook changes on purpose: a reference from other notebook sources is
refused by the comparison.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from . import paths, runner
from .errors import LabError
from .results import write_json

# name suffix -> the parameters that run is made with, exactly as ``-p`` gives them.
VARIANTS = {"": {}, "-smoke": {"smoke": "true"}}


def path(backend: str = "cpu", smoke: bool = False) -> Path:
    """Where the reference for ``backend`` is (or will be) kept."""
    return paths.reference(backend, smoke)


def regenerate(backend: str = "cpu", name: str | None = None, target: Path = paths.REFERENCE,
               jobs: int | None = None, show_progress: bool = True) -> list[Path]:
    """Run the whole lab on ``backend`` at full sizes and in smoke mode, and write each run's
    results as ``<target>/<name>.json`` and ``<name>-smoke.json`` (``name`` defaults to the backend).

    Both runs must pass; nothing is written otherwise, so a reference is never half updated.
    """
    name = name or backend
    found = {}
    with tempfile.TemporaryDirectory(prefix="jaxlab-reference-") as tmp:
        for suffix, given in VARIANTS.items():
            out = Path(tmp) / f"{name}{suffix}"
            lab = runner.run_lab(backend, [], given, out=out, jobs=jobs, checks=False, show_progress=show_progress)
            if not lab.ok:
                failed = ", ".join(f"{o.name} ({o.status}: {o.error})" for o in lab.steps if not o.ok)
                raise LabError(f"the {backend} lab failed with {given or 'default parameters'}, so no "
                               f"reference was written: {failed}")
            found[suffix] = json.loads((out / "results.json").read_text())
    written = []
    for suffix, results in found.items():
        dest = Path(target) / f"{name}{suffix}.json"
        write_json(dest, results)
        written.append(dest)
    return written
