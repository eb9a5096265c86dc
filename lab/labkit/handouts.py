"""Learner copies (handouts) of the instructor notebooks, generated, never edited by hand.

The instructor notebooks mark each exercise's answer the way nbgrader does::

    ### BEGIN SOLUTION
    def standardize(x): ...
    ### END SOLUTION

and may hide a spoiler (an answer a check cell would print, or a reference function that is the
answer in NumPy, which ``lab.reference`` then loads) between ``### BEGIN HIDDEN TESTS`` and
``### END HIDDEN TESTS``. A handout replaces each answer with a line that raises "Exercise N: ...",
so the exercise's check fails with that message until the learner writes it, and drops hidden
regions. The k-th answer of a notebook is its exercise k; its title is the heading above it.

Each cell's role is kept in its metadata, as nbgrader keeps its own (``{"jaxlab": {"role": ...}}``):
``exercise`` (holds an answer), ``check`` (checks the exercise above it) or ``demo`` (a teaching
cell, which may call ``lab.check`` too). Nothing guesses a role from a cell's text. A handout folds
the code of check cells (their expected values are often the answer in NumPy) and starts each with
a line naming its exercise, which the kernel reads to point a learner back to the right one.

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
from .outdir import fill, owned_folder

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
HIDDEN = ("### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS")
OUT = paths.ROOT / "handouts"  # generated; git ignores it
ROLES = ("exercise", "check", "demo")
_HEADING = re.compile(r"^#+\s*(?:\d+\s*·\s*)?Exercise\s*(?:\d+)?\s*[·:.-]?\s*(?P<title>.*)$", re.M)


def role(cell) -> str | None:
    """The cell's role from its metadata: exercise, check, demo, or None (text, set-up, ...)."""
    return (cell.get("metadata", {}).get("jaxlab") or {}).get("role")


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
    return (
        f"Exercise {exercise.number} ({exercise.title}): your answer goes here. "
        f"Stuck? Run lab.solution({exercise.number}) to load the answer and go on."
    )


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
    statements: list[ast.stmt] | None
    try:
        statements = ast.parse("\n".join(lines)).body
    except SyntaxError:
        statements = None
    if statements is None or _bound_names(statements) is None:
        return f"{indent}raise NotImplementedError({text!r})"
    out = []
    for node in statements:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            header = lines[_first_line(node) - 1 : node.body[0].lineno - 1]
            body_indent = " " * (len(header[-1]) - len(header[-1].lstrip()) + 4)
            out += [*header, f"{body_indent}raise NotImplementedError({text!r})"]
        else:
            names = _bound_names([node])
            assert names is not None  # every statement passed _bound_names above
            out += [f"{name} = labkit.pending({exercise.number}, {text!r})" for name in names]
    # A name assigned twice is bound once; every function keeps its own raising body.
    kept = [line for i, line in enumerate(out) if "labkit.pending(" not in line or line not in out[:i]]
    kept = kept or [f"raise NotImplementedError({text!r})"]
    return "\n".join(indent + line if line else line for line in kept)


def _bound_names(statements: list[ast.stmt]) -> list[str] | None:
    """The names ``statements`` bind, when they are only function definitions and assignments to
    plain names (what a stub keeps, and what a learner's run then binds); None otherwise (a stub
    that raises at once)."""
    names: list[str] = []
    for node in statements:
        targets = (
            node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else None
        )
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            names.append(node.name)
        elif targets is not None and all(isinstance(t, ast.Name) for t in targets):
            names += [t.id for t in targets if isinstance(t, ast.Name)]
        else:
            return None
    return names


def _strip(source: str, begin: str, end: str, replace) -> str:
    """``source`` with every begin..end region (marker lines included) replaced by
    ``replace(region_lines, indent)`` (None drops it)."""
    out: list[str] = []
    region: list[str] | None = None
    indent = ""
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
    found = exercises(nb)
    pending = iter(found)
    latest = None
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        source = _strip(cell.source, *HIDDEN, lambda region, indent: None)
        if BEGIN in source:
            source = _strip(source, BEGIN, END, lambda region, indent: stub(next(pending), region, indent))
        latest = next((e for e in reversed(found) if e.cells[0] <= i), latest)
        if role(cell) == "check" and latest is not None:
            # Its code computes the expected values, often the answer's formula in NumPy: it starts
            # folded, so a learner meets the ✓ or the hint, not the reference.
            source = f"# checks exercise {latest.number} ({latest.title})\n{source}"
            cell.metadata.setdefault("jupyter", {})["source_hidden"] = True
        cell.source = source
        cell.outputs, cell.execution_count = [], None
    nb.metadata["jaxlab"] = {"handout_of": path.stem}
    return nb


MARKER = ".jaxlab-handouts"  # in every folder write() fills: the only folders it writes into again


