"""The pinned versions, read from the one place they are written: pyproject.toml in a checkout
(or an image, which copies it), else the installed distribution's own metadata."""

from __future__ import annotations

import functools
import re
import tomllib
from importlib import metadata

from . import paths

PIN = re.compile(r"^(?P<name>[A-Za-z0-9_.-]+)(\[(?P<extra>[^\]]+)\])?==(?P<version>[^\s;]+)")


def normal(name: str) -> str:
    """A distribution's name as the package index compares names (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


@functools.cache
def requirements() -> tuple[str, ...]:
    """Every requirement of the project: the dependencies, then each extra's."""
    pyproject = paths.ROOT / "pyproject.toml"
    if pyproject.is_file():
        project = tomllib.loads(pyproject.read_text())["project"]
        extras = project.get("optional-dependencies", {}).values()
        return tuple(project["dependencies"]) + tuple(r for reqs in extras for r in reqs)
    return tuple(r.split(";")[0].strip() for r in metadata.requires("jaxlab") or ())


def version(name: str) -> str:
    """The version ``name`` is pinned to (``==``); LookupError if it is not pinned."""
    for req in requirements():
        if (m := PIN.match(req.replace(" ", ""))) and normal(m["name"]) == normal(name):
            return m["version"]
    raise LookupError(f"{name} is not pinned in pyproject.toml")
