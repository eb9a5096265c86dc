"""labkit.progress: each check a learner runs is noted in their work folder (never their code or
values), and the notes of a class become one view of who is where."""

from __future__ import annotations

import json

import numpy as np
import pytest

from labkit import progress
from labkit.notebook import CheckFailed, Lab

NOTEBOOK = "01_jax_vs_numpy"


def learner_lab(results_dir: str = "") -> Lab:
    lab = Lab(NOTEBOOK, "cpu", {}, results_dir, {})
    lab.exercise = 2  # as a handout's check cell tells the kernel
    return lab


def test_a_learners_checks_are_noted_in_their_work_folder_without_their_values(tmp_path, monkeypatch):
    monkeypatch.setenv(progress.WORK_VARIABLE, str(tmp_path))
    lab = learner_lab()
    lab.check("standardized", np.array([0.25, -1.5]), np.array([0.25, -1.5]))
    with pytest.raises(CheckFailed):
        lab.check("standardized", np.array([0.375, 7.0]), np.array([0.25, -1.5]))
    lab.check_equal("shape", [2], [2])
    notes = progress.read(tmp_path)
    assert [(n["notebook"], n["exercise"], n["check"], n["passed"]) for n in notes] == [
        (NOTEBOOK, 2, "standardized", True),
        (NOTEBOOK, 2, "standardized", False),
        (NOTEBOOK, 2, "shape", True),
    ]
    text = (tmp_path / progress.NOTES).read_text()
    assert "0.375" not in text and "7.0" not in text and "0.25" not in text


def test_the_labs_own_runs_and_sessions_outside_a_work_folder_note_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv(progress.WORK_VARIABLE, str(tmp_path / "work"))
    learner_lab(results_dir=str(tmp_path / "results")).check("x", np.ones(2), np.ones(2))
    monkeypatch.delenv(progress.WORK_VARIABLE)
    learner_lab().check("x", np.ones(2), np.ones(2))
    assert not (tmp_path / "work").exists()


def test_notes_are_never_written_through_a_symbolic_link(tmp_path, monkeypatch):
    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere.txt"
    (work / ".jaxlab").mkdir(parents=True)
    elsewhere.write_text("theirs\n")
    (work / progress.NOTES).symlink_to(elsewhere)
    monkeypatch.setenv(progress.WORK_VARIABLE, str(work))
    learner_lab().check("x", np.ones(2), np.ones(2))  # the check itself still passes
    assert elsewhere.read_text() == "theirs\n"


def entry(exercise, check, passed, at="2026-12-06T10:00:00+00:00", notebook=NOTEBOOK) -> dict:
    return {"notebook": notebook, "exercise": exercise, "check": check, "passed": passed, "at": at}


def test_the_class_view_shows_each_learner_by_exercise_and_where_most_are_stuck():
    view = progress.class_view(
        {
            "ada": [entry(1, "a", True), entry(2, "b", False), entry(2, "c", True)],
            "bob": [entry(1, "a", False), entry(1, "a", True), entry(2, "b", False, at="2026-12-06T10:05:00+00:00")],
            "cy": [entry(1, "a", False), entry(None, "demo", False)],
        }
    )
    assert view.exercises == [(NOTEBOOK, 1), (NOTEBOOK, 2)]
    assert view.cells["ada"] == {(NOTEBOOK, 1): "passed", (NOTEBOOK, 2): "failing"}
    assert view.cells["bob"] == {(NOTEBOOK, 1): "passed", (NOTEBOOK, 2): "failing"}  # a later pass counts
    assert view.cells["cy"] == {(NOTEBOOK, 1): "failing"}  # a demo's check is no exercise
    assert view.stuck() == ((NOTEBOOK, 2), 2)
    assert view.last_seen["bob"] == "2026-12-06T10:05:00+00:00"


def test_lines_that_are_not_notes_are_skipped(tmp_path):
    (tmp_path / ".jaxlab").mkdir()
    (tmp_path / progress.NOTES).write_text("not json\n" + json.dumps(entry(1, "a", True)) + "\n[1, 2]\n")
    assert [n["check"] for n in progress.read(tmp_path)] == ["a"]


def test_the_instructors_page_shows_each_learner_by_exercise_and_where_most_are_stuck(tmp_path):
    from labkit.hub import class_page

    for learner, entries in {
        "ada": [entry(1, "a", True), entry(2, "b", False)],
        "bob": [entry(1, "a", True), entry(2, "b", False)],
    }.items():
        (tmp_path / learner / ".jaxlab").mkdir(parents=True)
        (tmp_path / learner / progress.NOTES).write_text("".join(json.dumps(e) + "\n" for e in entries))
    page = class_page.page(tmp_path, ["ada", "bob", "cy"])
    assert "Most stuck: 01_jax_vs_numpy, exercise 2 (2 of 3 learners failing it)" in page
    rows = {
        line.split("</th>")[0].removeprefix("<tr><th>"): line
        for line in page.splitlines()
        if line.startswith("<tr><th>")
    }
    assert rows["ada"].count('class="passed"') == 1 and rows["ada"].count('class="failing"') == 1
    assert 'class="passed"' not in rows["cy"] and 'class="failing"' not in rows["cy"]  # logged in, no check yet
    assert "http-equiv='refresh'" in page
