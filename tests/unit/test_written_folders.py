"""`invoke handouts --out` and `invoke compare --out` write only into a new or empty folder, or one
they wrote before: never over the instructor's notebooks, a learner's edited copy, someone's own
report, the checkout or a home folder, never through a symbolic link; a refusal is one line,
exit 2, and nothing is written."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from helpers import invoke, read_only_mount

from labkit import handouts, paths


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def refused(*args: str, task: str = "handouts", **kwargs) -> str:
    done = invoke(task, *args, **kwargs)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    return lines[0]


def test_the_instructor_notebooks_are_never_overwritten():
    before = snapshot(paths.NOTEBOOKS)
    assert "is or contains the lab's notebooks" in refused("--out", str(paths.NOTEBOOKS))
    assert snapshot(paths.NOTEBOOKS) == before


@pytest.mark.parametrize("where", [lambda: paths.ROOT, lambda: Path.home()], ids=["checkout", "home"])
def test_the_checkout_and_the_home_folder_are_refused(where):
    before = sorted(p.name for p in where().iterdir())
    refused("--out", str(where()))
    assert sorted(p.name for p in where().iterdir()) == before


def test_a_learners_folder_with_an_edited_notebook_is_refused(tmp_path):
    work = tmp_path / "work"
    handouts.write(tmp_path / "fresh")
    work.mkdir()
    edited = work / paths.notebook_paths()[1].name
    edited.write_bytes((tmp_path / "fresh" / edited.name).read_bytes() + b" ")  # a learner's edit
    before = snapshot(work)
    line = refused("--out", str(work))
    assert f"holds files that invoke handouts did not write (it has no {handouts.MARKER})" in line
    assert snapshot(work) == before


def test_a_notebook_that_is_a_symbolic_link_is_not_written_through(tmp_path):
    out, elsewhere = tmp_path / "handouts", tmp_path / "elsewhere.ipynb"
    handouts.write(out)
    elsewhere.write_text("mine")
    target = out / paths.notebook_paths()[0].name
    target.unlink()
    target.symlink_to(elsewhere)
    assert "is a symbolic link" in refused("--out", str(out))
    assert elsewhere.read_text() == "mine" and target.is_symlink()


def test_a_folder_that_is_a_symbolic_link_is_refused(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert "is a symbolic link" in refused("--out", str(tmp_path / "link"))
    assert list((tmp_path / "real").iterdir()) == []


@pytest.mark.parametrize(
    "make",
    [
        lambda tmp: (tmp / "notes.txt").write_text("x") and tmp / "notes.txt",
        lambda tmp: Path("/proc/jaxlab-handouts"),
        lambda tmp: read_only_mount(tmp) / "handouts",
    ],
    ids=["a-file", "proc", "read-only"],
)
@pytest.mark.parametrize("task", ["handouts", "compare"])
def test_a_file_or_an_unwritable_place_is_one_line(tmp_path, make, task):
    target = make(tmp_path)
    try:
        refused(*([SMOKE, SMOKE] if task == "compare" else []), "--out", str(target), task=task)
    finally:
        if target.parent.name == "ro":
            subprocess.run(["umount", str(target.parent)], capture_output=True)
    if target.parent == tmp_path:
        assert target.read_text() == "x"


def test_a_folder_it_wrote_is_written_again_and_only_changed_files_are_replaced(tmp_path):
    out = tmp_path / "handouts"
    first = handouts.write(out)
    stamps = {p: p.stat().st_mtime_ns for p in first}
    os.utime(first[0], ns=(0, 0))
    assert handouts.write(out) == first
    assert first[0].stat().st_mtime_ns == 0 and {p: p.stat().st_mtime_ns for p in first[1:]} == {
        p: stamps[p] for p in first[1:]
    }


SMOKE = str(paths.reference("cpu", smoke=True))


def test_compare_never_replaces_someone_elses_report(tmp_path):
    mine = tmp_path / "notes"
    mine.mkdir()
    (mine / "report.md").write_text("my own report")
    (mine / "timings.png").write_bytes(b"my plot")
    line = refused(SMOKE, SMOKE, "--out", str(mine), task="compare")
    assert "holds files that invoke compare did not write" in line
    assert snapshot(mine) == {"report.md": b"my own report", "timings.png": b"my plot"}
    assert "is or contains the lab's notebooks" in refused(SMOKE, SMOKE, "--out", str(paths.NOTEBOOKS), task="compare")


def test_compare_writes_a_new_folder_and_then_that_folder_again(tmp_path):
    for _ in range(2):
        done = invoke("compare", SMOKE, SMOKE, "--out", str(tmp_path / "report"))
        assert done.returncode == 0, done.stderr
    assert {"report.md", "report.html"} <= set(snapshot(tmp_path / "report"))


@pytest.mark.parametrize("work", ["/etc", "/usr/local/work", "~/.ssh/work"], ids=["etc", "usr", "ssh"])
def test_a_workspace_in_a_system_folder_or_among_secrets_is_refused_before_any_engine(work):
    line = refused("--work", work, task="jupyter")
    assert "is in a system folder or among a home folder's secrets" in line


def as_user(tmp_path) -> dict:
    """The environment of a user whose home is a folder of the test's own (not root's /root)."""
    (tmp_path / "home").mkdir(exist_ok=True)
    return dict(os.environ, HOME=str(tmp_path / "home"))


@pytest.mark.parametrize("work", ["/var/lib/jaxlab-work", "/root/work", "/run/work", "/proc/work"])
def test_a_workspace_in_the_systems_other_folders_is_refused_even_anywhere(tmp_path, work):
    line = refused("--work", work, "--anywhere", task="jupyter", env=as_user(tmp_path))
    assert "is in a system folder" in line
    assert not Path(work).exists()


def test_a_workspace_outside_home_and_the_checkout_needs_anywhere(tmp_path):
    env, work = as_user(tmp_path), tmp_path / "shared" / "work"
    line = refused("--work", str(work), task="jupyter", env=env)
    assert "is outside your home folder and the checkout" in line and "--anywhere" in line
    # Said on purpose, or in the home folder, the folder passes; the next check (a made-up
    # handout to reset) then stops the command before any engine is asked.
    for args in (
        ["--work", str(work), "--anywhere"],
        ["--work", str(tmp_path / "home" / "work")],
        ["--work", "/var/tmp/jaxlab-test-work", "--anywhere"],
    ):
        assert "--reset 'nosuch': no such handout" in refused(*args, "--reset", "nosuch", task="jupyter", env=env)
    assert not work.exists() and not (tmp_path / "home" / "work").exists()


def test_a_refused_reset_creates_no_workspace(tmp_path):
    assert "--reset 'nosuch': no such handout" in refused(
        "--work", str(tmp_path / "new"), "--reset", "nosuch", "--anywhere", task="jupyter"
    )
    assert not (tmp_path / "new").exists()


def test_a_workspace_with_a_colon_is_refused_not_mounted_as_something_else(tmp_path):
    assert "a colon in the path cannot be mounted" in refused(
        "--work", str(tmp_path / "a:b"), "--anywhere", task="jupyter"
    )
    assert not (tmp_path / "a:b").exists()


# Every command that writes into a folder the user names, and how to name lab/ to it. A task that
# gains a folder flag and is not here fails the first test; one here that writes without the
# guard fails the second.
SMOKE_PAIR = [SMOKE, SMOKE]
WRITERS = {
    "lab": ["--runtime", "local", "--out"],
    "bundle": ["--out"],
    "handouts": ["--out"],
    "compare": [*SMOKE_PAIR, "--out"],
    "jupyter": ["--work"],
    "hub": ["--learners", "3", "--out"],
    "pod": ["--tpu-name", "lab", "--zone", "z", "--accelerator-type", "v4-8", "--out"],
}
FOLDER_FLAGS = {"out", "work"}
# Every command that writes files of its own in a place of its own under the checkout (the file,
# relative to it, and how to ask for it). Each checks them before any work.
OWN_PLACE = {
    "reference": (["--name", "guarded"], "lab/labkit/references/guarded.json"),
    "lock": (["--cutoff", "2026-11-26"], "docker/locks/cpu.txt"),
    "bench": (["--what", "notebooks"], "out/bench/notebook_phase.json"),
    "sync": ([], "compose.yaml"),
}
# And the commands that write no file on this machine (build and shell leave it to the engine;
# clean-cache removes only what JAX wrote in the lab's cache: see test_compile_cache).
NO_FILES = {"build", "clean-cache", "jobset", "lint", "notebooks", "shell", "test"}


def test_every_command_is_listed_by_what_it_writes():
    """A new command fails here until it is put in one of the lists, and so under their tests."""
    import inspect

    import tasks

    writers = {
        name for name, task in tasks.ns.tasks.items() if FOLDER_FLAGS & set(inspect.signature(task.body).parameters)
    }
    assert writers == set(WRITERS)
    assert set(tasks.ns.tasks) == set(WRITERS) | set(OWN_PLACE) | NO_FILES
    assert not (set(WRITERS) | NO_FILES) & set(OWN_PLACE) and not set(WRITERS) & NO_FILES


@pytest.mark.parametrize("task", sorted(OWN_PLACE))
def test_a_command_refuses_to_write_its_own_file_through_a_link_before_any_work(tmp_path, task):
    """In a lab root of the test's own (JAXLAB_ROOT): the file the command would write is a link
    to someone's file. The refusal comes at once (no lab run, no resolver), and the file behind
    the link keeps its bytes."""
    args, file = OWN_PLACE[task]
    root, elsewhere = tmp_path / "root", tmp_path / "mine.json"
    elsewhere.write_text("mine")
    (root / file).parent.mkdir(parents=True)
    (root / file).symlink_to(elsewhere)
    line = refused(*args, task=task, env=dict(os.environ, JAXLAB_ROOT=str(root)), timeout=60)
    assert f"would replace {root / file}, which is a symbolic link or not a file" in line
    assert elsewhere.read_text() == "mine" and (root / file).is_symlink()


@pytest.mark.parametrize("name", ["../../elsewhere", "{tmp}/elsewhere", ".hidden"])
def test_a_reference_name_is_a_file_name_not_a_path(tmp_path, name):
    line = refused("--name", name.format(tmp=tmp_path), task="reference", timeout=60)
    assert "give a file name" in line


@pytest.mark.parametrize("task", sorted(WRITERS))
def test_no_writer_takes_the_labs_notebooks_for_its_folder(task):
    before = snapshot(paths.NOTEBOOKS)
    line = refused(*WRITERS[task], str(paths.NOTEBOOKS), task=task)
    assert "is or contains the lab's notebooks" in line
    assert snapshot(paths.NOTEBOOKS) == before


@pytest.mark.parametrize("task", sorted(t for t, args in WRITERS.items() if args[-1] == "--out"))
def test_no_writer_follows_a_folder_that_is_a_symbolic_link(tmp_path, task):
    """The same rule for every --out: the folder named is never a link, even to a folder the
    command would otherwise take (here an empty one)."""
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    line = refused(*WRITERS[task], str(tmp_path / "link"), task=task)
    assert f"--out {tmp_path / 'link'} is a symbolic link" in line
    assert list((tmp_path / "real").iterdir()) == []
