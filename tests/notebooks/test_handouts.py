"""The learner notebooks (handouts): generated the same way every time, no answer leaks into them,
every exercise fails with its own message as handed out, and `lab.solution(N)` gets a learner
past any exercise to the end of the notebook."""

from __future__ import annotations

import json
import re
import textwrap

import nbformat
import pytest
from nbclient import NotebookClient

from labkit import check_cells, handouts, paths
from labkit.compare.model import Run
from labkit.compare.numerics import compare_runs

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
    folded = {i for i, c in enumerate(handout.cells) if c.metadata.get("jupyter", {}).get("source_hidden")}
    checks = {i for i, c in enumerate(handout.cells) if handouts.role(c) == "check"}
    assert checks and folded == checks, (
        f"{nb.stem}: cells {sorted(folded ^ checks)} are folded but are not "
        f"checks, or are checks that show their expected values"
    )
    for i in checks:  # each check cell names its exercise, for the kernel to point back to it
        assert check_cells.CHECKS_EXERCISE.match(handout.cells[i].source), handout.cells[i].source[:80]
    numbers = [e.number for e in handouts.exercises(instructor)]
    for exercise in handouts.exercises(instructor):
        assert not exercise.title.startswith("exercise "), f"{nb.stem}: exercise {exercise.number} has no heading"
        assert f"Exercise {exercise.number} ({exercise.title})" in code
    assert numbers == list(range(1, len(numbers) + 1)) and numbers


def section_ends(nb, exercise_cells: list[int]) -> list[int]:
    """For each exercise's cell, where its section ends: the next markdown heading after it, or the
    notebook's last cell, lab.save(), which must come after everything the learner loads."""
    ends = []
    for i in exercise_cells:
        j = i + 1
        last = len(nb.cells) - 1
        while j < last and not (nb.cells[j].cell_type == "markdown" and nb.cells[j].source.startswith("#")):
            j += 1
        ends.append(j)
    return ends


def errors_of(cell) -> list[str]:
    return [f"{o.get('ename')}: {o.get('evalue')}" for o in cell.get("outputs", []) if o.get("output_type") == "error"]


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem[:2])
def test_each_exercise_fails_with_its_message_and_its_solution_lets_the_learner_go_on(nb, tmp_path, backend, smoke_run):
    """The handout as a learner meets it, with one addition: at the end of each exercise's section
    the learner gives up and runs ``lab.solution(N)``. Every exercise's first error is its own
    message, every check that cannot run yet names its exercise, after the last solution nothing
    fails, and the notebook ends in the state of the instructor's run: every value it records
    agrees with the lab's run of the instructor's notebook (a solution that ran a cell's random
    draws again would shift every later one)."""
    instructor = nbformat.read(nb, as_version=4)
    found = handouts.exercises(instructor)
    handout = handouts.learner_copy(nb)
    ends = section_ends(handout, [e.cells[0] for e in found])
    for exercise, end in sorted(zip(found, ends, strict=True), key=lambda pair: -pair[1]):
        marker = nbformat.v4.new_code_cell(f"lab.solution({exercise.number})")
        marker.metadata["solution_of"] = exercise.number
        # ... and then runs the section's checks (and demos that use the answer) again, as a learner
        # does after loading an answer.
        again = [
            nbformat.v4.new_code_cell(c.source, metadata={**c.metadata, "checked_again": True})
            for c in handout.cells[exercise.cells[0] : end]
            if handouts.role(c) in ("check", "demo")
        ]
        handout.cells[end:end] = [marker, *again]
    params = next(i for i, c in enumerate(handout.cells) if "parameters" in c.metadata.get("tags", []))
    results = tmp_path / "results"
    handout.cells.insert(
        params + 1, nbformat.v4.new_code_cell(f"smoke = True\nbackend = {backend!r}\nresults_dir = {str(results)!r}")
    )
    NotebookClient(
        handout, timeout=600, kernel_name="python3", allow_errors=True, resources={"metadata": {"path": str(tmp_path)}}
    ).execute()

    section, first_error, late = 0, {}, []
    for cell in handout.cells:
        if cell.cell_type != "code":
            continue
        number = cell.metadata.get("solution_of")
        if cell.metadata.get("checked_again"):
            assert not errors_of(cell), f"after lab.solution({section}), its check failed: {errors_of(cell)}"
            continue
        if number:
            assert not errors_of(cell), f"lab.solution({number}) failed: {errors_of(cell)}"
            section = number
            continue
        for error in errors_of(cell):
            first_error.setdefault(section + 1, error)
        if handouts.role(cell) == "check" and errors_of(cell):  # brief: the cell's code stays folded
            shown = "".join(line for o in cell.outputs if o.get("output_type") == "error" for line in o["traceback"])
            assert "lab.check" not in shown and len(shown.splitlines()) <= 3, shown
            assert "lab.solution(N)" not in shown and ("Exercise " in shown or "exercise " in shown), shown
            if section == len(found):
                late.append(error)
    for exercise in found:
        error = first_error.get(exercise.number, "no error at all")
        assert f"Exercise {exercise.number} ({exercise.title})" in error, (exercise.number, error)
    assert late == [], f"after every solution was loaded, cells still failed: {late[:2]}"
    solutions = [c for c in handout.cells if c.metadata.get("solution_of")]
    for cell in solutions:  # the answer is shown once, on purpose, where the learner asked for it
        shown = "".join(o.get("text", "") for o in cell.outputs if o.get("output_type") == "stream")
        assert shown.startswith(f"Exercise {cell.metadata['solution_of']} ("), shown[:200]
    instructor_run = Run(
        None, "instructor", {"run": {"backend": backend}, "notebooks": {nb.stem: smoke_run[1]["notebooks"][nb.stem]}}
    )
    learner_run = Run(
        None,
        "handout",
        {"run": {"backend": backend}, "notebooks": {nb.stem: json.loads((results / f"{nb.stem}.json").read_text())}},
    )
    differ = [(row.key, row.why) for row in compare_runs(instructor_run, learner_run) if not row.ok]
    assert differ == [], f"{nb.stem}: after lab.solution the notebook's state is not the instructor's: {differ[:3]}"
