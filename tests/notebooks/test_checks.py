"""The lab's checks phase as `invoke lab` runs it: every session, float64 in a process of its own."""

from __future__ import annotations

import subprocess
import sys

from labkit import checks_phase, consistency, get_backend, paths, steps


def float64_checks(backend: str) -> int:
    """How many float64 checks the catalogue holds, in every module: what a --x64 session collects."""
    listed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--collect-only",
            "-q",
            "-p",
            "labkit.consistency.plugin",
            str(consistency.HERE),
            "-m",
            "consistency",
            "--x64",
            "--backend",
            backend,
            "-p",
            "no:cacheprovider",
        ],
        capture_output=True,
        text=True,
        cwd=paths.ROOT,
        timeout=300,
    )
    return sum("::" in line and "float64" in line for line in listed.stdout.splitlines())


def test_checks_run_every_session_and_float64_runs_for_real(tmp_path, backend):
    (tmp_path / "logs").mkdir()
    outcome = steps.run_checks(backend, tmp_path)
    assert outcome.status == "passed", outcome.error
    x64 = checks_phase.junit_counts(tmp_path / "junit-x64.xml")
    rest = checks_phase.junit_counts(tmp_path / "junit.xml")
    if "float64" in get_backend(backend).dtypes:
        expected = float64_checks(backend)
        assert expected > 0 and x64["passed"] == expected and x64["skipped"] == 0, (x64, expected)
    assert rest["passed"] > 0 and rest["failed"] == rest["errors"] == 0, rest
    # float64 ran in its own session only: the other session neither ran nor skipped it.
    assert "float64" not in (tmp_path / "junit.xml").read_text()
