"""The lab inside a backend's image: the same runner as ``--runtime local``, its run written to
the host by the host's own rules (labkit.outdir), and a shell in the image. The container runs as
the invoking user, never as root."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from . import outdir, paths
from .backends import Backend, get_backend, require_device
from .engine import LOCAL, Engine
from .images import CACHE_MOUNT, CACHE_VOLUME, IMAGE_ROOT, IMAGE_UID, ensure_image

RUN = "run"  # the folder the container's lab writes inside its staging mount


def check_backend(engine: Engine, backend: Backend, instead: str = "") -> None:
    """The host must have the device (the container only sees what the host has) and, for
    GPUs, the engine must be able to pass it through. ``instead``: see :meth:`Engine.require`."""
    require_device(backend)
    engine.require(instead)
    if backend.container_runtime == "nvidia":
        engine.require_gpu_runtime(backend, instead)


NOTEBOOK_MOUNTS = "/mnt/notebooks"  # where notebooks from outside the lab appear in the container
REFERENCE_MOUNT = "/mnt/reference"  # where --against's folder appears in the container


def notebook_args(notebooks: list[str]) -> tuple[list[str], list[tuple[Path | str, str]]]:
    """The ``-n`` arguments for the lab inside the image, and the mounts they need.

    Names and numbers go through as they are (the runner inside resolves them); the lab's own
    notebook files go by name (the image, just rebuilt, has them); any other notebook file is
    mounted read-only from its folder, and so is a folder of notebooks."""
    args: list[str] = []
    folders: dict[Path, str] = {}
    lab_dir = paths.NOTEBOOKS.resolve()
    for nb in notebooks:
        path = Path(nb).expanduser()
        if path.is_dir():  # a folder of notebooks: mounted read-only, and run whole inside
            args += ["-n", folders.setdefault(path.resolve(), f"{NOTEBOOK_MOUNTS}/{len(folders)}")]
            continue
        if not (path.suffix == ".ipynb" and path.is_file()):
            args += ["-n", nb]
            continue
        path = path.resolve()
        if path.parent == lab_dir:
            args += ["-n", path.stem]
            continue
        folder = folders.setdefault(path.parent, f"{NOTEBOOK_MOUNTS}/{len(folders)}")
        args += ["-n", f"{folder}/{path.name}"]
    return args, [(host, f"{inside}:ro") for host, inside in folders.items()]


def run_lab(
    engine: Engine,
    backend_name: str,
    notebooks: list[str],
    given: dict,
    out: Path | None,
    jobs: int | None,
    checks: bool,
    cell_timeout: float | None = None,
    compare: bool = True,
    against: str | None = None,
    processes: int = 1,
    cache: bool = True,
) -> int:
    """Build the image where it is not current (see :func:`ensure_image`), then ``invoke lab`` inside
    it; the run lands in the host's ``out`` (default out/<backend>/) by the same rules as a local
    run. Returns the exit code."""
    backend = get_backend(backend_name)
    check_backend(engine, backend, LOCAL)
    ensure_image(engine, backend)
    selected, mounts = notebook_args(notebooks)
    inner = [
        "invoke",
        "lab",
        "--runtime",
        "local",
        "--backend",
        backend.name,
        "--out",
        f"{IMAGE_ROOT}/out/{RUN}",
        *selected,
    ]
    for name, value in given.items():
        inner += ["-p", f"{name}={value}"]
    if jobs:
        inner += ["--jobs", str(jobs)]
    if processes != 1:
        # All processes in this one container, as on one host: they reach the coordinator on its
        # 127.0.0.1, and a run needs no network between containers.
        inner += ["--processes", str(processes)]
    if cell_timeout:
        inner += ["--cell-timeout", str(cell_timeout)]
    if not checks:
        inner += ["--no-checks"]
    if not compare:
        inner += ["--no-compare"]
    elif against:  # a reference of the host's, mounted read-only (the image has the CPU's own)
        file = Path(against).resolve()
        mounts.append((file.parent, f"{REFERENCE_MOUNT}:ro"))
        inner += ["--against", f"{REFERENCE_MOUNT}/{file.name}"]
    if not cache:
        inner += ["--no-cache"]
    out = outdir.check(out or paths.OUT / backend.name)
    # The container writes into a staging folder of the host's, which the host then moves into
    # place: the host holds the lock and keeps the user's files safe, whoever the container runs as.
    with outdir.staged(out, backend.name) as staging:
        mounts += [(staging, f"{IMAGE_ROOT}/out"), cache_mount()]
        with image_user(staging) as user:
            code = engine.run_attached(
                engine.run_command(backend, inner, mounts, name=container_name(backend), extra=user)
            )
        if (staging / RUN).is_dir():  # a finished run, passed or failed (marked by the lab inside)
            outdir.promote(staging / RUN, out)
        return code


@contextmanager
def image_user(folder: Path) -> Iterator[list[str]]:
    """The ``run`` arguments for who the container runs as: the invoking user, so what it writes
    in ``folder`` is theirs; never root. Root instead gets the image's own user, and ``folder`` is
    lent to it for the block: afterwards every path in it is given back to its owner, and what the
    container made to the folder's owner."""
    if os.getuid() != 0:
        yield ["--user", f"{os.getuid()}:{os.getgid()}", "-e", "HOME=/tmp"]
        return
    owners = {path: (path.lstat().st_uid, path.lstat().st_gid) for path in [folder, *folder.rglob("*")]}
    for path in owners:
        os.chown(path, IMAGE_UID, IMAGE_UID, follow_symlinks=False)
    try:
        yield []
    finally:
        for path in [folder, *folder.rglob("*")]:
            os.chown(path, *owners.get(path, owners[folder]), follow_symlinks=False)


def container_name(backend: Backend) -> str:
    return f"jaxlab-{backend.name}-{os.getpid()}"


def cache_mount() -> tuple[str, str]:
    """The named volume that keeps the images' compilation cache from one container to the next."""
    return CACHE_VOLUME, CACHE_MOUNT


def out_mount() -> list[tuple[Path, str]]:
    """The host's out/ (made if missing) mounted where the image's lab writes."""
    out = paths.OUT.resolve()
    out.mkdir(parents=True, exist_ok=True)
    return [(out, f"{IMAGE_ROOT}/out")]


def shell(engine: Engine, backend_name: str) -> None:
    backend = get_backend(backend_name)
    check_backend(engine, backend)
    ensure_image(engine, backend)
    engine.run_attached(
        engine.run_command(backend, ["bash"], out_mount(), interactive=True, name=container_name(backend))
    )
