"""Versions are pinned in one place (pyproject.toml) and the backend registry agrees with it."""

from __future__ import annotations

import re
import tomllib

import pytest

from labkit import BACKENDS, paths

PROJECT = tomllib.loads((paths.ROOT / "pyproject.toml").read_text())["project"]
REQUIREMENT = re.compile(r"^(?P<name>[A-Za-z0-9_.-]+)(\[(?P<extra>[^\]]+)\])?==(?P<version>[^\s;]+)$")


def all_requirements():
    yield from PROJECT["dependencies"]
    for reqs in PROJECT["optional-dependencies"].values():
        yield from reqs


@pytest.mark.parametrize("req", list(all_requirements()))
def test_every_requirement_is_pinned_exactly(req):
    """Pinned with ==, or one of this project's own extras (whose requirements are pinned there)."""
    if (own := re.fullmatch(r"jaxlab\[(?P<extras>[a-z0-9,-]+)\]", req)) is not None:
        assert set(own["extras"].split(",")) <= set(PROJECT["optional-dependencies"]), f"{req!r}: no such extra"
        return
    assert REQUIREMENT.match(req), f"{req!r} is not pinned with =="


def test_one_jax_version_everywhere():
    matches = [REQUIREMENT.match(r) for r in all_requirements()]
    versions = {m["version"] for m in matches if m and m["name"] in ("jax", "jaxlib")}
    assert len(versions) == 1, versions


@pytest.mark.parametrize("name", [n for n, b in BACKENDS.items() if b.pip_extra])
def test_backend_extra_installs_its_jax_plugin(name):
    backend = BACKENDS[name]
    extra = PROJECT["optional-dependencies"].get(backend.pip_extra)
    assert extra, f"pyproject.toml has no extra {backend.pip_extra!r} for backend {name}"
    assert any(r.startswith(backend.jax_extra + "==") for r in extra), (extra, backend.jax_extra)
