"""The lab's checks phase as `invoke lab` runs it: every session, float64 in a process of its own."""

from __future__ import annotations

import numpy as np

from labkit import get_backend, runner
from labkit.consistency import test_transforms as checks


def float64_checks() -> int:
    """How many float64 checks the catalogue holds: each float64 case under every transform."""
    return sum(np.dtype(np.float64) in case.dtypes for case in checks.CASES) * len(checks.TRANSFORMS)


def test_checks_run_every_session_and_float64_runs_for_real(tmp_path, backend):
    (tmp_path / "logs").mkdir()
    outcome = runner.run_checks(backend, tmp_path)
    assert outcome.status == "passed", outcome.error
    x64 = runner.junit_counts(tmp_path / "junit-x64.xml")
    rest = runner.junit_counts(tmp_path / "junit.xml")
    if "float64" in get_backend(backend).dtypes:
        assert x64["passed"] == float64_checks() and x64["skipped"] == 0, x64
    assert rest["passed"] > 0 and rest["failed"] == rest["errors"] == 0, rest
    # float64 ran in its own session only: the other session neither ran nor skipped it.
    assert "float64" not in (tmp_path / "junit.xml").read_text()
