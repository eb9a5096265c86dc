"""The runner: failures are reported with their cell, other notebooks' outputs are kept, and a
timeout or Ctrl-C leaves neither a kernel nor a half-written output behind."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from helpers import FIXTURES

from labkit import outdir, paths, plan, runner

pytestmark = pytest.mark.slow


def processes_under(folder: Path) -> list[psutil.Process]:
    """Live processes working in ``folder``: the kernels the runner started for it."""
    found = []
    for proc in psutil.process_iter(["cwd"]):
        cwd = proc.info.get("cwd") or ""
        if cwd.startswith(str(folder)):
            found.append(proc)
    return found


def test_broken_notebook_is_reported_with_its_cell_and_others_are_kept(tmp_path):
    out = tmp_path / "out"
    lab = runner.run_lab(
        "cpu",
        [str(FIXTURES / "01_ok.ipynb"), str(FIXTURES / "02_broken.ipynb")],
        {"seed": "2"},
        out=out,
        checks=False,
        show_progress=False,
    )
    by_name = {o.name: o for o in lab.notebooks}
    assert not lab.ok
    assert by_name["01_ok"].status == "passed"
    broken = by_name["02_broken"]
    assert broken.status == "failed" and broken.cell == 5
    assert "raise ValueError" in broken.cell_source and "deliberately broken" in broken.error
    # The passing notebook's executed copy and results survive the other's failure.
    assert (out / "notebooks" / "01_ok.ipynb").is_file() and (out / "notebooks" / "02_broken.ipynb").is_file()
    recorded = json.loads((out / "results" / "01_ok.json").read_text())
    assert recorded["values"]["x"]["data"] == [float(i * 3) for i in range(8)]  # seed=2 reached the kernel
    merged = json.loads((out / "results.json").read_text())
    assert set(merged["notebooks"]) == {"01_ok"}
    assert merged["run"]["ok"] is False and merged["run"]["params"] == {"seed": "2"}
    summary = (out / "summary.md").read_text()
    assert "FAILED" in summary and "cell 5" in summary and "deliberately broken" in summary
    assert not list(tmp_path.glob(".out.partial-*"))


def test_timeout_stops_the_kernel(tmp_path):
    out = tmp_path / "out"
    lab = runner.run_lab(
        "cpu", [str(FIXTURES / "03_sleepy.ipynb")], {}, out=out, checks=False, timeout=8, show_progress=False
    )
    assert lab.notebooks[0].status == "timeout"
    assert "8 s" in lab.notebooks[0].error
    time.sleep(0.5)
    assert processes_under(tmp_path) == []


def test_a_run_replaces_an_earlier_run_and_cleans_what_a_crashed_one_left(tmp_path):
    out = tmp_path / "out"
    first = runner.run_lab("cpu", [str(FIXTURES / "01_ok.ipynb")], {}, out=out, checks=False, show_progress=False)
    assert first.ok and outdir.is_run(out)
    crashed = tmp_path / ".out.partial-999999"  # what a run killed with SIGKILL leaves
    crashed.mkdir()
    (crashed / outdir.MARKER).write_text("{}\n")
    not_ours = tmp_path / ".out.partial-nothing"
    not_ours.mkdir()
    second = runner.run_lab(
        "cpu", [str(FIXTURES / "01_ok.ipynb")], {"seed": "5"}, out=out, checks=False, show_progress=False
    )
    assert second.ok
    assert json.loads((out / "results.json").read_text())["run"]["params"] == {"seed": "5"}
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.partial-nothing", "out"]


def test_a_second_run_into_the_same_out_is_refused_while_the_first_runs(tmp_path):
    out = tmp_path / "out"
    cmd = [
        sys.executable,
        "-m",
        "invoke",
        "lab",
        "--runtime",
        "local",
        "--no-checks",
        "--out",
        str(out),
        "-n",
        str(FIXTURES / "03_sleepy.ipynb"),
    ]
    first = subprocess.Popen(cmd, cwd=paths.ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not list(tmp_path.glob(".out.partial-*")):
            time.sleep(0.2)
        second = subprocess.run(
            cmd[:-2] + ["-n", str(FIXTURES / "01_ok.ipynb")],
            cwd=paths.ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert second.returncode == 2, second.stderr
        assert f"another lab run (pid {first.pid}) is writing {out}" in second.stderr
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=60)
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_usage_errors_write_nothing(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(runner.UsageError):
        runner.run_lab("cpu", [str(FIXTURES / "01_ok.ipynb")], {"seed": "x"}, out=out, show_progress=False)
    assert not tmp_path.joinpath("out").exists() and list(tmp_path.iterdir()) == []


def test_select_notebooks_by_number_name_or_topic():
    notebooks = paths.notebook_paths()
    first = notebooks[0]
    for name in (first.stem[:2], first.stem, first.stem[3:]):
        assert plan.select_notebooks([name]) == [first]
    with pytest.raises(runner.UsageError, match="unknown notebook 'nope'; available: " + first.stem):
        plan.select_notebooks(["nope"])
