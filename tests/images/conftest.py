"""Fixtures the image tests share: the container engine, the CPU image built by the project's task,
and Debian's Chromium for the browser tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers import held, invoke

from labkit import BACKENDS
from labkit.engine import Engine

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # the dev extra brings it
    sync_playwright = None

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="session")
def engine(shared):
    """The engine, held by this test process for the rest of its session: the image tests build,
    load and remove the same images and volume, so pytest-xdist's workers never drive it at once
    (the tests come in a row, so one worker usually gets them all)."""
    eng = Engine.from_env()
    if not eng.answers():
        message = f"no container engine answers ({eng.command})"
        if os.environ.get("JAXLAB_REQUIRE_ENGINE") == "1":
            pytest.fail(message + " but JAXLAB_REQUIRE_ENGINE=1")
        pytest.skip(message + "; set JAXLAB_REQUIRE_ENGINE=1 to make this a failure")
    with held(shared / "container-engine.lock"):
        yield eng


@pytest.fixture(scope="session")
def cpu_image(engine) -> str:
    result = invoke("build", "--backend", "cpu")
    assert result.returncode == 0, result.stderr[-2000:]
    return BACKENDS["cpu"].image


@pytest.fixture(scope="session")
def chromium():
    """Debian's Chromium, launched by Playwright."""
    missing = []
    if not os.access(CHROMIUM, os.X_OK):
        missing.append(f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium)")
    if sync_playwright is None:
        missing.append("no Playwright for Python (pip install -e '.[dev]')")
    if missing:
        message = "; ".join(missing)
        if os.environ.get("JAXLAB_REQUIRE_ENGINE") == "1":
            pytest.fail(message + " but JAXLAB_REQUIRE_ENGINE=1")
        pytest.skip(message + "; set JAXLAB_REQUIRE_ENGINE=1 to make this a failure")
    with sync_playwright() as playwright:
        # No sandbox: CI runs as root, where Chromium refuses to start with one.
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()
