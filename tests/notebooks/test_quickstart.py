"""The README's Quickstart leaves a fresh clone as it found it: everything it writes is ignored,
so the revision a run records is never "-dirty"."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from labkit import paths


def git(*args: str, cwd) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout


def test_quickstart_leaves_git_status_clean(tmp_path):
    clone = tmp_path / "clone"
    git("clone", "--quiet", "--no-hardlinks", str(paths.ROOT), str(clone), cwd=tmp_path)
    env = dict(os.environ, PYTHONPATH=str(clone / "lab"), JAXLAB_ROOT=str(clone))
    env.pop("JAXLAB_REVISION", None)
    steps = [
        # What the two Quickstart lines write: a virtual environment, an editable install's
        # metadata in the source tree, a lab run and the test suite's caches.
        [sys.executable, "-m", "venv", "--without-pip", ".venv"],
        # pip install -e . has setuptools write the package's metadata beside it (lab/jaxlab.egg-info).
        [sys.executable, "-c", "from setuptools import setup; setup()", "--quiet", "egg_info"],
        [sys.executable, "-m", "invoke", "lab", "-n", "01", "-p", "smoke=true", "--no-checks", "--runtime", "local"],
        [sys.executable, "-m", "pytest", "-q", "tests/unit/test_pins.py"],
    ]
    for step in steps:
        done = subprocess.run(step, cwd=clone, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"{' '.join(step)}: {done.stderr[-2000:]}"
    assert (clone / "lab" / "jaxlab.egg-info").is_dir() and (clone / "out" / "cpu").is_dir()
    assert git("status", "--porcelain", "--ignored=no", cwd=clone) == ""
    results = json.loads((clone / "out" / "cpu" / "results.json").read_text())
    revision = results["environment"]["lab_revision"]
    assert revision == git("rev-parse", "--short=12", "HEAD", cwd=clone).strip(), revision
