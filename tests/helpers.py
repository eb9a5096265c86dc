"""Helpers the test folders share: the CLI as a user runs it, and waiting for a JupyterLab."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from labkit import paths

FIXTURES = Path(__file__).parent / "fixtures"  # small notebooks the runner tests run


def invoke(*args: str, cwd: Path = paths.ROOT, timeout: float = 900, **kwargs) -> subprocess.CompletedProcess:
    """``invoke ARGS`` in this Python, as a user types it; output captured as text."""
    return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, **kwargs)


def http_status(url: str) -> int:
    """The HTTP status of GET ``url`` (errors included); OSError when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


def wait_for_jupyter(base: str, token: str, timeout: float = 120) -> int | None:
    """Poll ``base``/api/status with ``token`` until the server answers; its status, or None."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            return http_status(f"{base}/api/status?token={token}")
        except OSError:
            time.sleep(1)
    return None
