"""Test settings: the backend comes from ``--backend`` (or ``JAXLAB_BACKEND``), JAX is started
on it before any test runs, and a run that finds a different platform fails at once."""

from __future__ import annotations

import json
import os

import pytest

import labkit


def pytest_addoption(parser):
    parser.addoption("--backend", default=os.environ.get("JAXLAB_BACKEND", "cpu"),
                     choices=sorted(labkit.BACKENDS), help="backend the consistency checks run on")


def pytest_configure(config):
    name = config.getoption("backend")
    try:
        jax = labkit.setup(name)
    except labkit.LabError as err:
        raise pytest.UsageError(str(err)) from None
    # Strict settings: implicit rank promotion hides shape bugs that another backend may not forgive.
    jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture(scope="session")
def backend(pytestconfig) -> str:
    return pytestconfig.getoption("backend")


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory, backend):
    """The whole lab in smoke mode through the runner, once per session: (LabRun, results.json)."""
    from labkit import runner

    out = tmp_path_factory.mktemp("lab") / backend
    lab = runner.run_lab(backend, [], {"smoke": "true"}, out=out, checks=False, show_progress=False)
    return lab, json.loads((out / "results.json").read_text())


@pytest.fixture(scope="session")
def device_count() -> int:
    import jax

    return jax.device_count()
