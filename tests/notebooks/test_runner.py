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

from labkit import paths, runner

pytestmark = pytest.mark.slow


def processes_under(folder: Path) -> list[psutil.Process]:
    """Live processes working in ``folder``: the kernels the runner started for it."""
    found = []
    for proc in psutil.process_iter(["cwd"]):
        cwd = proc.info.get("cwd") or ""
        if cwd.startswith(str(folder)):
            found.append(proc)
    return found


def kernels_under(folder: Path) -> list[psutil.Process]:
    return [p for p in processes_under(folder) if "ipykernel" in " ".join(p.cmdline())]


def test_broken_notebook_is_reported_with_its_cell_and_others_are_kept(tmp_path):
    out = tmp_path / "out"
    lab = runner.run_lab("cpu", [str(FIXTURES / "01_ok.ipynb"), str(FIXTURES / "02_broken.ipynb")],
                         {"seed": "2"}, out=out, checks=False, show_progress=False)
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
    lab = runner.run_lab("cpu", [str(FIXTURES / "03_sleepy.ipynb")], {}, out=out, checks=False,
                         timeout=8, show_progress=False)
    assert lab.notebooks[0].status == "timeout"
    assert "8 s" in lab.notebooks[0].error
    time.sleep(0.5)
    assert processes_under(tmp_path) == []


def test_ctrl_c_stops_kernels_and_keeps_previous_output(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "previous.txt").write_text("an earlier run")
    cmd = [sys.executable, "-m", "invoke", "lab", "--runtime", "local", "--no-checks", "--out", str(out),
           "-n", str(FIXTURES / "03_sleepy.ipynb"), "-n", str(FIXTURES / "01_ok.ipynb")]
    proc = subprocess.Popen(cmd, cwd=paths.ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    # Wait until the sleepy notebook's kernel is really running.
    while time.monotonic() < deadline and not kernels_under(tmp_path):
        time.sleep(0.3)
    assert processes_under(tmp_path), "no kernel started within 60 s"
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr.strip().splitlines()[-1]
    time.sleep(0.5)
    assert processes_under(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no staging folder left
    assert [p.name for p in out.iterdir()] == ["previous.txt"]


def test_usage_errors_write_nothing(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(runner.UsageError):
        runner.run_lab("cpu", [str(FIXTURES / "01_ok.ipynb")], {"seed": "x"}, out=out, show_progress=False)
    assert not tmp_path.joinpath("out").exists() and list(tmp_path.iterdir()) == []


def test_select_notebooks_by_number_name_or_topic():
    notebooks = paths.notebook_paths()
    first = notebooks[0]
    for name in (first.stem[:2], first.stem, first.stem[3:]):
        assert runner.select_notebooks([name]) == [first]
    with pytest.raises(runner.UsageError, match="unknown notebook 'nope'; available: " + first.stem):
        runner.select_notebooks(["nope"])
