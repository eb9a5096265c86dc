"""The project's own tests: the backend they run the lab on, and what several test folders share.

The lab's consistency checks have a plugin of their own (``labkit.consistency.plugin``, which
starts JAX in pytest's process); these tests start JAX only in the processes they run.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile

import pytest

from labkit import compile_cache
from labkit.backends import BACKEND_VARIABLE, BACKENDS, default_backend


def pytest_configure(config):
    """One compilation cache for the session, the lab's runs and kernels in every test included: it
    starts empty, warms as the suite goes, and leaves the user's own (~/.cache/jaxlab) untouched."""
    config._jaxlab_cache = tempfile.mkdtemp(prefix="jaxlab-test-cache-")
    os.environ[compile_cache.FOLDER] = config._jaxlab_cache


def pytest_unconfigure(config):
    if folder := getattr(config, "_jaxlab_cache", None):
        shutil.rmtree(folder, ignore_errors=True)


def pytest_addoption(parser):
    parser.addoption(
        "--backend",
        default=default_backend(),
        choices=sorted(BACKENDS),
        help=f"backend the lab runs on in these tests (default: ${BACKEND_VARIABLE}, else cpu)",
    )


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
