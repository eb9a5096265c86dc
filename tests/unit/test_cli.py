"""The command line and the hardware: an accelerator backend without its device is refused in one
line, and JAX never falls back to the CPU (the other bad input: tests/unit/test_errors.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest
from helpers import invoke

from labkit import BACKENDS, checks_phase, paths


@pytest.mark.parametrize("name", [n for n, b in BACKENDS.items() if b.device_globs and not b.device_present()])
def test_accelerator_backend_without_its_device_is_refused(tmp_path, name):
    result = invoke("lab", "--backend", name, "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert f"backend '{name}' needs" in result.stderr and "no such device" in result.stderr
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("name", [n for n, b in BACKENDS.items() if b.platform != "cpu"])
def test_jax_refuses_to_fall_back_to_cpu(name):
    """Even past the device check, labkit.setup stops rather than run a cuda/tpu lab on the CPU."""
    if BACKENDS[name].device_present():
        pytest.skip(f"a {name} device is present on this machine")
    result = subprocess.run(
        [sys.executable, "-c", f"import labkit; labkit.setup({name!r})"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert f"backend '{name}' asked for" in result.stderr


@pytest.mark.parametrize("name", [n for n, b in BACKENDS.items() if b.platform != "cpu"])
def test_checks_session_fails_loudly_without_the_device(name, tmp_path):
    """The checks' pytest session, as a run starts it, stops at its start on a missing device."""
    if BACKENDS[name].device_present():
        pytest.skip(f"a {name} device is present on this machine")
    (tmp_path / "logs").mkdir()
    session = checks_phase.check_session(name, tmp_path, "", [], 120, threading.Event())
    assert session.returncode == pytest.ExitCode.USAGE_ERROR
    assert f"backend '{name}' asked for" in session.log.read_text()


def test_notebooks_task_lists_every_notebook_and_its_parameters():
    result = invoke("notebooks")
    assert result.returncode == 0
    for nb in paths.notebook_paths():
        assert nb.stem in result.stdout
    assert "-p seed=" in result.stdout


def test_invoke_test_collects_the_same_tests_wherever_it_is_typed(tmp_path):
    """From the checkout, from lab/ below it, and from outside it with -r: one suite, not whatever
    pytest would find under the folder invoke was typed in."""

    def collected(cwd, *where: str) -> str:
        # One process collects (--jobs 1): workers would each collect the same list again.
        done = invoke(*where, "test", "--jobs", "1", "--pytest-args", "--collect-only -q -p no:cacheprovider", cwd=cwd)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr
        return done.stdout.strip().splitlines()[-1].split(" in ")[0]  # "750/857 tests collected (...)"

    from_checkout = collected(paths.ROOT)
    assert " tests collected" in from_checkout
    assert collected(paths.NOTEBOOKS) == from_checkout
    assert collected(tmp_path, "-r", str(paths.ROOT)) == from_checkout


def test_invoke_test_spreads_the_tests_over_jobs_processes_and_jobs_1_runs_them_in_its_own():
    def ran(jobs: str) -> str:
        done = invoke("test", "--jobs", jobs, "--pytest-args", "tests/unit/test_pins.py -p no:cacheprovider")
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr
        return done.stdout

    assert "2 workers [" in ran("2")
    assert " workers [" not in ran("1")


@pytest.mark.parametrize(
    "args",
    [
        ["lab", "--runtime", "docker", "-n", "01"],
        ["jupyter"],
        ["shell"],
        ["build"],
        ["bundle", "--out", "{tmp}/kit"],
        ["bench", "--what", "images"],
    ],
    ids=lambda a: a[0],
)
def test_without_an_engine_each_command_says_so_in_one_line_and_offers_only_what_it_has(tmp_path, args):
    """Only `lab` can run without the image (in this Python, --runtime local); the message of
    every other command must not send the user to a flag it does not take."""
    env = dict(os.environ, INVOKE_JAXLAB_ENGINE=str(tmp_path / "no-such-engine"), HOME=str(tmp_path))
    done = invoke(*[a.format(tmp=tmp_path) for a in args], env=env)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "no container engine answers" in lines[0], done.stderr
    assert ("--runtime local" in lines[0]) == (args[0] == "lab")
    assert not (tmp_path / "kit").exists()
