"""The kernel's side of a handout's check cells.

A handout starts each check cell with a line naming its exercise (``# checks exercise 3 (...)``,
written by :mod:`labkit.handouts` from the cell's role in its metadata). The kernel sees a cell's
text, not its metadata, so it reads that line, to say which exercise a failed check belongs to,
and to show a failed check as its message instead of a traceback that prints the cell's code.
"""

from __future__ import annotations

import re
from typing import Protocol

from .errors import LabError

# The first line of a handout's check cell, which labkit.handouts writes from the cell's role. It
# lives here, not with the handouts, so that a kernel need not import nbformat (over a second).
CHECKS_EXERCISE = re.compile(r"^# checks exercise (?P<number>\d+)\b")


class Follower(Protocol):
    """What the hooks need of the kernel's :class:`labkit.notebook.Lab`."""

    exercise: int | None  # the exercise the running check cell checks, if known
    _unresolved: dict[int, str]  # exercise -> the check of it that failed


class CheckFailed(AssertionError):
    """An exercise's check did not pass: the message says what differs and gives the hint."""


def _not_yet(number: int) -> str:
    return f"the check needs exercise {number} above it: finish it, or load its answer with lab.solution({number})"


def _check_cell(source: str) -> int | None:
    """The exercise a handout's check cell checks, from the line the handout starts it with."""
    m = CHECKS_EXERCISE.match(source or "")
    return int(m["number"]) if m else None


def _shell():
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    return get_ipython()


def brief_errors_in_check_cells() -> None:
    """In a kernel, an error raised in a check cell shows as one line (and a pointer to the
    exercise), not as a traceback that prints the cell's code, whose expected values are often
    the answer; so does the lab's own refusal (a device the room names but lacks). Other cells
    keep IPython's full traceback. The error stays an error output, so the lab and nbclient see
    the cell fail as before."""
    if (shell := _shell()) is None:
        return

    def brief(self, etype, value, tb, tb_offset=None):
        history = self.user_ns.get("_ih") or [""]
        number = _check_cell(history[-1])
        if not isinstance(value, LabError) and number is None:
            self.showtraceback((etype, value, tb), tb_offset=tb_offset)
            return None
        lines = self.InteractiveTB.get_exception_only(etype, value)
        if number is not None and not isinstance(value, CheckFailed | NotImplementedError | LabError):
            lines.append(f"({_not_yet(number)})\n")
        if number is not None and (lab := _following.get("lab")) is not None:
            lab._unresolved.setdefault(number, "its check did not run")
        self._showtraceback(etype, value, lines)
        return None

    shell.set_custom_exc((Exception,), brief)


_following: dict = {}  # the kernel's Lab, and the hook that tells it which exercise a cell checks


def follow_check_cells(lab: Follower) -> None:
    """Before each cell runs, tell ``lab`` which exercise the cell checks (a handout's check cell
    names it in its first line), so a failed check can point at an earlier one that failed."""
    if (shell := _shell()) is None:
        return
    if (old := _following.get("hook")) is not None:  # the start cell ran again
        shell.events.unregister("pre_run_cell", old)

    def hook(info) -> None:
        lab.exercise = _check_cell(getattr(info, "raw_cell", ""))
        if lab.exercise is not None:  # checked again: only a new failure counts
            lab._unresolved.pop(lab.exercise, None)

    shell.events.register("pre_run_cell", hook)
    _following.update(lab=lab, hook=hook)
