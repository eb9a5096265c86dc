"""The committed notebooks: no outputs, the shared parameters cell, solutions marked for the
learner handouts, and results recorded under the notebook's own name."""

from __future__ import annotations

import re

import nbformat
import pytest

from labkit import handouts, params, paths

# A call of lab.check, check_equal or check_true: the cells' roles live in their metadata, and
# these tests hold the metadata to what the cells do.
CALLS_LAB_CHECK = re.compile(r"\blab\.check(_equal|_true)?\(")
NOTEBOOKS = paths.notebook_paths()
ids = [nb.stem for nb in NOTEBOOKS]


def test_the_lab_has_its_numbered_notebooks():
    assert len(NOTEBOOKS) >= 9
    numbers = [nb.stem[:2] for nb in NOTEBOOKS]
    assert numbers == [f"{i:02d}" for i in range(len(NOTEBOOKS))]  # 00, the room check, first


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=ids)
def test_committed_notebook_carries_no_outputs(nb):
    cells = nbformat.read(nb, as_version=4).cells
    dirty = [
        i for i, c in enumerate(cells, 1) if c.cell_type == "code" and (c.outputs or c.execution_count is not None)
    ]
    assert not dirty, f"{nb.name}: cells {dirty} carry outputs; clear them before committing"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=ids)
def test_parameters_cell_declares_core_parameters_with_types_and_help(nb):
    decl = params.declared(nb)
    for name in params.CORE:
        assert name in decl, f"{nb.name} lacks parameter {name}"
    for name, p in decl.items():
        assert p["type"] in params.CONVERTERS, f"{nb.name}: {name} has type {p['type']}"
        assert p["help"].strip(), f"{nb.name}: {name} has no # help comment"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=ids)
def test_solutions_are_marked_in_pairs(nb):
    cells = nbformat.read(nb, as_version=4).cells
    exercises = 0
    for i, c in enumerate(cells, 1):
        begins = len(re.findall(r"^\s*### BEGIN SOLUTION\s*$", c.source, re.M))
        ends = len(re.findall(r"^\s*### END SOLUTION\s*$", c.source, re.M))
        assert begins == ends, f"{nb.name} cell {i}: {begins} BEGIN vs {ends} END markers"
        exercises += begins
    assert exercises >= 3, f"{nb.name}: only {exercises} exercises"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=ids)
def test_jax_is_started_through_the_lab_before_use_and_the_record_saved_last(nb):
    code = [c.source for c in nbformat.read(nb, as_version=4).cells if c.cell_type == "code"]
    text = "\n".join(code)
    start = text.find(f'jax, lab = labkit.start("{nb.stem}", globals())')
    assert start != -1, f"{nb.name} never calls labkit.start with its own name"
    assert text.find("import jax.numpy") == -1 or text.find("import jax.numpy") > start
    assert "labkit.setup(" not in text and "Recorder(" not in text and "rec." not in text
    assert code[-1].strip() == "lab.save()"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=ids)
def test_every_exercise_is_checked_through_lab_check_and_no_check_cell_asserts_bare(nb):
    """After each answer, the cells up to the next heading include one whose metadata says it
    checks it, with lab.check*, which explains a slip and records the value; a bare assert would
    show a learner a bare traceback."""
    cells = nbformat.read(nb, as_version=4).cells
    for i, cell in enumerate(cells):
        if cell.cell_type != "code" or "### BEGIN SOLUTION" not in cell.source:
            continue
        section = []
        for later in cells[i + 1 :]:
            if later.cell_type == "markdown" and later.source.lstrip().startswith("#"):
                break
            if later.cell_type == "code" and handouts.role(later) == "check":
                section.append(later.source)
        assert section, f"{nb.name} cell {i + 1}: no cell after its exercise has the role 'check'"
        assert any(CALLS_LAB_CHECK.search(s) for s in section), f"{nb.name} cell {i + 1}: its exercise is not checked"
        bare = [s.splitlines()[0] for s in section if re.search(r"^\s*assert\b", s, re.M)]
        assert not bare, f"{nb.name}: check cells after cell {i + 1} use a bare assert: {bare}"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=ids)
def test_each_cell_says_its_role_in_its_metadata(nb):
    """Which cell holds an answer, checks one, or teaches with a check of its own is a property of
    the cell, as in nbgrader, so the handouts fold the checks and nothing else."""
    cells = nbformat.read(nb, as_version=4).cells
    answered = False
    for i, cell in enumerate(cells, 1):
        role = handouts.role(cell)
        assert role in (None, *handouts.ROLES), f"{nb.name} cell {i}: unknown role {role!r}"
        if cell.cell_type != "code":
            assert role is None, f"{nb.name} cell {i}: a markdown cell with the role {role!r}"
            continue
        holds_answer = handouts.BEGIN in cell.source
        assert holds_answer == (role == "exercise"), f"{nb.name} cell {i}: an answer goes with the role 'exercise'"
        if CALLS_LAB_CHECK.search(cell.source) and not holds_answer:
            assert role in ("check", "demo"), f"{nb.name} cell {i} calls lab.check; its role is {role!r}"
        if role == "check":
            assert answered, f"{nb.name} cell {i}: a check cell before any exercise"
        answered = answered or holds_answer


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=ids)
def test_a_check_cell_draws_nothing_from_the_notebooks_generator(nb):
    """A learner runs a check cell again and again: drawing from the notebook's shared generator
    there would shift every later random number away from the instructor's run."""
    cells = nbformat.read(nb, as_version=4).cells
    drawing = [i for i, c in enumerate(cells, 1) if handouts.role(c) == "check" and re.search(r"\brng\.", c.source)]
    assert drawing == [], f"{nb.name}: check cells {drawing} draw from rng; give them a generator of their own"
