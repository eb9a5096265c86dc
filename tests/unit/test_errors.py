"""Every way a user can get it wrong ends in one line on stderr that says what was wrong and what
is allowed, a non-zero exit, no traceback, and nothing of theirs touched."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from helpers import FIXTURES, invoke, one_line_error, read_only_mount

from labkit import BACKENDS, outdir, paths, results

LAB = ["lab", "--runtime", "local", "--no-checks"]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# --out: a run only ever replaces a run -----------------------------------------------------------


def user_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "mywork"
    folder.mkdir()
    (folder / "thesis.txt").write_text("my own work\n")
    return folder


def parent_of_runs(tmp_path: Path) -> Path:
    for name in ("cpu", "cuda"):
        (tmp_path / "out" / name).mkdir(parents=True)
        (tmp_path / "out" / name / outdir.MARKER).write_text("{}\n")
    return tmp_path / "out"


def a_file(tmp_path: Path) -> Path:
    (tmp_path / "notes.txt").write_text("notes\n")
    return tmp_path / "notes.txt"


@pytest.mark.parametrize(
    "target,expected",
    [
        (user_folder, "holds files that invoke lab did not write"),
        (lambda _: paths.ROOT, "is or contains the lab's checkout"),
        (lambda _: paths.NOTEBOOKS, "is or contains the lab's notebooks"),
        (lambda _: paths.ROOT.parent, "is or contains the lab's checkout"),
        (lambda _: Path("/"), "is or contains"),
        (a_file, "is a file, not a folder"),
        (parent_of_runs, "holds other runs (cpu, cuda)"),
    ],
    ids=["user-folder", "checkout", "lab", "above-checkout", "root", "file", "parent-of-runs"],
)
def test_out_that_is_not_a_run_is_refused_and_left_as_it_was(tmp_path, target, expected):
    out = target(tmp_path)
    watched = out if out.is_dir() and out in (tmp_path, *tmp_path.rglob("*")) else tmp_path
    before = snapshot(watched) if watched != Path("/") else None
    checkout = snapshot(paths.NOTEBOOKS)
    line = one_line_error(invoke(*LAB, "-n", str(FIXTURES / "01_ok.ipynb"), "--out", str(out)))
    assert expected in line
    assert snapshot(watched) == before and snapshot(paths.NOTEBOOKS) == checkout
    assert not [p for p in out.parent.glob(f".{out.name}.*")]


@pytest.mark.parametrize("where", ["proc", "read-only"])
def test_out_where_nothing_can_be_written_is_one_line(tmp_path, where):
    if where == "proc":
        out = Path("/proc/jaxlab/cpu")
    else:
        out = read_only_mount(tmp_path) / "cpu"
    try:
        line = one_line_error(invoke(*LAB, "-n", str(FIXTURES / "01_ok.ipynb"), "--out", str(out)))
    finally:
        if where != "proc":
            subprocess.run(["umount", str(out.parent)], capture_output=True)
    # /proc is refused as a system folder before anything is tried; a read-only mount on trying.
    assert ("is in a system folder" if where == "proc" else "cannot write there") in line


# flags, parameters and notebooks -----------------------------------------------------------------


def corrupt_notebook(tmp_path: Path) -> str:
    (tmp_path / "broken.ipynb").write_text('{"cells": [')
    return str(tmp_path / "broken.ipynb")


def results_without_a_mean(tmp_path: Path) -> str:
    """The CPU reference with one summarised value's mean taken out."""
    data = json.loads(paths.reference("cpu").read_text())
    value = next(v for nb in data["notebooks"].values() for v in nb["values"].values() if "summary" in v)
    del value["summary"]["mean"]
    (tmp_path / "edited.json").write_text(json.dumps(data))
    return str(tmp_path / "edited.json")


def copy_of_01(tmp_path: Path) -> str:
    (tmp_path / "copy").mkdir()
    source = next(p for p in paths.notebook_paths() if p.stem.startswith("01_"))
    (tmp_path / "copy" / source.name).write_bytes(source.read_bytes())
    return str(tmp_path / "copy" / source.name)


