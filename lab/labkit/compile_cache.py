"""JAX's persistent compilation cache, as the lab keeps it: the programs XLA compiled in one run
are read back in the next (a notebook, a check, a learner's restarted kernel) instead of being
compiled again.

- One folder per backend and JAX version, ``<cache>/xla/<backend>-jax-<version>``, where
  ``<cache>`` is ``$JAXLAB_CACHE_DIR``, else ``$XDG_CACHE_HOME/jaxlab``, else ``~/.cache/jaxlab``:
  never the checkout. The images set ``JAXLAB_CACHE_DIR`` to a named volume's mount.
- Bounded: past :data:`MAX_BYTES` a folder loses its least recently used programs (JAX's own LRU).
- ``JAXLAB_COMPILE_CACHE=off`` (``invoke lab --no-cache``) turns it off for a process and every
  process it starts; ``invoke clean-cache`` empties it.

Every compilation is still written to the cache, however short (JAX's default skips those under
a second, which on the lab's small programs would be all of them). A cell that times compilation
itself says so with :func:`real_compilations`.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from . import paths
from .errors import UsageError

SWITCH = "JAXLAB_COMPILE_CACHE"  # "off": no persistent cache for this process and its children
FOLDER = "JAXLAB_CACHE_DIR"  # where the lab keeps its caches
MAX_BYTES = 1 << 30  # per backend and JAX version; the lab's CPU programs take about 10 MB
MARKER = ".made-by-jaxlab"  # what clean-cache looks for; a name ending "-cache" would be a program to JAX
_ENTRY_SUFFIXES = ("-cache", "-atime")  # JAX's files: a program, and when it was last used
_LOCK = ".lockfile"  # and the lock its size bound takes


def root() -> Path:
    given = os.environ.get(FOLDER)
    base = Path(given) if given else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "jaxlab"
    return base.expanduser().resolve()


def folder(backend: str) -> Path:
    """The cache of ``backend`` under this JAX version (a new version compiles differently); never
    in the checkout."""
    where = root() / "xla" / f"{backend}-jax-{importlib.metadata.version('jax')}"
    if where.is_relative_to(paths.ROOT.resolve()):
        raise UsageError(
            f"{FOLDER}={os.environ.get(FOLDER)}: the compilation cache would land in the checkout "
            f"({paths.ROOT}); give a folder outside it, or unset {FOLDER} for ~/.cache/jaxlab"
        )
    return where


def enabled() -> bool:
    return os.environ.get(SWITCH, "on").strip().lower() != "off"


def prepared(backend: str) -> Path | None:
    """The backend's cache folder, made and marked; None when the cache is off or cannot be made
    (a read-only home: the lab then runs uncached, as with --no-cache, and says so once)."""
    if not enabled():
        return None
    where = folder(backend)
    try:
        where.mkdir(parents=True, exist_ok=True)
        (where / MARKER).touch()
    except OSError as err:
        print(f"JAX Lab: no compilation cache ({where}: {err.strerror or err}); compiling as usual", file=sys.stderr)
        return None
    return where


def settings(backend: str) -> dict[str, object]:
    """JAX's configuration for the lab's cache of ``backend``: its folder, or the cache off."""
    where = prepared(backend)
    if where is None:
        return {"jax_enable_compilation_cache": False}
    return {
        "jax_enable_compilation_cache": True,
        "jax_compilation_cache_dir": str(where),
        "jax_persistent_cache_min_compile_time_secs": 0.0,
        "jax_persistent_cache_min_entry_size_bytes": 0,
        "jax_compilation_cache_max_size": MAX_BYTES,
    }


def configure(jax, backend: str) -> None:
    """Apply :func:`settings` before the first compilation (labkit.setup does), and keep the
    :data:`TALLY` of this process's compilations."""
    for name, value in settings(backend).items():
        jax.config.update(name, value)
    if not _listening:
        jax.monitoring.register_event_listener(_count)
        jax.monitoring.register_event_duration_secs_listener(_time)
        _listening.append(True)


# What this process's compilations cost, from JAX's monitoring events: each notebook's kernel
# records it with its results, so a run says how much it compiled and how much it loaded.
TALLY: dict[str, float] = {"programs": 0, "loaded": 0, "xla_seconds": 0.0}
_listening: list[bool] = []
_HIT = "/jax/compilation_cache/cache_hits"  # a program found in the cache
_XLA = "/jax/core/compile/backend_compile_duration"  # a program from XLA: compiled, or a hit loaded


def _count(event: str, **_) -> None:
    if event == _HIT:
        TALLY["loaded"] += 1


def _time(event: str, seconds: float, **_) -> None:
    if event == _XLA:
        TALLY["programs"] += 1
        TALLY["xla_seconds"] += seconds


def tally() -> dict[str, float]:
    """:data:`TALLY` as recorded: programs made, of them loaded from the cache, and their seconds."""
    return {**TALLY, "xla_seconds": round(TALLY["xla_seconds"], 3)}


def environment(backend: str) -> dict[str, str]:
    """The same settings as environment variables, for a kernel that never calls labkit.setup (a
    guest notebook): JAX reads each option from its name in capitals."""
    return {
        name.upper(): str(value).lower() if isinstance(value, bool) else str(value)
        for name, value in settings(backend).items()
    }


def programs(where: Path) -> int:
    return sum(1 for p in where.glob(f"*{_ENTRY_SUFFIXES[0]}")) if where.is_dir() else 0


def state(backend: str) -> dict[str, object]:
    """What a run records: whether the cache was on, and warm (holding programs) as it began."""
    if not enabled():
        return {"enabled": False, "warm": False, "programs": 0}
    where = folder(backend)
    found = programs(where)
    return {"enabled": True, "warm": found > 0, "programs": found, "folder": str(where)}


@contextlib.contextmanager
def switched(on: bool) -> Iterator[None]:
    """The cache on or off for the processes started in the block (invoke lab --no-cache)."""
    before = os.environ.get(SWITCH)
    if not on:
        os.environ[SWITCH] = "off"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(SWITCH, None)
        else:
            os.environ[SWITCH] = before


def clean() -> list[Path]:
    """Empty every backend's cache folder that the lab marked, and only JAX's files in it; a file
    of anyone else's stays where it is. Returns the folders emptied."""
    emptied = []
    for where in sorted((root() / "xla").glob("*")):
        if not (where / MARKER).is_file() or where.is_symlink():
            continue
        for entry in where.iterdir():
            if (
                entry.is_file()
                and not entry.is_symlink()
                and (entry.name.endswith(_ENTRY_SUFFIXES) or entry.name == _LOCK)
            ):
                entry.unlink()
        (where / MARKER).unlink()
        with contextlib.suppress(OSError):  # not empty: someone's files are in it
            where.rmdir()
        emptied.append(where)
    return emptied


@contextlib.contextmanager
def real_compilations() -> Iterator[None]:
    """Every compilation in the block is a real one: the persistent cache is neither read nor
    written, so a cell that times compilation shows it whether or not an earlier session compiled
    the same program. JAX decides once per process whether it uses the cache, so the decision is
    taken again on the way in and out, with JAX's reset_cache."""
    import jax
    from jax.experimental.compilation_cache import compilation_cache

    was = jax.config.values["jax_enable_compilation_cache"]
    jax.config.update("jax_enable_compilation_cache", False)
    compilation_cache.reset_cache()
    try:
        yield
    finally:
        jax.config.update("jax_enable_compilation_cache", was)
        compilation_cache.reset_cache()
