"""A bundle's names (its manifest, checksums, README, the project's lock) and the rules for the
folder it is written to: only an earlier bundle is replaced, through a staging folder beside it."""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .. import outdir, paths, signals

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
