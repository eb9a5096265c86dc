"""The consistency checks as a run executes them: pytest sessions of ``labkit/consistency`` on
the backend, each in a process of its own that Ctrl-C stops, each with its JUnit XML and log."""

from __future__ import annotations

import sys
import threading
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from . import consistency, paths, processes

CHECKS_TIMEOUT = 900.0  # seconds for one session

# The checks' sessions: float64 needs jax_enable_x64, which changes every default dtype, so it
# runs in a process of its own (see labkit.consistency.plugin). name -> extra pytest arguments.
CHECK_SESSIONS = {"": [], "-x64": ["--x64"]}
PYTEST_NO_TESTS = 5  # pytest's exit code when a session selects nothing


@dataclass
class Session:
    """How one pytest process of the checks ended."""

    ended: str  # done | timeout | cancelled
    counts: dict[str, int]
    returncode: int | None
    log: Path


def check_session(
    backend: str, staging: Path, suffix: str, extra: list[str], timeout: float, cancel: threading.Event
) -> Session:
    """One session of the consistency checks (pytest ``-m consistency``) on ``backend``: JUnit XML
    ``junit<suffix>.xml`` and a log into ``staging``."""
    junit, log = staging / f"junit{suffix}.xml", staging / "logs" / f"checks{suffix}.log"
    if cancel.is_set():
        return Session("cancelled", {}, None, log)
    with log.open("w") as fh:
        # The checks shipped in the package; the project's own tests (tests/) are not the lab's.
        proc = processes.start(
            [
                sys.executable,
                "-m",
                "pytest",
                "-p",
                "labkit.consistency.plugin",
                str(consistency.HERE),
                "-m",
                "consistency",
                *extra,
                "--backend",
                backend,
                f"--junitxml={junit}",
                "-q",
                "-p",
                "no:cacheprovider",
            ],
            cwd=paths.ROOT,
            stdout=fh,
            stderr=fh,
        )
        ended = processes.wait(proc, timeout, cancel)
    return Session(ended, junit_counts(junit) if ended == "done" else {}, proc.returncode, log)


def junit_counts(junit: Path) -> dict[str, int]:
    if not junit.is_file():
        return {}
    root = ET.parse(junit).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    total = {k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors", "skipped")}
    return {
        "passed": total["tests"] - total["failures"] - total["errors"] - total["skipped"],
        "failed": total["failures"],
        "errors": total["errors"],
        "skipped": total["skipped"],
    }
