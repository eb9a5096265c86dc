"""The learner's workspace: seeded once with the handouts, never overwritten, reset on request
with the learner's copy kept."""

from __future__ import annotations

import pytest

from labkit import UsageError, workspace


@pytest.fixture()
def handouts(tmp_path):
    folder = tmp_path / "handouts"
    folder.mkdir()
    for name in ("01_a.ipynb", "02_b.ipynb"):
        (folder / name).write_text(f"handout {name}\n")
    return folder


def test_first_start_seeds_every_handout(tmp_path, handouts):
    work = tmp_path / "work"
    assert [p.name for p in workspace.seed(work, handouts)] == ["01_a.ipynb", "02_b.ipynb"]
    assert (work / "01_a.ipynb").read_text() == "handout 01_a.ipynb\n"


def test_later_starts_never_overwrite_and_never_bring_back_what_the_learner_removed(tmp_path, handouts):
    work = tmp_path / "work"
    workspace.seed(work, handouts)
    (work / "01_a.ipynb").write_text("my answers\n")
    (work / "02_b.ipynb").unlink()
    (handouts / "03_c.ipynb").write_text("a new handout\n")
    assert [p.name for p in workspace.seed(work, handouts)] == ["03_c.ipynb"]
    assert (work / "01_a.ipynb").read_text() == "my answers\n" and not (work / "02_b.ipynb").exists()


def test_a_file_of_the_learners_with_a_handouts_name_is_kept(tmp_path, handouts):
    work = tmp_path / "work"
    work.mkdir()
    (work / "01_a.ipynb").write_text("mine from before\n")
    workspace.seed(work, handouts)
    assert (work / "01_a.ipynb").read_text() == "mine from before\n"


def test_reset_puts_the_handout_back_and_keeps_the_learners_copy(tmp_path, handouts):
    work = tmp_path / "work"
    workspace.seed(work, handouts)
    (work / "01_a.ipynb").write_text("my answers\n")
    put, kept = workspace.reset(work, handouts, "01")
    assert put.read_text() == "handout 01_a.ipynb\n"
    assert kept.read_text() == "my answers\n" and kept.name.startswith("01_a.ipynb.") and kept.suffix == ".bak"
    with pytest.raises(UsageError, match="--reset '99': no such handout; available: 01_a, 02_b"):
        workspace.reset(work, handouts, "99")


def test_nothing_is_written_through_a_symbolic_link_in_the_workspace(tmp_path, handouts):
    work, outside = tmp_path / "work", tmp_path / "outside"
    work.mkdir()
    (work / "01_a.ipynb").symlink_to(outside / "a.ipynb")  # dangling: copying would create it outside
    assert [p.name for p in workspace.seed(work, handouts)] == ["02_b.ipynb"]
    assert not outside.exists()
    with pytest.raises(UsageError, match="is a symbolic link"):
        workspace.reset(work, handouts, "01")
    assert not outside.exists()
    (work / workspace.SEEDED).unlink()
    (work / workspace.SEEDED).symlink_to(outside / "seeded")
    with pytest.raises(UsageError, match="is a symbolic link"):
        workspace.seed(work, handouts)
    assert not outside.exists()
