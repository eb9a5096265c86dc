"""Where a lab run happens. ``local`` runs the runner in this Python; a container runtime runs
the same runner inside an image and is registered here beside it."""

from __future__ import annotations

from .errors import UsageError
from .runner import run_lab

RUNTIMES = {"local": run_lab}


def get(name: str):
    try:
        return RUNTIMES[name]
    except KeyError:
        raise UsageError(f"unknown runtime {name!r}; valid runtimes: {', '.join(RUNTIMES)}") from None
