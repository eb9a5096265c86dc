"""``invoke lab --processes N``: the multi-process notebook and checks as N JAX processes on this
host, and what happens when a process dies or cannot join."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import psutil
import pytest
from helpers import free_port, invoke, one_line_error

from labkit import paths

MULTI = "15_multi_process"


def lab_args(out, *extra: str) -> list[str]:
    return ["lab", "--processes", "2", "--runtime", "local", "--out", str(out), *extra]


def test_two_processes_run_the_lab_and_end_with_the_verdict(tmp_path, backend):
    result = invoke(*lab_args(tmp_path / "two", "--backend", backend))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    results = json.loads((tmp_path / "two" / "results.json").read_text())
    # The run ends with the verdict: the one-process reference against these two processes' results
    head, _, last = result.stdout.rstrip().rpartition("\nverdict: ")
    assert head and "\n" not in last.replace("\n(", " ("), result.stdout[-1500:]
    assert results["run"]["ok"] and "agree with the CPU reference" in results["run"]["verdict"]
    assert results["run"]["processes"] == 2
    assert results["notebooks"][MULTI]["environment"]["process_count"] == 2
    # Gathered from every process: each one's notebook, results, checks and log
    for name in (f"notebooks/{MULTI}.ipynb", f"notebooks/{MULTI}.process-1.ipynb", f"results/{MULTI}.process-1.json"):
        assert (tmp_path / "two" / name).is_file(), name
    for junit in ("junit.xml", "junit-process-1.xml"):
        assert 'failures="0"' in (tmp_path / "two" / junit).read_text()
    steps = {s["name"]: s["status"] for s in results["run"]["steps"]}
    assert steps == {MULTI: "passed", f"{MULTI}.process-1": "passed", "checks": "passed"}


def _kernel_of_process(runner: psutil.Process, process: int, timeout: float = 120) -> psutil.Process:
    """The notebook kernel that runs as ``process`` (its launcher set JAXLAB_PROCESS_ID)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for child in runner.children(recursive=True):
            try:
                kernel = "ipykernel" in " ".join(child.cmdline())
                if kernel and child.environ().get("JAXLAB_PROCESS_ID") == str(process):
                    return child
            except psutil.Error:
                continue
        time.sleep(0.2)
    raise AssertionError(f"no kernel of process {process} started within {timeout} s")


def test_a_killed_process_fails_the_run_within_60_s_naming_it_and_keeps_what_was_written(tmp_path):
    out = tmp_path / "killed"
    runner = subprocess.Popen(
        [sys.executable, "-m", "invoke", *lab_args(out, "--no-checks")],
        cwd=paths.ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    tree = psutil.Process(runner.pid)
    kernel = _kernel_of_process(tree, 1)
    time.sleep(3)  # mid-run: joining the others, or in a collective with them
    everyone = tree.children(recursive=True)
    kernel.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    stdout, stderr = runner.communicate(timeout=120)
    took = time.monotonic() - killed
    assert runner.returncode == 1, stdout[-2000:] + stderr[-2000:]
    assert took < 60, f"the run went on for {took:.0f} s after process 1 was killed"
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("lab failed on ") and ": process 1: " in last, last
    results = json.loads((out / "results.json").read_text())
    failed = {s["name"]: s["error"] for s in results["run"]["steps"] if s["status"] != "passed"}
    assert any(error.startswith("process 1:") for error in failed.values()), failed
    assert (out / "logs" / "process-1.log").is_file() and (out / "notebooks" / f"{MULTI}.ipynb").is_file()
    left = [p for p in everyone if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not left, f"left behind: {[' '.join(p.cmdline()[:3]) for p in left]}"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["-n", "03"], "runs in one process only"),
        (["--launcher", "mpirun"], "unknown launcher 'mpirun'; valid launchers: local, srun"),
        (["-p", "processes=3"], "parameter 'processes' is set by the lab itself (choose it with --processes)"),
    ],
)
def test_a_run_of_several_processes_refuses_what_it_cannot_do(tmp_path, args, says):
    line = one_line_error(invoke(*lab_args(tmp_path / "refused", *args), timeout=60))
    assert says in line
    assert not (tmp_path / "refused").exists()


