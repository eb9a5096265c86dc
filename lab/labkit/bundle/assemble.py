"""Making a bundle: the image saved, the lock's wheels downloaded, the project's own wheel built,
the handouts, a README and the checksums, assembled in a staging folder and moved into place."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from .. import __version__, handouts, images, locks, outdir, paths, pins, processes, signals
from ..backends import get_backend
from ..engine import Engine
from ..environment import lab_revision
from ..errors import LabError, UsageError
from .layout import (
    FORMAT,
    GZIP_LEVEL,
    MANIFEST,
    PARTIAL,
    PROJECT_LOCK,
    README,
    SUMS,
    check_target,
    default_out,
    folder_size,
    megabytes,
    say,
    staged,
)
from .sums import sha256, write_sums


def pip_env() -> dict[str, str]:
    """pip with no configuration at all: only what the command line names is a source of packages."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    return dict(env, PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1")


def download_command(lock_file: Path, wheels: Path) -> list[str]:
    """pip download of every file the lock pins, for the images' platform (the lock is complete:
    no dependency is looked for beyond it)."""
    return [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--quiet",
        "--no-deps",
        "--require-hashes",
        "--only-binary=:all:",
        *locks.pip_platform_args(),
        "--python-version",
        locks.PYTHON,
        "--implementation",
        "cp",
        "--dest",
        str(wheels),
        "-r",
        str(lock_file),
    ]


