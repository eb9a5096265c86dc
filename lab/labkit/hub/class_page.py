"""The class at a glance, as the instructor's page shows it: learners by exercise, and the exercise
most of the class is stuck on. A pure function of the learners' notes (:mod:`labkit.progress`);
the page refreshes itself while the class works."""

from __future__ import annotations

import html
from pathlib import Path

from ..progress import ClassView, class_view, read

REFRESH_SECONDS = 5
MARK = {"passed": ("✓", "passed"), "failing": ("✗", "failing")}


def notes_of(works: Path) -> dict[str, list[dict]]:
    """Each learner's notes, from ``works/<learner>/`` (one work folder per learner)."""
    if not works.is_dir():
        return {}
    return {folder.name: read(folder) for folder in sorted(works.iterdir()) if folder.is_dir()}


def render(view: ClassView, learners: list[str], refresh: int = REFRESH_SECONDS) -> str:
    """The page: a banner naming where most are stuck, and a table of learners by exercise."""
    everyone = sorted(set(learners) | set(view.cells))
    if stuck := view.stuck():
        (notebook, exercise), count = stuck
        banner = f"Most stuck: {notebook}, exercise {exercise} ({count} of {len(everyone)} learners failing it)"
    else:
        banner = "Nobody is failing a check right now."
    head = "".join(f"<th>{html.escape(nb[:2])} · {ex}</th>" for nb, ex in view.exercises)
    rows = []
    for learner in everyone:
        cells = view.cells.get(learner, {})
        marks = []
        for ex in view.exercises:
            mark, css = MARK.get(cells.get(ex, ""), ("", "none"))
            marks.append(f'<td class="{css}">{mark}</td>')
        seen = html.escape(view.last_seen.get(learner, "—"))
        rows.append(f"<tr><th>{html.escape(learner)}</th>{''.join(marks)}<td>{seen}</td></tr>")
    return "\n".join(
        [
            "<!doctype html><html><head><meta charset='utf-8'>",
            f"<meta http-equiv='refresh' content='{refresh}'><title>JAX Lab · the class</title>",
            "<style>body{font:14px system-ui,sans-serif;margin:24px}table{border-collapse:collapse}"
            "th,td{border:1px solid #ddd;padding:3px 8px;text-align:center}.passed{background:#e8f5e9}"
            ".failing{background:#fdecea}.banner{font-weight:bold;margin:8px 0}</style></head><body>",
            "<h1>JAX Lab · the class</h1>",
            f"<p class='banner' id='stuck'>{html.escape(banner)}</p>",
            f"<table id='class'><tr><th>learner</th>{head}<th>last check</th></tr>",
            *rows,
            "</table></body></html>",
        ]
    )


def page(works: Path, learners: list[str]) -> str:
    """The page for the learners whose work folders are under ``works``."""
    return render(class_view(notes_of(works)), learners)
