"""Reference results: a known-good run per backend, at full sizes and in smoke mode, that later
runs are compared with (``tests/unit/test_compare.py`` compares every smoke run with its backend's).

    regenerate("cpu")  ->  lab/labkit/references/cpu.json, lab/labkit/references/cpu-smoke.json

Regenerate whenever a notebook changes on purpose: a reference from other notebook sources is
refused by the comparison.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

from . import outdir, paths, runner
from .errors import LabError, UsageError
from .results import write_json

# name suffix -> the parameters that run is made with, exactly as ``-p`` gives them.
VARIANTS = {"": {}, "-smoke": {"smoke": "true"}}


def path(backend: str = "cpu", smoke: bool = False) -> Path:
    """Where the reference for ``backend`` is (or will be) kept."""
    return paths.reference(backend, smoke)


def regenerate(
    backend: str = "cpu",
    name: str | None = None,
    target: Path = paths.REFERENCE,
    jobs: int | None = None,
    show_progress: bool = True,
) -> list[Path]:
    """Run the whole lab on ``backend`` at full sizes and in smoke mode, and write each run's
    results as ``<target>/<name>.json`` and ``<name>-smoke.json`` (``name`` defaults to the backend).

    Both runs must pass; nothing is written otherwise, so a reference is never half updated.
    """
    name = name or backend
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise UsageError(
            f"--name {name!r}: give a file name (letters, digits, '.', '_', '-'), not a path; the "
            f"references are kept in {target}"
        )
    dests = outdir.own_files([Path(target) / f"{name}{suffix}.json" for suffix in VARIANTS], "invoke reference")
    found = {}
    with tempfile.TemporaryDirectory(prefix="jaxlab-reference-") as tmp:
        for suffix, given in VARIANTS.items():
            out = Path(tmp) / f"{name}{suffix}"
            lab = runner.run_lab(backend, [], given, out=out, jobs=jobs, checks=False, show_progress=show_progress)
            if not lab.ok:
                failed = ", ".join(f"{o.name} ({o.status}: {o.error})" for o in lab.steps if not o.ok)
                raise LabError(
                    f"the {backend} lab failed with {given or 'default parameters'}, so no "
                    f"reference was written: {failed}"
                )
            found[suffix] = json.loads((out / "results.json").read_text())
    for dest, results in zip(dests, found.values(), strict=True):
        write_json(dest, results)
    return dests
