"""Every notebook runs in smoke mode through the lab's own runner, and records its results with
the metadata that makes runs on different hardware comparable."""

from __future__ import annotations

import nbformat
import pytest

from labkit import get_backend, paths

NOTEBOOKS = paths.notebook_paths()
pytestmark = pytest.mark.slow


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[nb.stem for nb in NOTEBOOKS])
def test_notebook_passes_in_smoke_mode(smoke_run, nb):
    lab, _ = smoke_run
    outcome = next(o for o in lab.notebooks if o.name == nb.stem)
    assert outcome.ok, f"{nb.stem}: {outcome.status} at cell {outcome.cell} ({outcome.cell_source}): {outcome.error}"
    executed = nbformat.read(lab.out / "notebooks" / nb.name, as_version=4)
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and "smoke = True" in injected[0].source


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[nb.stem for nb in NOTEBOOKS])
def test_notebook_records_results_with_metadata(smoke_run, backend, nb):
    _, results = smoke_run
    record = results["notebooks"][nb.stem]
    env = record["environment"]
    assert env["backend"] == backend and env["platform"] == get_backend(backend).platform
    assert env["device_count"] >= 1 and env["device_kind"]
    for key in ("jax", "jaxlib", "haiku", "python", "lab_revision", "time"):
        assert env[key], key
    assert record["params"]["smoke"] is True and record["params"]["seed"] == 0
    assert record["source_digest"]
    assert record["values"] or record["timings"], f"{nb.stem} recorded nothing"


def test_run_metadata_and_summary(smoke_run, backend):
    lab, results = smoke_run
    assert results["run"]["backend"] == backend and results["run"]["ok"] is lab.ok
    assert [s["name"] for s in results["run"]["steps"]] == [nb.stem for nb in NOTEBOOKS]
    summary = (lab.out / "summary.md").read_text()
    assert all(nb.stem in summary for nb in NOTEBOOKS)
    if backend == "cpu":
        assert results["environment"]["device_count"] == get_backend("cpu").simulated_devices
