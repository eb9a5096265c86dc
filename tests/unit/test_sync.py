"""What the Dockerfile, compose and the README say of each backend is written from the registry
(`invoke sync`), and a new backend takes exactly the files the README says."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from labkit import paths, sync

# What a contributor writes by hand for a new backend; the README says the same.
HAND_WRITTEN = {"lab/labkit/backends.py", "pyproject.toml", "docker/locks/rocm.txt"}

ROCM = """        Backend(
            name="rocm",
            platform="rocm",
            jax_platforms=("rocm", "cpu"),
            jax_extra="jax[rocm]",
            pip_extra="rocm",
            description="AMD GPU (ROCm)",
            dtypes=("float32", "bfloat16", "float16"),
            device_globs=("/dev/kfd",),
            container_args=("--device=/dev/kfd", "--device=/dev/dri"),
            locks=("rocm",),
        ),
"""


def test_the_generated_files_are_in_step_with_the_registry():
    assert sync.stale() == [], "run invoke sync"


def test_each_notebook_has_a_text_twin_that_reads_back_as_the_same_cells():
    """lab/NN_topic.md holds every cell of lab/NN_topic.ipynb: its kind, its source and its role."""
    import jupytext
    import nbformat

    for notebook in paths.notebook_paths():
        cells = nbformat.read(notebook, as_version=4).cells
        twin = jupytext.reads(sync.twin(notebook).read_text(), fmt=sync.TWIN_FORMAT).cells
        assert [(c.cell_type, c.source, c.metadata.get("jaxlab")) for c in twin] == [
            (c.cell_type, c.source, c.metadata.get("jaxlab")) for c in cells
        ], notebook.name


def test_an_edited_notebook_leaves_its_twin_behind(tmp_path):
    import nbformat

    notebook = paths.notebook_paths()[1]
    edited = tmp_path / notebook.name
    nb = nbformat.read(notebook, as_version=4)
    nb.cells[0].source += "\nOne more line."
    nbformat.write(nb, edited)
    assert sync.twin_text(notebook) == sync.twin(notebook).read_text()
    assert sync.twin_text(edited) != sync.twin(notebook).read_text()


def test_an_edit_inside_a_generated_block_is_found_and_undone(tmp_path):
    made = tmp_path / "made.txt"
    block = sync.Generated(made, "# >>> begin", "# <<< end", lambda: "from the registry\n")
    made.write_text("kept above\n# >>> begin\nedited by hand\n# <<< end\nkept below\n")
    assert block.synced() != block.current()
    assert block.synced() == "kept above\n# >>> begin\nfrom the registry\n# <<< end\nkept below\n"


def test_a_file_without_its_markers_is_one_line():
    block = sync.Generated(paths.ROOT / "pyproject.toml", "# >>> nowhere", "# <<< nowhere", lambda: "")
    with pytest.raises(sync.UsageError, match="must each appear once"):
        block.synced()


def test_a_container_flag_without_a_compose_form_stops_sync(monkeypatch):
    from dataclasses import replace

    from labkit import backends

    odd = replace(backends.BACKENDS["cpu"], name="odd", container_args=("--cap-add=SYS_PTRACE",))
    monkeypatch.setitem(backends.BACKENDS, "odd", odd)
    with pytest.raises(sync.LabError, match="--cap-add=SYS_PTRACE.*has no compose form"):
        sync.compose_services()


# The lock `invoke lock --name rocm` would write, but with the CPU's packages: the index is not asked.
WRITE_LOCK = """
from labkit import locks
cutoff = locks.CUTOFF_LINE.format(cutoff=locks.recorded_cutoff())
body = (locks.LOCKS / "cpu.txt").read_text().split(cutoff)[1]
head = locks.HEADER + locks.PINS_LINE.format(digest=locks.pins_digest("rocm"), extras="rocm")
(locks.LOCKS / "rocm.txt").write_text(head + cutoff + body)
"""


def git(tree: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(tree), *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.slow
def test_a_made_up_backend_takes_only_its_entry_its_extra_and_its_lock(tmp_path):
    """A copy of the project gains `rocm` as a contributor would add it: the registry entry, the
    extra, the lock (written here as `invoke lock --name rocm` would, without the index). Then
    `invoke sync`, and the tests that hold every copy of the registry's facts to it pass."""
    tree = tmp_path / "project"
    files = git(paths.ROOT, "ls-files").split() + [
        str(p.relative_to(paths.ROOT)) for p in (paths.ROOT / "docker" / "locks").glob("*.txt")
    ]
    for rel in files:
        if (paths.ROOT / rel).is_file():
            (tree / rel).parent.mkdir(parents=True, exist_ok=True)
            (tree / rel).write_bytes((paths.ROOT / rel).read_bytes())
    git(tree, "init", "-q")
    git(tree, "add", "-A")
    git(tree, "-c", "user.name=lab", "-c", "user.email=lab@localhost", "commit", "-qm", "before")

    registry = tree / "lab" / "labkit" / "backends.py"
    text = registry.read_text()
    registry.write_text(text.replace("    )\n}\n", ROCM + "    )\n}\n", 1))
    pyproject = tree / "pyproject.toml"
    pyproject.write_text(re.sub(r"(\ntpu = \[.*?\]\n)", r'\1rocm = ["jax==0.10.2"]\n', pyproject.read_text()))
    env = dict(os.environ, PYTHONPATH=str(tree / "lab"), JAXLAB_ROOT=str(tree))
    lock = subprocess.run([sys.executable, "-c", WRITE_LOCK], cwd=tree, env=env, capture_output=True, text=True)
    assert lock.returncode == 0, lock.stderr
    assert {line[3:] for line in git(tree, "status", "--porcelain", "-uall").splitlines()} == HAND_WRITTEN

    done = subprocess.run([sys.executable, "-m", "invoke", "sync"], cwd=tree, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    written = {line[3:] for line in git(tree, "status", "--porcelain", "-uall").splitlines()} - HAND_WRITTEN
    assert written == {str(g.path.relative_to(paths.ROOT)) for g in sync.GENERATED}
    assert "rocm" in (tree / "compose.yaml").read_text() and "env-rocm" in (tree / "docker/Dockerfile").read_text()

    suite = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-v",
            "-p",
            "no:cacheprovider",
            "-m",
            "not index",
            "tests/unit/test_docker_files.py",
            "tests/unit/test_registry.py",
            "tests/unit/test_locks.py",
            "tests/unit/test_sync.py",
            "-k",
            "not made_up",
        ],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert suite.returncode == 0, suite.stdout[-3000:] + suite.stderr[-2000:]
    assert "[rocm]" in suite.stdout  # the new backend's own cases ran