def write(target: Path = OUT, notebooks: list[Path] | None = None) -> list[Path]:
    """Write every notebook's handout into ``target``; the same sources give the same bytes.

    ``target`` may be a new or empty folder, or one this wrote before (it carries :data:`MARKER`);
    never the checkout, ``lab/`` or a home folder, never a folder of someone's own notebooks (a
    learner's workspace holds edited handouts), and never a file through a symbolic link. Every
    handout is made before the first is written, so an error leaves the folder as it was."""
    target = owned_folder(target, MARKER, "--out", "invoke handouts")
    texts = {
        target / path.name: (nbformat.writes(learner_copy(path)) + "\n").encode()
        for path in notebooks or paths.notebook_paths()
    }
    return fill(target, MARKER, texts, "--out")


@dataclass
class Answer:
    """What ``lab.solution(N)`` loads: the answer, and the rest of its cell that has not run yet."""

    exercise: Exercise
    code: str  # the answer's lines, as the instructor wrote them
    rest: str  # the statements after it that a handout's stub stopped


def answer(path: Path, number: int) -> Answer:
    """Exercise ``number``'s answer in the instructor notebook at ``path``, and what of its cell a
    learner's run of the handout skipped.

    A handout's cell ran up to its stub: the code before the answer ran (data drawn, names bound),
    and so did the statements after it up to the first that used a stubbed name (a stub function
    raises when called, a placeholder when used). So what is left to run is the answer and the
    statements from that first use on; running anything else again would print twice and draw
    random numbers twice. An answer that a stub replaced by one raising line stopped the cell
    there, so everything after it is left.
    """
    nb = nbformat.read(path, as_version=4)
    found = exercises(nb)
    if number not in {e.number for e in found}:
        raise UsageError(f"{path.stem} has exercises 1 to {len(found)}, not {number}")
    exercise = found[number - 1]
    cell = exercise.cells[0]
    nth = sum(1 for e in found[: number - 1] if e.cells[0] == cell)  # answers before it in its cell
    source = _strip(nb.cells[cell].source, *HIDDEN, lambda region, indent: None)
    lines, regions, start = source.splitlines(), [], None
    for i, line in enumerate(lines):
        if line.strip() == BEGIN:
            start = i
        elif line.strip() == END and start is not None:
            regions.append((start, i))
            start = None
    begin, end = regions[nth]
    after_end = regions[nth + 1][0] if nth + 1 < len(regions) else len(lines)
    if lines[begin].strip() == lines[begin]:  # an answer of whole statements
        code = textwrap.dedent("\n".join(lines[begin + 1 : end]))
        return Answer(exercise, code, _left_to_run(code, "\n".join(lines[end + 1 : after_end])))
    # An answer inside a statement (a function's body, a with block): that statement is the answer
    # to load, as the instructor wrote it; the handout's stub made it raise where the answer stands.
    node = next(n for n in ast.parse(source).body if _first_line(n) - 1 <= begin < (n.end_lineno or n.lineno))
    first, last = _first_line(node) - 1, max(node.end_lineno or node.lineno, end + 1)  # the END line too
    code = "\n".join(line for line in lines[first:last] if line.strip() not in (BEGIN, END))
    return Answer(exercise, code, _left_to_run(code, "\n".join(lines[last:after_end])))


def _first_line(node: ast.stmt) -> int:
    """A statement's first line, its decorators included."""
    return min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])


def _left_to_run(code: str, after: str) -> str:
    """The statements of ``after`` from the first that uses a name ``code`` binds (all of them
    where the stub was one raising line)."""
    try:
        answer_tree, after_tree = ast.parse(code), ast.parse(after)
    except SyntaxError:
        return after
    bound = _bound_names(answer_tree.body)
    if bound is None:
        return after  # the stub raised at once: nothing after it ran
    lines = after.splitlines()
    for node in after_tree.body:
        if any(isinstance(n, ast.Name) and n.id in bound for n in ast.walk(node)):
            return "\n".join(lines[_first_line(node) - 1 :])
    return ""


def hidden_definition(path: Path, name: str) -> str:
    """The hidden region of the instructor notebook at ``path`` that defines ``name`` (a reference
    function a handout leaves out, see ``lab.reference``)."""
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type != "code" or HIDDEN[0] not in cell.source:
            continue
        regions: list[str] = []
        _strip(cell.source, *HIDDEN, lambda region, indent, found=regions: found.append(textwrap.dedent(region)))
        for region in regions:
            try:
                defined = {n.name for n in ast.parse(region).body if isinstance(n, ast.FunctionDef)}
            except SyntaxError:
                continue
            if name in defined:
                return region
    raise UsageError(f"{path.stem} defines no reference {name!r} in a hidden region")
