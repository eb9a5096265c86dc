"""The project's own tests. The backend and JAX's start come from the consistency checks' plugin
(``labkit.consistency.plugin``, loaded through pyproject's addopts); this adds what several test
folders share."""

from __future__ import annotations

import json

import pytest


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory, backend):
    """The whole lab in smoke mode through the runner, once per session: (LabRun, results.json)."""
    from labkit import runner

    out = tmp_path_factory.mktemp("lab") / backend
    lab = runner.run_lab(backend, [], {"smoke": "true"}, out=out, checks=False, show_progress=False)
    return lab, json.loads((out / "results.json").read_text())
