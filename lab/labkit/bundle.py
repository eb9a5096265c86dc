"""An offline kit for a room without internet: one folder with everything a backend needs.

``invoke bundle --backend cpu`` writes (default ``out/bundle-cpu``)::

    bundle.json          what this is: backend, lock, image tags and id, JAX version, revision
    README.txt           what is inside and the commands that use it
    SHA256SUMS           a checksum of every other file (``sha256sum -c SHA256SUMS`` reads it too)
    image/jaxlab-cpu.tar.gz     ``docker save`` of jaxlab:cpu and jaxlab:cpu-jax<version>, gzip -1
    locks/cpu.txt        the hashed lock the image was built from
    locks/jaxlab.txt     this project's wheel, pinned by its hash
    wheels/              every wheel of the lock for Linux x86_64 / CPython 3.11, and jaxlab's own
    handouts/            the learner notebooks

``invoke bundle --load DIR`` on the machine without internet checks every file against SHA256SUMS
before it touches anything, then loads the image and installs the wheels into the Python that runs
it, from that folder only (``pip install --no-index --require-hashes``).

A bundle only ever replaces a bundle: it is assembled in a staging folder beside its destination
and moved into place once complete, so Ctrl-C leaves no half-written bundle, and a folder of the
user's is refused before anything starts.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from . import __version__, handouts, images, locks, outdir, paths, pins, processes, signals
from .backends import get_backend
from .engine import Engine
from .environment import lab_revision
from .errors import LabError, UsageError

FORMAT = "jaxlab-bundle/1"
MANIFEST = "bundle.json"  # in every bundle: what may be replaced, and what --load reads
SUMS = "SHA256SUMS"
README = "README.txt"
PARTIAL = ".jaxlab-bundle-partial"  # in a staging folder until it is complete
PROJECT_LOCK = "jaxlab.txt"
# docker save's tar of a ~1 GB image: gzip -1 takes a third of gzip -6's time for 13% more bytes,
# and every engine's `load` reads gzip (zstd only newer ones).
GZIP_LEVEL = 1
CHUNK = 1 << 20
_SUM_LINE = re.compile(r"^(?P<digest>[0-9a-f]{64}) [ *](?P<name>.+)$")


def default_out(backend: str) -> Path:
    return paths.OUT / f"bundle-{backend}"


def say(line: str) -> None:
    print(line, flush=True)


def megabytes(size: int) -> str:
    return f"{size / 1e6:,.0f} MB"


def folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


# --- where a bundle may be written


def is_bundle(folder: Path) -> bool:
    try:
        return json.loads((folder / MANIFEST).read_text()).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def check_target(out: Path) -> Path:
    """``out`` resolved, or a UsageError saying why a bundle may not be written there."""
    return outdir.owned_folder(
        out, MANIFEST, "--out", "invoke bundle", owns=is_bundle, example=" (such as out/bundle-<backend>)"
    )


@contextmanager
def staged(out: Path) -> Iterator[Path]:
    """Hold ``out``'s lock and give a fresh staging folder beside it; on any exit but
    :func:`outdir.promote` the staging folder goes, and ``out`` is as it was."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with outdir.locked(out, "bundle"):
        # Left by a bundle that was killed (under the lock, nobody else owns them). Only folders
        # that are marked as a bundle's staging, or are a replaced bundle, are touched.
        for path in out.parent.glob(f".{out.name}.*-*"):
            if path.is_dir() and ((path / PARTIAL).is_file() or is_bundle(path)):
                shutil.rmtree(path, ignore_errors=True)
                print(
                    f"notice: removed {path.name}, left beside {out} by a bundle that did not finish", file=sys.stderr
                )
        staging = out.with_name(f".{out.name}.partial-{os.getpid()}")
        staging.mkdir()
        try:
            (staging / PARTIAL).write_text(f"{os.getpid()}\n")
            yield staging
        finally:
            with signals.deferred():
                shutil.rmtree(staging, ignore_errors=True)  # gone already once promoted


