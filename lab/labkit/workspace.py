"""A learner's workspace: a folder of their own, mounted from the host, that survives the container.

The first start seeds it with the handouts (see :mod:`labkit.handouts`); afterwards it is the
learner's, and nothing is ever overwritten: a handout is copied in only under a name the workspace
has never had (a list kept in :data:`SEEDED`), and :func:`reset` puts one back only after keeping
the learner's copy beside it.

In an image, ``python -m labkit.workspace COMMAND ...`` seeds ``$JAXLAB_WORK`` from
``$JAXLAB_ROOT/handouts`` and then becomes ``COMMAND`` (JupyterLab).
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path

from . import paths
from .errors import UsageError
from .outdir import replace_file

IMAGE_WORK = "/home/lab/work"  # where the workspace is mounted in the images
SEEDED = ".jaxlab-seeded"  # handouts this workspace has been given, one name a line


def seeded(work: Path) -> set[str]:
    marker = work / SEEDED
    return set(marker.read_text().split()) if marker.is_file() and not marker.is_symlink() else set()


def seed(work: Path, handouts: Path) -> list[Path]:
    """Copy into ``work`` every handout it has never been given; return what was copied."""
    work.mkdir(parents=True, exist_ok=True)
    given = seeded(work)
    copied = []
    for handout in sorted(Path(handouts).glob("*.ipynb")):
        dest = work / handout.name
        if handout.name in given or dest.exists() or dest.is_symlink():  # a link, even a dangling one, is theirs
            continue
        replace_file(dest, handout.read_bytes())
        copied.append(dest)
    replace_file(work / SEEDED, "".join(f"{name}\n" for name in sorted(given | {p.name for p in copied})).encode())
    return copied


def reset(work: Path, handouts: Path, notebook: str) -> tuple[Path, Path | None]:
    """Put the handout ``notebook`` (name, number or stem) back into ``work``; the learner's copy
    is kept beside it as ``NAME.ipynb.<time>.bak``. Returns (the handout, the kept copy)."""
    chosen = pick(notebook, sorted(Path(handouts).glob("*.ipynb")))
    dest = Path(work) / chosen.name
    if dest.is_symlink():
        raise UsageError(f"--reset {notebook!r}: {dest} is a symbolic link; move it aside first, it was left as it is")
    kept = None
    if dest.exists():
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        kept = dest.with_name(f"{dest.name}.{stamp}.bak")
        dest.rename(kept)
    replace_file(dest, chosen.read_bytes())
    return dest, kept


def pick(notebook: str, choices: list[Path]) -> Path:
    """The one of ``choices`` that ``notebook`` names (file name, stem, number or topic)."""
    matches = [p for p in choices if notebook in (p.name, p.stem, p.stem[:2], p.stem[3:])]
    if len(matches) != 1:
        raise UsageError(f"--reset {notebook!r}: no such handout; available: {', '.join(p.stem for p in choices)}")
    return matches[0]


def main(argv: list[str]) -> None:
    work = Path(os.environ.get("JAXLAB_WORK", IMAGE_WORK))
    try:
        for path in seed(work, paths.ROOT / "handouts"):
            print(f"workspace: added {path.name}", file=sys.stderr)
    except (OSError, UsageError) as err:
        # An empty Lab whose every save fails is worse than no Lab: stop, and say why in one line.
        why = err.strerror if isinstance(err, OSError) else str(err)
        sys.exit(
            f"workspace: {work} cannot be written by this user (uid {os.getuid()}): {why}; "
            f"mount a folder that uid {os.getuid()} owns, or leave JAXLAB_WORK unset for the named volume"
        )
    if argv:
        os.execvp(argv[0], argv)


if __name__ == "__main__":
    main(sys.argv[1:])
