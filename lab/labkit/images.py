"""The lab's images: their tags, how one is built (from which lock), and whether the one there is
current. The Dockerfile is docker/Dockerfile; every engine call goes through labkit.engine."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

from . import paths, pins
from .backends import Backend, get_backend
from .engine import Engine
from .environment import lab_revision
from .errors import UsageError

IMAGE_ROOT = "/home/lab/jaxlab"  # JAXLAB_ROOT inside the images (docker/Dockerfile)
IMAGE_UID = 1000  # the images' non-root user (LAB_UID in docker/Dockerfile)
# The compilation cache in the images (JAXLAB_CACHE_DIR in docker/Dockerfile), and the named volume
# that keeps it from one container to the next (compose.yaml names it too).
CACHE_MOUNT = "/var/cache/jaxlab"
CACHE_VOLUME = "jaxlab-compile-cache"
LOCK_LABEL = "org.jaxlab.lock"  # which lock an image was built from, so a rebuild keeps it
EXTRAS_LABEL = "org.jaxlab.extras"  # an organiser's own packages in it (JAXLAB_EXTRA_PACKAGES)
EXTRAS_VARIABLE = "JAXLAB_EXTRA_PACKAGES"
_PINNED = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9,._-]+\])?==[A-Za-z0-9.+!_-]+$")


def extra_packages() -> str:
    """The packages an organiser adds to the images for their own notebooks: $JAXLAB_EXTRA_PACKAGES,
    each pinned (name==version), so that every build of the image is the same."""
    wanted = os.environ.get(EXTRAS_VARIABLE, "").split()
    for item in wanted:
        if not _PINNED.match(item):
            raise UsageError(
                f"{EXTRAS_VARIABLE}: {item!r} is not pinned; give name==version for each package, "
                f"e.g. {EXTRAS_VARIABLE}='pooch==1.8.2'"
            )
    return " ".join(sorted(wanted, key=str.lower))


def tags(backend: Backend) -> list[str]:
    return [backend.image, f"{backend.image}-jax{pins.version('jax')}"]


def pip_cert() -> Path | None:
    """The CA bundle pip must trust (corporate proxies, intercepting TLS), if one is set."""
    for var in ("PIP_CERT", "SSL_CERT_FILE"):
        value = os.environ.get(var)
        if value and Path(value).is_file():
            return Path(value)
    return None


def label(engine: Engine, backend: Backend, name: str) -> str | None:
    """A label of the backend's existing image; None where there is no image or no such label."""
    return engine.image_field(backend.image, f'{{{{ index .Config.Labels "{name}" }}}}')


def built_lock(engine: Engine, backend: Backend) -> str | None:
    """The lock the backend's existing image was built from, if there is one."""
    return label(engine, backend, LOCK_LABEL)


def image_revision(engine: Engine, backend: Backend) -> str | None:
    """The lab revision the backend's existing image was built from (its JAXLAB_REVISION)."""
    env = engine.image_field(backend.image, "{{json .Config.Env}}")
    if env is None:
        return None
    return dict(item.partition("=")[::2] for item in json.loads(env)).get("JAXLAB_REVISION")


def pruned(lock: str) -> list[str]:
    """The globs (relative to site-packages) that docker/prune/<lock>.txt deletes from an image."""
    listing = paths.ROOT / "docker" / "prune" / f"{lock}.txt"
    if not listing.exists():
        return []
    lines = (line.strip() for line in listing.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def build_command(engine: Engine, backend: Backend, lock: str | None = None, context: Path = paths.ROOT) -> list[str]:
    lock = lock or backend.locks[0]
    if lock not in backend.locks:
        raise UsageError(f"backend {backend.name!r} has no lock {lock!r}; valid: {', '.join(backend.locks)}")
    args = ["-f", str(context / "docker" / "Dockerfile")]
    for arg in (f"BACKEND={backend.name}", f"LOCK={lock}", f"JAXLAB_REVISION={lab_revision()}"):
        args += ["--build-arg", arg]
    if extras := extra_packages():
        args += ["--build-arg", f"EXTRA_PACKAGES={extras}"]
    for tag in tags(backend):
        args += ["-t", tag]
    if cert := pip_cert():
        # A BuildKit secret: mounted for the pip step only, never written to a layer.
        args += ["--secret", f"id=pip_cert,src={cert}"]
    return engine.build_command(args, context)


def build(engine: Engine, backend_name: str, lock: str | None = None, quiet: bool = False) -> None:
    backend = get_backend(backend_name)
    engine.require()
    # Without an explicit lock, a rebuild keeps the one the existing image was built from.
    lock = lock or built_lock(engine, backend)
    if quiet:
        print(f"building {backend.image} (cached layers are reused) ...", file=sys.stderr, flush=True)
    engine.build(build_command(engine, backend, lock), backend.image, quiet=quiet)


def ensure_image(engine: Engine, backend: Backend) -> None:
    """Build the backend's image unless it was built from this very revision of a clean checkout
    (as after `invoke bundle --load` in a room without internet, where a build could not fetch),
    with the extra packages asked for now. A checkout with changes always rebuilds: cached layers
    make that quick."""
    revision = lab_revision()
    extras = label(engine, backend, EXTRAS_LABEL) or ""
    stale = revision.endswith("-dirty") or image_revision(engine, backend) != revision
    if stale or extras != extra_packages():  # built with other packages than asked for now
        build(engine, backend.name, quiet=True)
