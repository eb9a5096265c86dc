"""Where a run is written, and the rules that keep everything else safe.

A run only ever replaces a run. The runner marks each run folder with :data:`MARKER`; ``--out``
may name a new folder, an empty one, or a folder that holds that marker. Anything else (a
user's folder, a file, the checkout, ``lab/``, the folder that holds other runs) is refused
before anything starts, in one line that says why.

A run is assembled in a staging folder beside its destination and moved into place at the end;
the previous run is removed only once the new one is there. A lock beside the destination lets
one run at a time write it: a second is refused, never interleaved. Staging folders left by a
run that crashed are cleaned up by the next run into the same place.
"""

from __future__ import annotations

import datetime as dt
import errno
import fcntl
import json
import os
import re
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from . import paths
from .errors import UsageError

MARKER = ".jaxlab-run"  # in every run folder the runner writes: what may be replaced
_LEFTOVER = re.compile(r"^\.(?P<name>.+)\.(?P<kind>partial|old)-(?P<pid>\d+)$")


def is_run(folder: Path) -> bool:
    """A folder the runner wrote: it carries the marker, or (a run from before the marker
    existed) a results.json that is a lab run's."""
    if (folder / MARKER).is_file():
        return True
    try:
        data = json.loads((folder / "results.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and {"format", "run", "notebooks"} <= data.keys()


def protected() -> dict[Path, str]:
    """Folders no run may be, or contain: what each one is, for the message."""
    return {
        paths.ROOT.resolve(): "the lab's checkout",
        paths.NOTEBOOKS.resolve(): "the lab's notebooks (lab/)",
        Path.home().resolve(): "your home folder",
    }


# The system's own folders, and the home folder's secrets: nothing the lab writes goes inside them
# (as root, a workspace there would be lent to the image's user). Root's home is one of them for
# everyone but root, whose home, like anyone's, is where the lab may write.
SYSTEM = (
    "/etc",
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/boot",
    "/dev",
    "/sys",
    "/proc",
    "/run",
    "/var",
    "/srv",
    "/root",
)
SCRATCH = ("/var/tmp",)  # inside SYSTEM, but meant for anyone's files
SECRETS = (".ssh", ".gnupg")


def writable_folder(path: Path, flag: str, advice: str) -> Path:
    """``path`` resolved, unless it is, or contains, a folder of :func:`protected`, lies in a
    system folder or a home folder's secrets, or is a file: then a UsageError naming ``flag`` and
    giving ``advice``. For every folder the lab writes into (a run, a bundle, handouts, reports,
    a learner's workspace)."""
    path = Path(path).expanduser().resolve()
    for folder, what in protected().items():
        if folder.is_relative_to(path):
            raise UsageError(f"{flag} {path} is or contains {what}; {advice}")
    home = Path.home().resolve()
    secret = any(path.is_relative_to(home / s) for s in SECRETS)
    ours = any(path.is_relative_to(folder) for folder in (home, paths.ROOT.resolve(), *map(Path, SCRATCH)))
    if secret or not ours and any(path.is_relative_to(folder) for folder in SYSTEM):
        raise UsageError(f"{flag} {path} is in a system folder or among a home folder's secrets; {advice}")
    if path.exists() and not path.is_dir():
        raise UsageError(f"{flag} {path} is a file, not a folder; {advice}")
    return path


def learner_folder(path: Path, flag: str, anywhere: bool) -> Path:
    """``path`` resolved, as a learner's workspace: a :func:`writable_folder` in the user's home
    or the checkout, or (``anywhere``, said on purpose) elsewhere. A workspace is lent to the
    image's user for the session, so a shared folder is never taken by a slip of the keyboard."""
    folder = writable_folder(path, flag, "give a folder for the learner's notebooks")
    if not anywhere and not any(folder.is_relative_to(p) for p in (Path.home().resolve(), paths.ROOT.resolve())):
        raise UsageError(
            f"{flag} {folder} is outside your home folder and the checkout; give a folder there, "
            f"or add --anywhere to use this one on purpose"
        )
    return folder


def owned_folder(path: Path, marker: str, flag: str, writer: str, owns=None, example: str = "") -> Path:
    """``path`` resolved, as a folder that ``writer`` may fill: a new or empty one, or one that it
    filled before (``owns(folder)``, by default: it carries ``marker``). Never a protected folder
    (:func:`writable_folder`), a file, a symbolic link, or a folder of someone else's files: the
    one rule for runs, bundles, handouts and reports. ``example`` names a good folder."""
    advice = f"give a new or empty folder{example}, or one that {writer} wrote"
    if Path(path).expanduser().is_symlink():
        raise UsageError(f"{flag} {path} is a symbolic link; {advice}")
    folder = writable_folder(path, flag, advice)
    owned = owns(folder) if owns else (folder / marker).is_file()
    if folder.is_dir() and any(folder.iterdir()) and not owned:
        raise UsageError(f"{flag} {folder} holds files that {writer} did not write (it has no {marker}); {advice}")
    return folder


def fill(folder: Path, marker: str, files: dict[Path, bytes], flag: str) -> list[Path]:
    """Write ``files`` (all inside ``folder``, which :func:`owned_folder` let through) and mark the
    folder with ``marker``. A file that stands there as a link or a folder stops it before anything
    is written; each file is replaced whole, and only where its bytes change."""
    for dest in files:
        if dest.is_symlink() or dest.exists() and not dest.is_file():
            raise UsageError(f"{flag} {folder}: {dest.name} is a symbolic link or not a file; nothing was written")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / marker).touch()
        for dest, data in files.items():
            if not dest.is_file() or dest.read_bytes() != data:
                replace_file(dest, data)
    except OSError as err:
        raise UsageError(
            f"{flag} {folder}: cannot write there ({err.strerror or err}); give a folder you can write to"
        ) from None
    return list(files)


def own_files(files: list[Path], writer: str) -> list[Path]:
    """The files ``writer`` will write in its own place (the references, the locks, the bench's
    figures), checked before any work: one that stands there as a symbolic link or a folder is
    someone's, and stops the command in one line rather than after an hour of work."""
    for dest in files:
        if dest.is_symlink() or dest.exists() and not dest.is_file():
            raise UsageError(
                f"{writer} would replace {dest}, which is a symbolic link or not a file; move it "
                f"away, then run {writer} again"
            )
    return files


def replace_file(dest: Path, data: bytes) -> None:
    """Write ``dest`` whole or not at all, never through a symbolic link that stands there."""
    if dest.is_symlink() or dest.exists() and not dest.is_file():
        raise UsageError(f"{dest} is a symbolic link or not a file; it was left as it is")
    fresh = dest.with_name(f".{dest.name}.partial-{os.getpid()}")
    fresh.write_bytes(data)
    os.replace(fresh, dest)


def check(out: Path) -> Path:
    """``out`` resolved, or a UsageError saying why a run may not be written there."""
    folder = writable_folder(out, "--out", "give a new folder, such as out/<backend>, or an earlier run's folder")
    if (
        folder.is_dir()
        and not is_run(folder)
        and (runs := sorted(p.name for p in folder.iterdir() if p.is_dir() and is_run(p)))
    ):
        raise UsageError(
            f"--out {folder} holds other runs ({', '.join(runs)}); give one run's folder, "
            f"such as {folder / runs[0]}, or a new one"
        )
    return owned_folder(out, MARKER, "--out", "invoke lab", owns=is_run, example=" (such as out/<backend>)")


def _unwritable(out: Path, err: OSError) -> UsageError:
    return UsageError(f"--out {out}: cannot write there ({err.strerror or err}); give a folder you can write to")


@contextmanager
def locked(out: Path, what: str = "lab run") -> Iterator[None]:
    """One writer at a time into ``out`` (a run, a bundle): a second is refused, never interleaved.

    The lock is a file beside ``out``, removed when its holder ends. Whoever locks it then checks
    that the file is still there and is the one it locked: a writer that opened the file just
    before the holder removed it would otherwise hold a lock on a file nobody else can see, while
    a newcomer locks a fresh one."""
    lock = out.with_name(f".{out.name}.lock")
    for _ in range(100):
        fd = _take(lock, out, what)
        try:
            current = os.stat(lock).st_ino
        except FileNotFoundError:
            current = None
        if current == os.fstat(fd).st_ino:
            break
        os.close(fd)  # the file was removed (and maybe made again) under us: try the one there now
    else:
        raise UsageError(f"could not lock {out}: its lock file keeps changing; try again")
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        try:
            yield
        finally:
            lock.unlink(missing_ok=True)  # still held: a newcomer checks the file it locked is this one
    finally:
        os.close(fd)


def _take(lock: Path, out: Path, what: str) -> int:
    """An open descriptor of ``lock`` with the lock held, or a UsageError: someone holds it."""
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as err:
        raise _unwritable(out, err) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
        os.close(fd)
        if err.errno not in (errno.EAGAIN, errno.EACCES):
            raise _unwritable(out, err) from None
        raise UsageError(
            f"another {what} (pid {holder}) is writing {out}; wait for it to end, or give another --out"
        ) from None
    return fd


def clean_leftovers(out: Path) -> list[Path]:
    """Remove the staging and replaced folders that crashed runs left beside ``out`` (under the
    lock, no live run can own one). Only folders that carry the marker are touched."""
    removed = []
    for path in out.parent.glob(f".{out.name}.*-*"):
        m = _LEFTOVER.match(path.name)
        if m and m["name"] == out.name and path.is_dir() and is_run(path):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def _mark(folder: Path, backend: str) -> None:
    stamp = {"backend": backend, "pid": os.getpid(), "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    (folder / MARKER).write_text(json.dumps(stamp) + "\n")


@contextmanager
def staged(out: Path, backend: str) -> Iterator[Path]:
    """Hold ``out``'s lock and give a fresh staging folder beside it; on any exit but a
    :func:`promote`, the staging folder goes and ``out`` is as it was."""
    out = check(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise _unwritable(out, err) from None
    with locked(out):
        for path in clean_leftovers(out):
            print(f"notice: removed {path.name}, left beside {out} by a run that did not finish", file=sys.stderr)
        staging = out.with_name(f".{out.name}.partial-{os.getpid()}")
        try:
            staging.mkdir()
            _mark(staging, backend)
        except OSError as err:
            raise _unwritable(out, err) from None
        try:
            yield staging
        finally:
            shutil.rmtree(staging, ignore_errors=True)  # gone already once promoted


def promote(staging: Path, out: Path) -> None:
    """Move a finished run into place; the previous run is removed only once the new one is there."""
    old = out.with_name(f".{out.name}.old-{os.getpid()}")
    if out.exists():
        out.rename(old)
    try:
        staging.rename(out)
    except OSError:
        if old.exists():
            old.rename(out)
        raise
    shutil.rmtree(old, ignore_errors=True)