def project_sources(target: Path) -> Path:
    """A copy of what this project's wheel is built from, so the build writes nothing into the checkout."""
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(paths.ROOT / name, target / name)
    shutil.copytree(
        paths.NOTEBOOKS / "labkit", target / "lab" / "labkit", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    return target


def pip_errors(log: Path) -> str:
    text = log.read_text(errors="replace")
    errors = [line.strip() for line in text.splitlines() if line.startswith("ERROR")]
    return " ".join(errors or text.strip().splitlines()[-1:]) or "?"


def save_image(engine: Engine, tags: list[str], dest: Path) -> None:
    """``<engine> save`` of ``tags`` into ``dest``, gzip-compressed as it streams."""
    with open(dest, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=GZIP_LEVEL, mtime=0) as gz:
            engine.save(tags, gz.write)


def image_id(engine: Engine, image: str) -> str | None:
    return engine.image_field(image, "{{.Id}}")


def readme(manifest: dict) -> str:
    backend, lock = manifest["backend"], manifest["lock"]
    return f"""JAX Lab, offline kit for the {backend} backend
lock {lock}, JAX {manifest["jax"]}, lab {manifest["revision"]}, made {manifest["created"]}

Inside:
  {"image/" + manifest["image_file"]:<24}  the image {", ".join(manifest["tags"])} (docker save, gzip)
  {"wheels/":<24}  every wheel of locks/{lock}.txt for Linux x86_64, CPython 3.11, and jaxlab's own
  {"locks/":<24}  the hashed lock ({lock}.txt) and the jaxlab wheel's hash ({PROJECT_LOCK})
  {"handouts/":<24}  the learner notebooks
  {SUMS:<24}  the checksum of every other file ({MANIFEST}, this file and the above)

On the machine without internet, in a copy of the lab's checkout:

  invoke bundle --load /path/to/this/folder
      checks every file against {SUMS} (nothing is loaded if one is missing or differs), loads the
      image into docker or podman, and installs the wheels into the Python that runs invoke, from
      this folder only (pip --no-index --require-hashes); --no-image or --no-install skip a part
  invoke lab --backend {backend} --runtime local     (the lab in that Python)
  invoke lab --backend {backend} --runtime docker    (the lab in the loaded image)
  invoke jupyter --backend {backend}                 (JupyterLab in the loaded image)
      The checkout must be at the bundle's revision (bundle.json says which) and unchanged:
      then invoke uses the loaded image as it is; any other checkout makes it rebuild the
      image, which needs the network

No Python with the lab's packages there yet? Check and install by hand, in a Python 3.11 venv:
  sha256sum -c {SUMS}
  python3 -m pip install --no-index --find-links wheels --require-hashes -r locks/{lock}.txt
then run the commands above from the checkout as PYTHONPATH=lab invoke ...
"""


def make(engine: Engine, backend_name: str, out: Path | None = None, lock: str | None = None) -> Path:
    """Write the backend's bundle into ``out`` (default out/bundle-<backend>); its path."""
    backend = get_backend(backend_name)
    out = check_target(out or default_out(backend.name))
    if lock and lock not in backend.locks:
        raise UsageError(f"backend {backend.name!r} has no lock {lock!r}; valid: {', '.join(backend.locks)}")
    engine.require()
    started = time.monotonic()
    images.build(engine, backend.name, lock, quiet=True)
    lock = images.built_lock(engine, backend) or lock or backend.locks[0]
    tags = images.tags(backend)
    built = image_id(engine, backend.image)
    if not built:
        raise LabError(f"{backend.image} is not there after its build")
    try:
        with staged(out) as staging:
            manifest = assemble(engine, backend.name, lock, tags, built, staging)
            os.unlink(staging / PARTIAL)
            size = folder_size(staging)
            check_target(out)  # again: something may have been put there while this was made
            with signals.deferred():  # the last step: no signal leaves it half done
                outdir.promote(staging, out)
    except OSError as err:
        raise LabError(f"could not write the bundle {out}: {err.strerror or err}") from None
    say(f"wrote {out} ({megabytes(size)}, {manifest['files']} files) in {time.monotonic() - started:.0f} s")
    return out


def assemble(engine: Engine, backend: str, lock: str, tags: list[str], built: str, staging: Path) -> dict:
    """Fill ``staging`` with the bundle; its manifest."""
    for sub in ("image", "wheels", "locks", "handouts"):
        (staging / sub).mkdir()
    wheels = staging / "wheels"
    lock_file = staging / "locks" / f"{lock}.txt"
    shutil.copy2(locks.LOCKS / f"{lock}.txt", lock_file)
    with tempfile.TemporaryDirectory(prefix="jaxlab-bundle-") as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "src").mkdir()
        # The downloads and the wheel build go on while the image is saved (they wait on the
        # network, the save on the engine and gzip).
        say(f"bundle: downloading the wheels of lock {lock} (Linux x86_64, CPython {locks.PYTHON}) ...")
        with open(tmp / "download.log", "w") as log:
            download = processes.start(download_command(lock_file, wheels), stdout=log, stderr=subprocess.STDOUT)
        say("bundle: building the jaxlab wheel from this checkout ...")
        try:
            with open(tmp / "wheel.log", "w") as log:
                wheel = processes.start(
                    [
                        sys.executable,
                        "-m",
                        "pip",
                        "wheel",
                        "--quiet",
                        "--no-deps",
                        "-w",
                        str(tmp / "wheel"),
                        str(project_sources(tmp / "src")),
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
        except BaseException:
            with signals.deferred():
                processes.stop(download)
            raise
        try:
            image_file = staging / "image" / f"{tags[0].replace(':', '-')}.tar.gz"
            say(f"bundle: saving {', '.join(tags)} (gzip -{GZIP_LEVEL}) ...")
            t0 = time.monotonic()
            save_image(engine, tags, image_file)
            say(f"bundle: image {megabytes(image_file.stat().st_size)} in {time.monotonic() - t0:.0f} s")
            for proc, log_name, what in (
                (download, "download.log", f"downloading the wheels of lock {lock}"),
                (wheel, "wheel.log", "building the jaxlab wheel"),
            ):
                processes.wait(proc, None, threading.Event())
                if proc.returncode:
                    raise LabError(f"{what} failed: {pip_errors(tmp / log_name)[:600]}")
        finally:
            with signals.deferred():
                for proc in (download, wheel):
                    processes.stop(proc)
        project = next((tmp / "wheel").glob("jaxlab-*.whl"))
        shutil.move(project, wheels / project.name)
    project = wheels / project.name
    (staging / "locks" / PROJECT_LOCK).write_text(
        f"# This project's wheel (wheels/{project.name}), built from the checkout at {lab_revision()}.\n"
        f"jaxlab=={__version__} --hash=sha256:{sha256(project)}\n"
    )
    count = len(list(wheels.glob("*.whl"))) - 1
    say(f"bundle: {count} wheels and {project.name}, {megabytes(folder_size(wheels))}")
    notebooks = handouts.write(staging / "handouts")
    say(f"bundle: {len(notebooks)} handouts")
    manifest: dict[str, object] = {
        "format": FORMAT,
        "backend": backend,
        "lock": lock,
        "tags": tags,
        "image_id": built,
        "image_file": image_file.name,
        "jax": pins.version("jax"),
        "revision": lab_revision(),
        "project_wheel": project.name,
        "python": locks.PYTHON,
        "platform": "linux_x86_64",
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    (staging / README).write_text(readme(manifest))
    manifest["files"] = write_sums(staging)
    say(f"bundle: {SUMS} over {manifest['files']} files")
    return manifest
