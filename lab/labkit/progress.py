"""A learner's progress, noted in their own work folder: each check they run, passed or not, when.

In an image, ``$JAXLAB_WORK`` is the learner's work folder. Each ``lab.check`` a learner runs adds
one line to ``.jaxlab/progress.jsonl`` there: the notebook, the exercise, the check's key, whether
it passed, and the time; never their code or their values. A hub's class view reads these notes
(:func:`class_view`) to show who is where, and where most of the class is stuck.

Noting never gets in a learner's way: outside a work folder, or where the note cannot be written,
nothing happens. The file is only ever appended to, and never written through a symbolic link.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

WORK_VARIABLE = "JAXLAB_WORK"
NOTES = Path(".jaxlab") / "progress.jsonl"


def note(notebook: str, exercise: int | None, key: str, passed: bool) -> None:
    """Add one check's outcome to the learner's notes, if this kernel works in a work folder."""
    if not (work := os.environ.get(WORK_VARIABLE)):
        return
    line = json.dumps(
        {
            "notebook": notebook,
            "exercise": exercise,
            "check": key,
            "passed": passed,
            "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
    )
    path = Path(work) / NOTES
    try:
        if path.parent.is_symlink():
            return
        path.parent.mkdir(exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "a") as fh:
            fh.write(line + "\n")
    except OSError:
        pass  # a note must never break a learner's check


def read(work: Path) -> list[dict]:
    """Every note in ``work``, oldest first."""
    path = work / NOTES
    if not path.is_file() or path.is_symlink():
        return []
    return parse(path.read_text(errors="replace"))


def parse(text: str) -> list[dict]:
    """The notes in a notes file's ``text``; lines that are not notes are skipped."""
    found = []
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict) and {"notebook", "check", "passed", "at"} <= entry.keys():
            found.append(entry)
    return found


@dataclass
class ClassView:
    """Learners by exercise: for each learner and exercise, "passed", "failing" or absent."""

    exercises: list[tuple[str, int]]  # (notebook, exercise), in the order notebooks and exercises go
    cells: dict[str, dict[tuple[str, int], str]] = field(default_factory=dict)
    last_seen: dict[str, str] = field(default_factory=dict)

    def stuck(self) -> tuple[tuple[str, int], int] | None:
        """The exercise most learners are failing at now, and how many; None when nobody is."""
        counts = Counter(ex for row in self.cells.values() for ex, state in row.items() if state == "failing")
        return counts.most_common(1)[0] if counts else None


def class_view(notes: dict[str, list[dict]]) -> ClassView:
    """The class at a glance from each learner's notes. An exercise is passed once every check of it
    that the learner ran last passed; it is failing while the latest run of any of its checks
    failed. Checks outside an exercise (demos) are not shown."""
    latest: dict[str, dict[tuple[str, int], dict[str, bool]]] = {}
    view = ClassView([])
    for learner, entries in notes.items():
        checks = latest.setdefault(learner, {})
        for entry in entries:
            if not isinstance(entry.get("exercise"), int):
                continue
            checks.setdefault((entry["notebook"], entry["exercise"]), {})[entry["check"]] = bool(entry["passed"])
            view.last_seen[learner] = max(view.last_seen.get(learner, ""), str(entry["at"]))
    view.exercises = sorted({ex for checks in latest.values() for ex in checks})
    for learner, checks in latest.items():
        view.cells[learner] = {ex: "passed" if all(ok.values()) else "failing" for ex, ok in checks.items()}
    return view