def _join(env: dict[str, str], processes: int = 2) -> subprocess.CompletedProcess:
    """labkit.setup for a run of ``processes``, as a notebook's kernel calls it, in a process
    whose launcher variables are ``env``."""
    code = (
        f"import labkit\ntry:\n labkit.setup('cpu', {processes})\n"
        f"except labkit.LabError as e:\n print(e); raise SystemExit(3)"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("JAXLAB_", "SLURM_"))}
    return subprocess.run(
        [sys.executable, "-c", code], env=clean | env, capture_output=True, text=True, timeout=120, cwd=paths.ROOT
    )


def test_a_coordinator_port_in_use_is_one_line_at_once():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        start = time.monotonic()
        done = _join({"JAXLAB_COORDINATOR": f"127.0.0.1:{port}", "JAXLAB_PROCESS_ID": "0", "JAXLAB_PROCESS_COUNT": "2"})
    assert done.returncode == 3, done.stderr[-2000:]
    assert done.stdout.strip() == (
        f"process 0 cannot start the coordinator: 127.0.0.1:{port} is already in use; give a free port, "
        f"or leave it out and one is chosen"
    )
    assert time.monotonic() - start < 30


def test_an_unreachable_coordinator_is_one_line_within_the_join_timeout():
    port = free_port()
    start = time.monotonic()
    done = _join(
        {
            "JAXLAB_COORDINATOR": f"127.0.0.1:{port}",
            "JAXLAB_PROCESS_ID": "1",
            "JAXLAB_PROCESS_COUNT": "2",
            "JAXLAB_JOIN_TIMEOUT": "3",
        }
    )
    assert done.returncode == 3, done.stderr[-2000:]
    assert done.stdout.strip().startswith(f"process 1 could not reach the coordinator at 127.0.0.1:{port} within 3 s")
    assert time.monotonic() - start < 30


def test_a_wrong_process_count_is_one_line():
    address = f"127.0.0.1:{free_port()}"
    done = _join({"JAXLAB_COORDINATOR": address, "JAXLAB_PROCESS_ID": "0", "JAXLAB_PROCESS_COUNT": "3"})
    assert done.returncode == 3, done.stderr[-2000:]
    assert done.stdout.strip().startswith("this notebook asks for 2 processes, but its launcher started 3")


def test_a_count_that_joined_otherwise_than_asked_is_refused():
    from labkit.distributed import JoinFailed, check_count

    class Joined:  # what jax reports after a launcher (srun -n 3) started another count
        @staticmethod
        def process_count() -> int:
            return 3

    check_count(type("One", (), {"process_count": staticmethod(lambda: 2)}), 2)
    with pytest.raises(JoinFailed, match="asks for 2 processes, but 3 joined"):
        check_count(Joined, 2)


def slurm_answers() -> bool:
    if not shutil.which("srun") or not shutil.which("sinfo"):
        return False
    try:
        states = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=20).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return False
    return any(state.rstrip("*") in ("idle", "mixed", "allocated") for state in states)


@pytest.fixture
def slurm():
    """A Slurm cluster that runs jobs here (CI starts a single-node one with .ci/slurm)."""
    if not slurm_answers():
        message = "no Slurm cluster answers here (srun, and a node that is up)"
        if os.environ.get("JAXLAB_REQUIRE_SLURM") == "1":
            pytest.fail(message + ", but JAXLAB_REQUIRE_SLURM=1")
        pytest.skip(message + "; bash .ci/slurm starts one (root), JAXLAB_REQUIRE_SLURM=1 makes this a failure")


def test_srun_runs_the_two_process_lab_and_jax_finds_its_processes_itself(tmp_path, backend, slurm):
    result = invoke(*lab_args(tmp_path / "srun", "--launcher", "srun", "--backend", backend))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    results = json.loads((tmp_path / "srun" / "results.json").read_text())
    assert results["run"]["launcher"] == "srun" and results["run"]["ok"]
    assert "agree with the CPU reference" in results["run"]["verdict"]
    assert results["notebooks"][MULTI]["environment"]["process_count"] == 2
    # Slurm, not the lab, told each process who it is (and JAX read the same variables)
    reports = [json.loads((tmp_path / "srun" / "processes" / f"{i}.json").read_text()) for i in (0, 1)]
    assert [(r["process"], r["told_by"]) for r in reports] == [(0, "SLURM_PROCID"), (1, "SLURM_PROCID")]
