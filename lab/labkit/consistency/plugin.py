"""pytest plugin for the consistency checks (and the project's tests, which load it too):
``--backend`` picks the backend, JAX is started on it before any test runs, and a run that
finds a different platform stops at once.

    python -m pytest -p labkit.consistency.plugin --backend cuda <labkit/consistency>
"""

from __future__ import annotations

import os

import pytest

import labkit
from labkit.backends import BACKEND_VARIABLE


def pytest_addoption(parser):
    parser.addoption("--backend", default=os.environ.get(BACKEND_VARIABLE, "cpu"),
                     choices=sorted(labkit.BACKENDS),
                     help=f"backend the checks run on (default: ${BACKEND_VARIABLE}, else cpu)")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "consistency: jit/vmap/pmap/shard_map agree with eager and NumPy; `invoke lab` runs these")
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
def device_count() -> int:
    import jax

    return jax.device_count()
