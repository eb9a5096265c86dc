"""`invoke lab` ends with the cross-hardware verdict against the CPU reference, and a reference
value that this run does not reproduce fails the run."""

from __future__ import annotations

import json

import pytest
from helpers import invoke

from labkit import paths

pytestmark = pytest.mark.slow
NOTEBOOK = paths.notebook_paths()[0].stem  # the first notebook: quick, and records values and facts


def lab(out, *args):
    return invoke(
        "lab", "--runtime", "local", "--no-checks", "-n", NOTEBOOK, "-p", "smoke=true", "--out", str(out), *args
    )


def test_lab_prints_the_verdict_and_writes_it_into_the_summary(tmp_path):
    done = lab(tmp_path / "out")
    assert done.returncode == 0, done.stderr
    reference = json.loads(paths.reference("cpu", smoke=True).read_text())["notebooks"][NOTEBOOK]
    total = len(reference["values"]) + len(reference["facts"])
    line = f"{total} of {total} results agree with the CPU reference (JAX "
    assert line in " ".join(done.stdout.split())
    assert line in (tmp_path / "out" / "summary.md").read_text()


def bump(data):
    """``data`` (nested lists or a number) with its first number moved by 1."""
    if isinstance(data, list):
        return [bump(data[0]), *data[1:]]
    return data + 1.0


def test_a_perturbed_reference_value_fails_the_run(tmp_path):
    reference = json.loads(paths.reference("cpu", smoke=True).read_text())
    values = reference["notebooks"][NOTEBOOK]["values"]
    key = next(k for k, v in values.items() if "data" in v and v["dtype"].startswith("float"))
    values[key]["data"] = bump(values[key]["data"])
    (tmp_path / "perturbed.json").write_text(json.dumps(reference))
    done = lab(tmp_path / "out", "--against", str(tmp_path / "perturbed.json"))
    assert done.returncode == 1, done.stderr
    # The terminal's width wraps a long path anywhere, even inside a word: compare without spaces.
    text = "".join(done.stdout.split())
    said = f"disagree with {tmp_path / 'perturbed.json'}", f"{NOTEBOOK}/{key}"
    assert all("".join(part.split()) in text for part in said), done.stdout


def test_no_compare_skips_the_verdict(tmp_path):
    done = lab(tmp_path / "out", "--no-compare")
    assert done.returncode == 0, done.stderr
    assert "verdict" not in done.stdout and "verdict" not in (tmp_path / "out" / "summary.md").read_text()
