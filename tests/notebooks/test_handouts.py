"""The learner notebooks (handouts): generated the same way every time, no answer leaks into them,
every exercise fails with its own message as handed out, and `lab.solution(N)` gets a learner
past any exercise to the end of the notebook."""

from __future__ import annotations

import re
import textwrap

import nbformat
import pytest
from nbclient import NotebookClient

from labkit import handouts, paths

pytestmark = pytest.mark.slow
NOTEBOOKS = paths.notebook_paths()


def test_regenerating_the_handouts_changes_nothing(tmp_path):
    first = {p.name: p.read_bytes() for p in handouts.write(tmp_path / "a")}
    again = {p.name: p.read_bytes() for p in handouts.write(tmp_path / "a")}
    assert first == again and sorted(first) == [nb.name for nb in NOTEBOOKS]
    assert {p.name: p.read_bytes() for p in handouts.write(tmp_path / "b")} == first


def answer_lines(nb) -> list[str]:
    """The lines of every answer that a handout must not show (signatures may stay)."""
    lines = []
    for cell in nb.cells:
        for region in re.findall(rf"{handouts.BEGIN}\n(.*?)\n\s*{handouts.END}", cell.source, re.S):
            for line in textwrap.dedent(region).splitlines():
                text = line.strip()
                if len(text) > 12 and not text.startswith(("def ", "@", "#", '"""')) and text not in ("return x",):
                    lines.append(text)
    return lines


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem[:2])
def test_no_answer_and_no_spoiler_is_left_in_a_handout(nb):
    instructor = nbformat.read(nb, as_version=4)
    handout = handouts.learner_copy(nb)
    code = "\n".join(c.source for c in handout.cells if c.cell_type == "code")
    leaks = [line for line in answer_lines(instructor) if line in code]
    assert leaks == [], f"{nb.stem}: answer lines left in the handout: {leaks[:3]}"
    assert handouts.BEGIN not in code and handouts.HIDDEN[0] not in code
    assert all(not c.get("outputs") for c in handout.cells if c.cell_type == "code")
    checks = [c for c in handout.cells if c.cell_type == "code" and handouts.CHECK.search(c.source)
              and "Exercise " not in c.source]
    assert checks and all(c.metadata.get("jupyter", {}).get("source_hidden") for c in checks), \
        f"{nb.stem}: a check cell shows its expected values to the learner"
    numbers = [e.number for e in handouts.exercises(instructor)]
    for exercise in handouts.exercises(instructor):
        assert not exercise.title.startswith("exercise "), f"{nb.stem}: exercise {exercise.number} has no heading"
        assert f"Exercise {exercise.number} ({exercise.title})" in code
    assert numbers == list(range(1, len(numbers) + 1)) and numbers


def section_ends(nb, exercise_cells: list[int]) -> list[int]:
    """For each exercise's cell, where its section ends: the next markdown heading after it."""
    ends = []
    for i in exercise_cells:
        j = i + 1
        while j < len(nb.cells) and not (nb.cells[j].cell_type == "markdown" and nb.cells[j].source.startswith("#")):
            j += 1
        ends.append(j)
    return ends


def errors_of(cell) -> list[str]:
    return [f"{o.get('ename')}: {o.get('evalue')}" for o in cell.get("outputs", []) if o.get("output_type") == "error"]


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem[:2])
def test_each_exercise_fails_with_its_message_and_its_solution_lets_the_learner_go_on(nb, tmp_path):
    """The handout as a learner meets it, with one addition: at the end of each exercise's section
    the learner gives up and runs ``lab.solution(N)``. Every exercise's first error is its own
    message, and after the last solution nothing fails."""
    instructor = nbformat.read(nb, as_version=4)
    found = handouts.exercises(instructor)
    handout = handouts.learner_copy(nb)
    ends = section_ends(handout, [e.cells[0] for e in found])
    for exercise, end in sorted(zip(found, ends, strict=True), key=lambda pair: -pair[1]):
        marker = nbformat.v4.new_code_cell(f"lab.solution({exercise.number})")
        marker.metadata["solution_of"] = exercise.number
        handout.cells.insert(end, marker)
    params = next(i for i, c in enumerate(handout.cells) if "parameters" in c.metadata.get("tags", []))
    handout.cells.insert(params + 1, nbformat.v4.new_code_cell('smoke = True\nbackend = "cpu"\nresults_dir = ""'))
    NotebookClient(handout, timeout=600, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()

    section, first_error, late = 0, {}, []
    for cell in handout.cells:
        if cell.cell_type != "code":
            continue
        number = cell.metadata.get("solution_of")
        if number:
            assert not errors_of(cell), f"lab.solution({number}) failed: {errors_of(cell)}"
            section = number
            continue
        for error in errors_of(cell):
            first_error.setdefault(section + 1, error)
        if handouts.CHECK.search(cell.source) and errors_of(cell):  # brief: the cell's code stays folded
            shown = "".join(line for o in cell.outputs if o.get("output_type") == "error" for line in o["traceback"])
            assert "lab.check" not in shown and len(shown.splitlines()) <= 3, shown
            if section == len(found):
                late.append(error)
    for exercise in found:
        error = first_error.get(exercise.number, "no error at all")
        assert f"Exercise {exercise.number} ({exercise.title})" in error, (exercise.number, error)
    assert late == [], f"after every solution was loaded, cells still failed: {late[:2]}"