# --- checksums


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def files_of(folder: Path) -> list[str]:
    """Every file under ``folder`` but SHA256SUMS (and a staging folder's mark), as sorted POSIX paths
    relative to it."""
    names = (p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    return sorted(name for name in names if name not in (SUMS, PARTIAL))


def write_sums(folder: Path) -> int:
    """SHA256SUMS over every other file, in sha256sum's own format; the number of files."""
    names = files_of(folder)
    (folder / SUMS).write_text("".join(f"{sha256(folder / name)}  {name}\n" for name in names))
    return len(names)


def read_sums(folder: Path) -> dict[str, str]:
    sums = folder / SUMS
    if not sums.is_file():
        raise UsageError(f"{folder} has no {SUMS}: not a bundle, or an incomplete copy of one")
    listed: dict[str, str] = {}
    for number, line in enumerate(sums.read_text(errors="replace").splitlines(), 1):
        m = _SUM_LINE.match(line)
        if not m or (name := m["name"]).startswith("/") or ".." in name.split("/") or name == SUMS:
            raise UsageError(f"{sums} line {number} is not '<sha256>  <file in the bundle>'; make the bundle again")
        listed[name] = m["digest"]
    return listed


def verify(folder: Path) -> int:
    """Every file listed in SHA256SUMS is there with its checksum, and nothing else is; else a
    UsageError naming the file. The number of files checked."""
    listed = read_sums(folder)
    # A bundle holds plain files only: a link would have the file behind it checked, and then
    # loaded or installed, from wherever it points.
    if linked := [name for name in listed if _through_a_link(folder, name)]:
        more = f" (and {len(linked) - 1} more)" if len(linked) > 1 else ""
        raise UsageError(
            f"bundle {folder}: {linked[0]} is or lies behind a symbolic link{more}; a bundle holds "
            f"only its own files: copy the folder again, without links"
        )
    if missing := [name for name in listed if not (folder / name).is_file()]:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise UsageError(f"bundle {folder}: {missing[0]} is missing{more}; copy the whole folder again")
    if extra := [name for name in files_of(folder) if name not in listed]:
        more = f" (and {len(extra) - 1} more)" if len(extra) > 1 else ""
        raise UsageError(f"bundle {folder}: {extra[0]} is not in {SUMS}{more}; remove it, or make the bundle again")
    bad = []
    for name, digest in listed.items():
        if sha256(folder / name) != digest:
            bad.append(name)
    if bad:
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise UsageError(f"bundle {folder}: {bad[0]} does not match its checksum in {SUMS}{more}; copy it again")
    return len(listed)


def _through_a_link(folder: Path, name: str) -> bool:
    """Whether ``name`` (a path relative to ``folder``) or a folder on the way to it is a link."""
    path = folder
    for part in name.split("/"):
        path = path / part
        if path.is_symlink():
            return True
    return False


# --- making a bundle


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


# --- loading a bundle


def read_manifest(folder: Path) -> dict:
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        manifest = None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise UsageError(f"{folder} is not a bundle of this lab ({MANIFEST} missing or of another format)")
    return manifest


def editable_checkout() -> str | None:
    """Where jaxlab is installed in editable mode in this Python (a checkout), if it is."""
    from importlib import metadata

    try:
        text = metadata.distribution("jaxlab").read_text("direct_url.json")
        info = json.loads(text or "{}")
    except (metadata.PackageNotFoundError, ValueError):
        return None
    return info.get("url") if info.get("dir_info", {}).get("editable") else None


def load(engine: Engine, folder: Path, image: bool = True, install: bool = True, backend: str | None = None) -> None:
    """Check every file of the bundle in ``folder``, then load its image and install its wheels."""
    folder = Path(folder).expanduser().resolve()
    if not folder.is_dir():
        raise UsageError(f"--load {folder}: no such folder; give a bundle's folder (invoke bundle writes one)")
    if image:
        engine.require()
    if install and not locks.host_is_target():
        raise UsageError(
            f"the wheels are for Linux x86_64 CPython {locks.PYTHON}, and this Python is "
            f"{sys.implementation.name} {sys.version_info[0]}.{sys.version_info[1]} on {sys.platform}; "
            f"run invoke with a Python {locks.PYTHON}, or give --no-install"
        )
    say(f"bundle: checking every file of {folder} against {SUMS} ...")
    count = verify(folder)
    manifest = read_manifest(folder)  # checked above, with the rest
    if backend and backend != manifest["backend"]:
        raise UsageError(f"--backend {backend}: {folder} is a bundle of the {manifest['backend']} backend")
    say(f"bundle: {count} files match ({manifest['backend']}, lock {manifest['lock']}, lab {manifest['revision']})")
    if image:
        load_image(engine, folder, manifest)
    if install:
        install_wheels(folder, manifest)
    if not (image or install):
        say("bundle: checked only (--no-image --no-install)")


def load_image(engine: Engine, folder: Path, manifest: dict) -> None:
    say(f"bundle: loading {', '.join(manifest['tags'])} into {engine.command} ...")
    engine.load(folder / "image" / manifest["image_file"])
    for tag in manifest["tags"]:
        if image_id(engine, tag) != manifest["image_id"]:
            raise LabError(f"{tag} is not the bundle's image after {engine.command} load")
    say(f"bundle: loaded {', '.join(manifest['tags'])} ({manifest['image_id'][:19]})")


def install_command(folder: Path, lock_file: str, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--no-index",
        "--find-links",
        str(folder / "wheels"),
        "--require-hashes",
        *extra,
        "-r",
        str(folder / "locks" / lock_file),
    ]


def install_wheels(folder: Path, manifest: dict) -> None:
    say(
        f"bundle: installing the wheels of lock {manifest['lock']} into this Python: {sys.prefix} "
        f"({sys.executable}), from {folder / 'wheels'} only"
    )
    steps = [(install_command(folder, f"{manifest['lock']}.txt"), f"lock {manifest['lock']}")]
    if checkout := editable_checkout():
        say(f"bundle: jaxlab is installed here from the checkout {checkout} (editable); kept, not the bundle's wheel")
    else:
        say(f"bundle: installing {manifest['project_wheel']}")
        # The same version number for every revision: replace whatever jaxlab is there.
        steps.append((install_command(folder, PROJECT_LOCK, "--no-deps", "--force-reinstall"), "jaxlab"))
    for cmd, what in steps:
        proc = processes.start(cmd, env=pip_env())
        processes.wait(proc, None, threading.Event())
        if proc.returncode:
            raise LabError(
                f"pip could not install {what} from {folder / 'wheels'} (exit {proc.returncode}); "
                f"see pip's message above"
            )
    say("bundle: installed")
