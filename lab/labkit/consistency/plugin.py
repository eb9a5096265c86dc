"""pytest plugin for the consistency checks, and for them only:
``--backend`` picks the backend, JAX is started on it before any test runs, and a run that
finds a different platform stops at once.

    python -m pytest -p labkit.consistency.plugin --backend cuda <labkit/consistency>
"""

from __future__ import annotations

import numpy as np
import pytest

import labkit
from labkit.backends import BACKEND_VARIABLE, default_backend


def pytest_addoption(parser):
    parser.addoption(
        "--backend",
        default=default_backend(),
        choices=sorted(labkit.BACKENDS),
        help=f"backend the checks run on (default: ${BACKEND_VARIABLE}, else cpu)",
    )
    parser.addoption(
        "--processes",
        type=int,
        default=1,
        help="how many processes run this session together (labkit.rank starts each); over 1, only the "
        "checks marked across_processes run",
    )
    parser.addoption(
        "--x64",
        action="store_true",
        help="run the float64 checks, and only those, with jax_enable_x64 on; without it they "
        "are deselected (x64 changes every default dtype, so it gets a process of its own)",
    )


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "consistency: jit/vmap/pmap/shard_map agree with eager and NumPy; `invoke lab` runs these"
    )
    config.addinivalue_line(
        "markers", "across_processes: a check that also runs in several processes (invoke lab --processes N)"
    )
    name = config.getoption("backend")
    try:
        jax = labkit.setup(name, config.getoption("processes"))
    except labkit.LabError as err:
        raise pytest.UsageError(str(err)) from None
    # Strict settings: implicit rank promotion hides shape bugs that another backend may not forgive.
    jax.config.update("jax_numpy_rank_promotion", "raise")
    if config.getoption("x64"):
        jax.config.update("jax_enable_x64", True)


def is_float64_check(item) -> bool:
    params = getattr(item, "callspec", None)
    dtype = params.params.get("dtype") if params else None
    return dtype is not None and np.dtype(dtype) == np.float64


def pytest_collection_modifyitems(config, items):
    """A session runs either the float64 checks (``--x64``) or the rest, never both; a session of
    several processes runs only the checks marked ``across_processes``."""
    x64 = config.getoption("x64")
    several = config.getoption("processes") > 1
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        is_check = item.get_closest_marker("consistency") is not None
        wrong_dtype = is_check and is_float64_check(item) != x64
        one_process_only = several and item.get_closest_marker("across_processes") is None
        (drop if wrong_dtype or one_process_only else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session")
def backend(pytestconfig) -> str:
    return pytestconfig.getoption("backend")


@pytest.fixture(scope="session")
def device_count() -> int:
    import jax

    return jax.device_count()
