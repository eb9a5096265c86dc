"""What a run ran on: recorded beside every result so runs on different machines can be compared."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
from importlib import metadata

from . import __version__
from .paths import ROOT


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def lab_revision() -> str:
    """The lab's revision: ``JAXLAB_REVISION`` (set in images), else git, else the package version."""
    if rev := os.environ.get("JAXLAB_REVISION"):
        return rev
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        return head + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return __version__


def describe(backend: str) -> dict:
    """Backend, devices, library versions, Python, revision and time of this process's JAX."""
    import jax

    devices = jax.devices()
    return {
        "backend": backend,
        "platform": devices[0].platform,
        "device_kind": devices[0].device_kind,
        "device_count": len(devices),
        # One axis of the comparison: a sum across processes adds partial sums in another order.
        "process_count": jax.process_count(),
        "jax": jax.__version__,
        "jaxlib": _version("jaxlib"),
        "haiku": _version("dm-haiku"),
        "numpy": _version("numpy"),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "lab_version": __version__,
        "lab_revision": lab_revision(),
        "time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def jax_notice() -> str | None:
    """A line to print when the JAX here is not the pinned one (users on TPU VMs and GPU boxes
    often have a newer one): the run goes ahead, and its results record the version."""
    from . import pins

    running, pinned = _version("jax"), pins.version("jax")
    if running and running != pinned:
        return (
            f"JAX {running} is installed here, not the pinned {pinned}; the lab runs on it, and its "
            f"results and verdict say so"
        )
    return None
