"""Run by tests/test_images.py inside an accelerator image, in the image's own Python:
what JAX there needs of the libraries its wheels brought.

    python3 - missing          each shared library's dependencies the dynamic loader cannot find
    python3 - pruned GLOB...   which pruned globs still match files, and which JAX files name them

(the script arrives on stdin, so it is the checkout's copy, not the image's). Prints JSON.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

SITE = Path(find_spec("jax").origin).resolve().parents[1]  # found, not imported: no backend starts
# JAX itself (with its platform plugins): the only code in the image that decides which of the
# accelerator wheels' files are used.
JAX_DIRS = ("jax", "jaxlib", "jax_plugins", "jax_cuda*_plugin")
# The shared libraries: JAX's and the ones NVIDIA's wheels bring.
LIBRARY_DIRS = ("nvidia", "jaxlib", "jax_plugins", "jax_cuda*_plugin")
# Characters that can be part of a file name in a string: a match must not sit inside a longer name.
NAME_CHAR = rb"[A-Za-z0-9_.+-]"


def files(dirs: tuple[str, ...], pattern: str = "*") -> list[Path]:
    return [
        f
        for d in dirs
        for top in sorted(SITE.glob(d))
        for f in sorted(top.rglob(pattern))
        if f.is_file() and not f.is_symlink()
    ]


def missing() -> dict[str, list[str]]:
    """For each shared library, the libraries it needs that the dynamic loader cannot find."""
    result = {}
    for lib in files(LIBRARY_DIRS, "*.so*"):
        out = subprocess.run(["ldd", str(lib)], capture_output=True, text=True).stdout
        absent = [line.split()[0] for line in out.splitlines() if "not found" in line]
        if absent:
            result[str(lib.relative_to(SITE))] = absent
    return result


def name_pattern(glob: str) -> re.Pattern[bytes]:
    """A file name glob as a regex over bytes that matches the whole name only (``*`` within a name)."""
    body = b"".join(NAME_CHAR + b"*" if c == "*" else re.escape(c).encode() for c in Path(glob).name)
    return re.compile(rb"(?<!" + NAME_CHAR + rb")" + body + rb"(?![A-Za-z0-9_+-]|\.[A-Za-z0-9])")


def names_file(data: bytes, literal: bytes, pattern: re.Pattern[bytes]) -> bool:
    # A regex over hundreds of MB is slow: find the name's longest literal part first (memchr
    # speed), and try the whole pattern only around each hit.
    at = data.find(literal)
    while at >= 0:
        if pattern.search(data, max(0, at - 256), at + len(literal) + 256):
            return True
        at = data.find(literal, at + 1)
    return False


def names(globs: list[str]) -> dict[str, list[str]]:
    """For each glob, the JAX files whose bytes name a file it matches."""
    patterns = {g: (max(Path(g).name.split("*"), key=len).encode(), name_pattern(g)) for g in globs}
    hits: dict[str, list[str]] = {}
    for f in files(JAX_DIRS):
        if f.suffix == ".pyc":  # compiled copies of the .py files beside them
            continue
        data = f.read_bytes()
        for g, (literal, pattern) in patterns.items():
            if names_file(data, literal, pattern):
                hits.setdefault(g, []).append(str(f.relative_to(SITE)))
    return hits


def present(globs: list[str]) -> dict[str, list[str]]:
    """For each glob, the files it still matches."""
    return {g: [str(f.relative_to(SITE)) for f in found] for g in globs if (found := sorted(SITE.glob(g)))}


if __name__ == "__main__":
    what, *globs = sys.argv[1:]
    report = {"missing": missing()} if what == "missing" else {"present": present(globs), "named": names(globs)}
    print(json.dumps(report, indent=1))
