"""Where a lab run happens: ``local`` (the runner in this Python) or ``docker`` (the same runner
inside the backend's image). ``auto`` picks docker where an engine answers, else local."""

from __future__ import annotations

from .errors import UsageError

RUNTIMES = ("auto", "docker", "local")


def resolve(name: str, engine) -> tuple[str, str | None]:
    """The runtime to use, and a notice to print when ``auto`` fell back to local."""
    if name not in RUNTIMES:
        raise UsageError(f"unknown runtime {name!r}; valid runtimes: {', '.join(RUNTIMES)}")
    if name != "auto":
        return name, None
    if engine.answers():
        return "docker", None
    return "local", (f"no container engine answers ({engine.command}); running in this Python (--runtime local)")
