"""The comparison on real cross-hardware evidence: the H200 run (tests/fixtures/evidence) agrees
with the CPU run of the same notebooks at the tolerance table's bounds, and against today's CPU
reference it is refused as stale, by notebook, as the README says (a GPU run makes a current one
with ``invoke reference --backend cuda --name cuda-h200``). Both fail when the comparison's code,
the tolerance table or the staleness rule changes, not only when the files do."""

from __future__ import annotations

import json
import re

import pytest
from helpers import FIXTURES

from labkit import UsageError, compare, paths
from labkit.results import source_digest

EVIDENCE = FIXTURES / "evidence"
H200 = EVIDENCE / "cuda-h200.json"
# The CPU reference the H200 run was compared with when it ran (lab revision 46ae8d9).
H200_BASELINE = EVIDENCE / "cpu-46ae8d9.json"


def stale_notebooks(reference) -> list[str]:
    """Notebooks whose source changed since ``reference`` was recorded."""
    recorded = json.loads(reference.read_text())["notebooks"]
    current = {nb.stem: source_digest(nb) for nb in paths.notebook_paths()}
    return sorted(nb for nb, rec in recorded.items() if rec.get("source_digest") != current.get(nb))


def test_the_h200_run_agrees_with_the_cpu_reference_of_its_notebooks():
    baseline = paths.reference("cpu") if not stale_notebooks(H200) else H200_BASELINE
    comparison = compare.run([baseline, H200])
    assert comparison.ok, comparison.summary()
    assert len(comparison.rows) >= 130
    environment = comparison.runs[1].environment
    assert environment["platform"] == "gpu" and "H200" in environment["device_kind"]


def test_a_stale_h200_reference_is_refused_against_todays_notebooks_and_the_readme_says_so():
    stale = stale_notebooks(H200)
    row = next(line for line in (paths.ROOT / "README.md").read_text().splitlines() if "H200" in line and "|" in line)
    if not stale:
        assert "stale" not in row.lower()
        return
    assert "stale" in row.lower(), "the README's H200 row must say the reference is stale"
    with pytest.raises(UsageError, match=re.escape(f"{stale[0]}: notebook source differs")):
        compare.run([paths.reference("cpu"), H200])
