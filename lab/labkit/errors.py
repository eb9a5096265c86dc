"""Errors that the command line turns into a one-line message and an exit code."""


class LabError(Exception):
    """A failure the user can act on; ``str(err)`` is the whole message."""

    exit_code = 1


class UsageError(LabError):
    """Bad input (backend, notebook name, parameter, missing device): nothing was run."""

    exit_code = 2
