"""The code stays readable: ruff (installed by the dev extra) is clean on the project."""

import importlib.util
import subprocess
import sys

from labkit import paths


def test_ruff_is_clean():
    assert importlib.util.find_spec("ruff"), "ruff is missing: install the dev extra, pip install -e '.[dev]'"
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", str(paths.ROOT)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout
