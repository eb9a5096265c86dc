"""Fixtures the image tests share: the container engine, and the CPU image built by the project's task."""

from __future__ import annotations

import os

import pytest
from helpers import invoke

from labkit import BACKENDS
from labkit.engine import Engine


@pytest.fixture(scope="session")
def engine() -> Engine:
    eng = Engine.from_env()
    if not eng.answers():
        message = f"no container engine answers ({eng.command})"
        if os.environ.get("JAXLAB_REQUIRE_ENGINE") == "1":
            pytest.fail(message + " but JAXLAB_REQUIRE_ENGINE=1")
        pytest.skip(message + "; set JAXLAB_REQUIRE_ENGINE=1 to make this a failure")
    return eng


@pytest.fixture(scope="session")
def cpu_image(engine) -> str:
    result = invoke("build", "--backend", "cpu")
    assert result.returncode == 0, result.stderr[-2000:]
    return BACKENDS["cpu"].image
