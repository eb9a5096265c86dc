"""A bundle's checksums: SHA256SUMS over every other file, in sha256sum's own format, and the
check that every listed file is there, is the bundle's own (no link), and matches."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from ..errors import UsageError
from .layout import CHUNK, PARTIAL, SUMS

_SUM_LINE = re.compile(r"^(?P<digest>[0-9a-f]{64}) [ *](?P<name>.+)$")


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