@pytest.mark.parametrize(
    "args,expected",
    [
        (["lab", "--backend", "gpu"], f"unknown backend 'gpu'; valid backends: {', '.join(BACKENDS)}"),
        (["lab", "-n", "99_nothing"], "unknown notebook '99_nothing'; available: "),
        (["lab", "-p", "seed"], "malformed parameter 'seed'"),
        (["lab", "-p", "no_such_parameter=1"], "unknown parameter 'no_such_parameter'"),
        (["lab", "-p", "seed=one"], "parameter 'seed' expects an int, got 'one'"),
        (["lab", "-p", "backend=tpu"], "set by the lab itself"),
        (["lab", "--runtime", "cloud"], "unknown runtime 'cloud'; valid runtimes: auto, docker, local"),
        (["lab", "--jobs", "abc"], "--jobs 'abc': give a whole number, 1 or more"),
        (["lab", "--jobs", "-1"], "--jobs '-1': give a whole number, 1 or more"),
        (["lab", "--cell-timeout", "soon"], "--cell-timeout 'soon': give a number"),
        (["lab", "--cell-timeout", "inf"], "--cell-timeout 'inf': give a number"),
        (["jupyter", "--port", "abc"], "--port 'abc': give a whole number"),
        (["jupyter", "--port", "70000"], "--port 70000: give a port number, 1 to 65535"),
        (["bench", "--jobs", "x"], "--jobs 'x': give a whole number"),
        (LAB + ["-n", "08", "-p", "learning_rate=nan"], "parameter 'learning_rate' expects a finite float, got 'nan'"),
        (LAB + ["-p", "results_dir=/tmp/x"], "results go to <out>/results; choose with --out"),
        (LAB + ["-n", corrupt_notebook], "broken.ipynb: not a readable notebook"),
        (LAB + ["-n", "01", "-n", copy_of_01], "two notebooks named '01_jax_vs_numpy'"),
        (LAB + ["--against", "README.md"], "--against README.md: cannot be read as lab results"),
        (LAB + ["--against", results_without_a_mean], "has a summary without mean"),
        (["test", "--backend", "cpu; touch INJECTED"], "unknown backend 'cpu; touch INJECTED'"),
        (["test", "--pytest-args", "'unclosed"], "--pytest-args"),
        (["test", "--jobs", "0"], "--jobs '0': give a whole number, 1 or more"),
    ],
    ids=[
        "backend",
        "notebook",
        "malformed",
        "unknown-parameter",
        "ill-typed",
        "runner-set",
        "runtime",
        "jobs-abc",
        "jobs-negative",
        "cell-timeout",
        "cell-timeout-inf",
        "port-abc",
        "port-range",
        "bench-jobs",
        "nan",
        "results-dir",
        "corrupt-notebook",
        "duplicate-stem",
        "against-readme",
        "against-no-mean",
        "test-backend-injection",
        "pytest-args",
        "test-jobs",
    ],
)
def test_bad_flags_and_notebooks_are_one_line(tmp_path, args, expected):
    args = [a(tmp_path) if callable(a) else a for a in args]
    if args[0] == "lab":
        args += ["--out", str(tmp_path / "out")]
    line = one_line_error(invoke(*args))
    assert expected in line
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "INJECTED").exists() and not (paths.ROOT / "INJECTED").exists()


# compare ------------------------------------------------------------------------------------------


def good_results() -> dict:
    record = {
        "notebook": "01_x",
        "params": {},
        "environment": {"platform": "cpu"},
        "values": {},
        "facts": {},
        "metrics": {},
        "timings": [],
    }
    return {"format": results.FORMAT, "run": {"backend": "cpu"}, "environment": {}, "notebooks": {"01_x": record}}


def spoiled(change) -> dict:
    data = good_results()
    change(data["notebooks"]["01_x"])
    return data


@pytest.mark.parametrize(
    "content,expected",
    [
        ("{not json", "cannot be read as lab results"),
        (json.dumps([1, 2]), "not a lab results file"),
        (json.dumps(spoiled(lambda r: r.update(values={"x": 3}))), "value 'x' lacks dtype, shape and data"),
        (json.dumps(spoiled(lambda r: r.update(timings={"gelu_jit": 0.1}))), "timings are not"),
        (json.dumps(spoiled(lambda r: r.update(metrics={"m": "fast"}))), "a metric is not a number"),
        (json.dumps(spoiled(lambda r: r.update(facts=[1]))), "facts is not an object"),
    ],
    ids=["not-json", "not-results", "value", "timings", "metric", "facts"],
)
def test_malformed_results_in_compare_are_one_line(tmp_path, content, expected):
    (tmp_path / "bad.json").write_text(content)
    line = one_line_error(
        invoke("compare", str(tmp_path / "bad.json"), str(tmp_path / "bad.json"), "--out", str(tmp_path / "report"))
    )
    assert expected in line


def test_compare_out_that_is_a_file_is_refused_and_kept(tmp_path):
    (tmp_path / "r.json").write_text(json.dumps(good_results()))
    (tmp_path / "report.txt").write_text("mine\n")
    line = one_line_error(
        invoke("compare", str(tmp_path / "r.json"), str(tmp_path / "r.json"), "--out", str(tmp_path / "report.txt"))
    )
    assert "is a file" in line and (tmp_path / "report.txt").read_text() == "mine\n"


def test_a_notebooks_own_json_in_results_dir_is_not_taken_for_a_record(tmp_path):
    rec = results.Recorder("01_x", tmp_path, {"backend": "cpu"})
    rec.fact("n", 1)
    rec.save()
    (tmp_path / "01_x_extra.json").write_text('{"my": "own data"}')
    (tmp_path / "notes.json").write_text("[1, 2, 3]")
    merged = results.merge(tmp_path, {"backend": "cpu"})
    assert list(merged["notebooks"]) == ["01_x"]
