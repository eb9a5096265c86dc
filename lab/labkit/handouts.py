"""Learner copies (handouts) of the instructor notebooks, generated, never edited by hand.

The instructor notebooks mark each exercise's answer the way nbgrader does::

    ### BEGIN SOLUTION
    def standardize(x): ...
    ### END SOLUTION

and may hide a spoiler (an answer a check cell would print) between ``### BEGIN HIDDEN TESTS`` and
``### END HIDDEN TESTS``. A handout replaces each answer with a line that raises "Exercise N: ...",
so the exercise's check fails with that message until the learner writes it, drops hidden
regions, and folds the code of check cells (their expected values are often the answer in
NumPy). The k-th answer of a notebook is its exercise k; its title is the heading above it.

nbgrader's own ClearSolutions writes one fixed stub for every answer and brings a grading
database and server the lab has no use for; these few lines give each exercise its own message
and the ``lab.solution(N)`` way out (see :mod:`labkit.notebook`).
"""

from __future__ import annotations

import ast
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

import nbformat

from . import paths
from .errors import UsageError

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
HIDDEN = ("### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS")
OUT = paths.ROOT / "handouts"  # generated; git ignores it
CHECK = re.compile(r"\blab\.check(_equal|_true)?\(")  # a call of lab.check, check_equal or check_true
_HEADING = re.compile(r"^#+\s*(?:\d+\s*·\s*)?Exercise\s*(?:\d+)?\s*[·:.-]?\s*(?P<title>.*)$", re.M)


@dataclass
class Exercise:
    number: int
    title: str
    cells: list[int]  # indices of the cells holding its answer


def exercises(nb) -> list[Exercise]:
    """Every exercise of an instructor notebook, numbered in order of their answers."""
    found: list[Exercise] = []
    title = ""
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown" and (m := _HEADING.search(cell.source)):
            title = m["title"].strip()
        elif cell.cell_type == "code" and BEGIN in cell.source:
            for _ in range(cell.source.count(BEGIN)):
                found.append(Exercise(len(found) + 1, title or f"exercise {len(found) + 1}", [i]))
            title = ""
    return found


def message(exercise: Exercise) -> str:
    return (f"Exercise {exercise.number} ({exercise.title}): your answer goes here. "
            f"Stuck? Run lab.solution({exercise.number}) to load the answer and go on.")


def stub(exercise: Exercise, answer: str, indent: str) -> str:
    """What stands in a handout for ``answer`` (the region's lines, without markers).

    Where the answer only defines functions and names, the stub keeps them: a function keeps
    its signature and raises the exercise's message when called, a name is bound to a
    :class:`labkit.notebook.Pending` that raises it when used. So the exercise's own cell runs,
    and its check cell is what fails, with the exercise's message. Any other answer becomes a
    line that raises it at once.
    """
    text = message(exercise)
    lines = textwrap.dedent(answer).splitlines()
    try:
        statements = ast.parse("\n".join(lines)).body
    except SyntaxError:
        statements = [None]
    out = []
    for node in statements:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            header = lines[first - 1: node.body[0].lineno - 1]
            body_indent = " " * (len(header[-1]) - len(header[-1].lstrip()) + 4)
            out += [*header, f"{body_indent}raise NotImplementedError({text!r})"]
        elif isinstance(node, ast.Assign | ast.AnnAssign) and all(
                isinstance(t, ast.Name) for t in (node.targets if isinstance(node, ast.Assign) else [node.target])):
            names = [t.id for t in (node.targets if isinstance(node, ast.Assign) else [node.target])]
            out += [f"{name} = labkit.pending({exercise.number}, {text!r})" for name in names]
        else:
            return f"{indent}raise NotImplementedError({text!r})"
    # A name assigned twice is bound once; every function keeps its own raising body.
    kept = [line for i, line in enumerate(out) if "labkit.pending(" not in line or line not in out[:i]]
    kept = kept or [f"raise NotImplementedError({text!r})"]
    return "\n".join(indent + line if line else line for line in kept)


def _strip(source: str, begin: str, end: str, replace) -> str:
    """``source`` with every begin..end region (marker lines included) replaced by
    ``replace(region_lines, indent)`` (None drops it)."""
    out, region, indent = [], None, ""
    for line in source.splitlines():
        if line.strip() == begin:
            region, indent = [], line[: len(line) - len(line.lstrip())]
        elif line.strip() == end and region is not None:
            if (text := replace("\n".join(region), indent)) is not None:
                out.append(text)
            region = None
        elif region is not None:
            region.append(line)
        else:
            out.append(line)
    if region is not None:
        raise UsageError(f"a region opened with {begin!r} is never closed")
    return "\n".join(out)


def learner_copy(path: Path):
    """The handout of the instructor notebook at ``path``: answers stubbed, spoilers gone, no outputs."""
    nb = nbformat.read(path, as_version=4)
    pending = iter(exercises(nb))
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        source = _strip(cell.source, *HIDDEN, lambda region, indent: None)
        if BEGIN in source:
            source = _strip(source, BEGIN, END, lambda region, indent: stub(next(pending), region, indent))
        cell.source = source
        cell.outputs, cell.execution_count = [], None
        if CHECK.search(source) and "labkit.pending(" not in source and "NotImplementedError(" not in source:
            # A check cell computes its expected values, often the answer's formula in NumPy: its
            # code starts folded, so a learner meets the ✓ or the hint, not the reference.
            cell.metadata.setdefault("jupyter", {})["source_hidden"] = True
    nb.metadata["jaxlab"] = {"handout_of": path.stem}
    return nb


def write(target: Path = OUT, notebooks: list[Path] | None = None) -> list[Path]:
    """Write every notebook's handout into ``target``; the same sources give the same bytes."""
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for path in notebooks or paths.notebook_paths():
        dest = target / path.name
        text = nbformat.writes(learner_copy(path)) + "\n"
        if not dest.is_file() or dest.read_text() != text:
            dest.write_text(text)
        written.append(dest)
    return written


def solution_cells(path: Path, number: int) -> list[str]:
    """The instructor's code cells that hold exercise ``number``'s answer, as they are."""
    nb = nbformat.read(path, as_version=4)
    found = {e.number: e for e in exercises(nb)}
    if number not in found:
        raise UsageError(f"{path.stem} has exercises 1 to {len(found)}, not {number}")
    return [_strip(nb.cells[i].source, *HIDDEN, lambda region, indent: None) for i in found[number].cells]
