"""The offline kit (``invoke bundle``): made from the CPU image, checked file by file, refused when
a file is corrupt or missing, loaded into an engine that lost the image, and the lab run inside it.

The tests that need a container engine are marked ``container`` (see conftest's ``engine``); the
first ones check the refusals, which happen before any engine is asked.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from helpers import invoke, one_line_error

from labkit import BACKENDS, UsageError, bundle, images, locks, paths

CPU = BACKENDS["cpu"]
TAGS = images.tags(CPU)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--backend", "nope"], "unknown backend 'nope'"),
        (["--no-install"], "--no-install goes with --load DIR"),
        (["--no-image"], "--no-image goes with --load DIR"),
        (["--load", "{tmp}", "--out", "{tmp}/x"], "--out is for making a bundle"),
        (["--load", "{tmp}", "--lock", "cpu"], "--lock is for making a bundle"),
        (["--load", "{tmp}/nowhere"], "no such folder"),
        (["--load", "{tmp}", "--no-image", "--no-install"], "has no SHA256SUMS: not a bundle"),
        (["--out", "{tmp}"], "holds files that invoke bundle did not write"),
        (["--out", str(paths.ROOT)], "is or contains the lab's checkout"),
        (["--backend", "cpu", "--lock", "cuda"], "backend 'cpu' has no lock 'cuda'"),
    ],
)
def test_bad_input_is_refused_in_one_line_and_leaves_the_folder_alone(tmp_path, args, says):
    mine = tmp_path / "notes.txt"
    mine.write_text("the user's own file\n")
    error = one_line_error(invoke("bundle", *(a.format(tmp=tmp_path) for a in args)))
    assert says in error
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"] and mine.read_text() == "the user's own file\n"


@pytest.mark.parametrize("args", [["--out", "{tmp}/bundle-cpu"], ["--load", "{tmp}"]])
def test_a_missing_engine_is_one_line(tmp_path, args):
    env = dict(os.environ, INVOKE_JAXLAB_ENGINE=str(tmp_path / "no-such-engine"))
    error = one_line_error(invoke("bundle", *(a.format(tmp=tmp_path) for a in args), env=env))
    assert "no container engine answers" in error
    assert not (tmp_path / "bundle-cpu").exists()


def test_only_an_earlier_bundle_or_an_empty_folder_is_replaced(tmp_path):
    earlier, empty, other = tmp_path / "earlier", tmp_path / "empty", tmp_path / "other"
    for folder in (earlier, empty, other):
        folder.mkdir()
    (earlier / bundle.MANIFEST).write_text(json.dumps({"format": bundle.FORMAT}))
    (other / bundle.MANIFEST).write_text(json.dumps({"format": "something else"}))
    assert bundle.check_target(earlier) == earlier and bundle.check_target(empty) == empty
    with pytest.raises(UsageError, match="invoke bundle did not write"):
        bundle.check_target(other)
    assert bundle.default_out("cpu") == paths.OUT / "bundle-cpu"


# --- with a container engine


@pytest.fixture(scope="module")
def made(engine, tmp_path_factory):
    """``invoke bundle --backend cpu`` into a fresh folder, once: (folder, seconds it took). Removed
    at the end (about 560 MB)."""
    out = tmp_path_factory.mktemp("bundle") / "bundle-cpu"
    started = time.monotonic()
    result = invoke("bundle", "--backend", "cpu", "--out", str(out), timeout=1200)
    took = time.monotonic() - started
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    print(f"\ninvoke bundle --backend cpu: {took:.0f} s, {bundle.folder_size(out) / 1e6:.0f} MB")
    yield out, took
    shutil.rmtree(out.parent, ignore_errors=True)


def listed(folder: Path) -> dict[str, str]:
    lines = (folder / bundle.SUMS).read_text().splitlines()
    return {line[66:]: line[:64] for line in lines}


@pytest.mark.container
def test_the_bundle_holds_image_wheels_and_handouts_with_a_checksum_for_every_file(made):
    out, _ = made
    manifest = json.loads((out / bundle.MANIFEST).read_text())
    assert manifest["backend"] == "cpu" and manifest["tags"] == TAGS and manifest["lock"] == "cpu"
    image = out / "image" / manifest["image_file"]
    with open(image, "rb") as f:
        assert f.read(2) == b"\x1f\x8b"  # gzip
    assert (out / "locks" / "cpu.txt").read_bytes() == (locks.LOCKS / "cpu.txt").read_bytes()
    pinned = locks.locked((locks.LOCKS / "cpu.txt").read_text())
    wheels = sorted(p.name for p in (out / "wheels").iterdir())
    assert len(wheels) == len(pinned) + 1 and manifest["project_wheel"] in wheels
    assert all(name.endswith(".whl") for name in wheels)
    assert sorted(p.name for p in (out / "handouts").glob("*.ipynb")) == [p.name for p in paths.notebook_paths()]
    readme = (out / bundle.README).read_text()
    assert "invoke bundle --load" in readme and "invoke lab --backend cpu --runtime local" in readme
    # SHA256SUMS names every file but itself, each with its right checksum, in sha256sum's format.
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    sums = listed(out)
    assert sorted(sums) == [name for name in files if name != bundle.SUMS]
    for name, digest in sums.items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == digest, name
    if shutil.which("sha256sum"):
        check = subprocess.run(["sha256sum", "--check", "--quiet", bundle.SUMS], cwd=out, capture_output=True)
        assert check.returncode == 0, check.stdout + check.stderr
    assert sorted(p.name for p in out.parent.iterdir()) == [out.name]  # no staging folder or lock left


@pytest.mark.container
def test_the_wheelhouse_alone_installs_the_lock_and_the_project(made, tmp_path):
    """pip with no index and no configuration at all (nothing but the bundle's wheels), every hash
    checked, every dependency resolved: the wheelhouse is complete. A dry run, into a --target."""
    out, _ = made
    report = tmp_path / "report.json"
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--dry-run",
        "--no-index",
        "--require-hashes",
        "--find-links",
        str(out / "wheels"),
        "--target",
        str(tmp_path / "target"),
        "--quiet",
        "--report",
        str(report),
        "-r",
        str(out / "locks" / "cpu.txt"),
        "-r",
        str(out / "locks" / bundle.PROJECT_LOCK),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, env=bundle.pip_env())
    assert done.returncode == 0, done.stderr[-3000:]
    plan = json.loads(report.read_text())["install"]
    installed = {item["metadata"]["name"].lower().replace("_", "-") for item in plan}
    assert installed == set(locks.locked((out / "locks" / "cpu.txt").read_text())) | {"jaxlab"}


def image_ids(engine) -> dict[str, str | None]:
    return {tag: bundle.image_id(engine, tag) for tag in TAGS}


def linked_copy(out: Path, target: Path) -> Path:
    """A copy of the bundle that shares its files (hard links): cheap, and the original stays intact
    as long as a file is replaced, never written in place."""
    shutil.copytree(out, target, copy_function=os.link)
    return target


def recording_engine(engine, tmp_path: Path) -> tuple[dict, Path]:
    """The engine behind a script that notes each command it is given: (environment, log)."""
    log, script = tmp_path / "engine.log", tmp_path / "engine"
    script.write_text(f'#!/bin/sh\necho "$*" >> "{log}"\nexec "{shutil.which(engine.command)}" "$@"\n')
    script.chmod(0o755)
    return dict(os.environ, INVOKE_JAXLAB_ENGINE=str(script)), log


def refused_without_loading(out: Path, manifest: dict, env: dict, log: Path, tmp_path: Path) -> None:
    """A copy with one changed byte, and one without a file: each refused in one line naming the
    file, before the engine is asked to load anything."""
    corrupt = linked_copy(out, tmp_path / "corrupt")
    wheel = corrupt / "wheels" / manifest["project_wheel"]
    data = bytearray(wheel.read_bytes())
    data[len(data) // 2] ^= 1
    wheel.unlink()  # a file of its own: the bundle's stays as it is
    wheel.write_bytes(bytes(data))
    error = one_line_error(invoke("bundle", "--load", str(corrupt), "--no-install", env=env))
    assert f"wheels/{manifest['project_wheel']} does not match its checksum" in error
    incomplete = linked_copy(out, tmp_path / "incomplete")
    (incomplete / "handouts" / paths.notebook_paths()[0].name).unlink()
    error = one_line_error(invoke("bundle", "--load", str(incomplete), "--no-install", env=env))
    assert f"handouts/{paths.notebook_paths()[0].name} is missing" in error
    asked = log.read_text().splitlines()
    assert asked and all(line.startswith("version") for line in asked), asked  # nothing was loaded


@pytest.mark.container
def test_a_corrupt_copy_loads_nothing_and_the_bundle_brings_the_image_back_for_the_lab(engine, made, tmp_path):
    out, _ = made
    manifest = json.loads((out / bundle.MANIFEST).read_text())
    env, log = recording_engine(engine, tmp_path)
    try:
        refused_without_loading(out, manifest, env, log, tmp_path)
    finally:  # the copies share the bundle's files: they would keep its 560 MB
        for copy in ("corrupt", "incomplete"):
            shutil.rmtree(tmp_path / copy, ignore_errors=True)

    # --force: where a container still runs from the image (someone's JupyterLab), the tags go and the
    # image stays until it ends; elsewhere (CI) the image is gone.
    removed = subprocess.run([engine.command, "rmi", "--force", *TAGS], capture_output=True, text=True)
    try:
        assert removed.returncode == 0, removed.stderr
        assert image_ids(engine) == dict.fromkeys(TAGS)
        loaded = invoke("bundle", "--load", str(out), "--no-install", env=env)
        assert loaded.returncode == 0, (loaded.stdout + loaded.stderr)[-3000:]
        assert "files match" in loaded.stdout and "installing" not in loaded.stdout
        assert image_ids(engine) == dict.fromkeys(TAGS, manifest["image_id"])
        assert any(line.startswith("load -i ") for line in log.read_text().splitlines())
    finally:
        if None in image_ids(engine).values():  # put it back for the other tests
            invoke("bundle", "--load", str(out), "--no-install")
        if None in image_ids(engine).values():
            invoke("build", "--backend", "cpu")

    run = tmp_path / "run"
    lab = invoke(
        "lab",
        "--backend",
        "cpu",
        "--runtime",
        "docker",
        "-n",
        "01",
        "-p",
        "smoke=true",
        "--no-checks",
        "--out",
        str(run),
    )
    assert lab.returncode == 0, (lab.stdout + lab.stderr)[-3000:]
    results = json.loads((run / "results.json").read_text())
    first = next(p.stem for p in paths.notebook_paths() if p.stem.startswith("01_"))
    assert results["run"]["ok"] is True and list(results["notebooks"]) == [first]
    assert results["environment"]["lab_revision"] == manifest["revision"]


@pytest.mark.container
def test_ctrl_c_leaves_no_half_written_bundle_and_no_process(engine, tmp_path):
    out = tmp_path / "bundle-cpu"
    proc = subprocess.Popen(
        [sys.executable, "-m", "invoke", "bundle", "--backend", "cpu", "--out", str(out)],
        cwd=paths.ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 300
        image = None
        while time.monotonic() < deadline and proc.poll() is None:
            image = next(tmp_path.glob(".bundle-cpu.partial-*/image/*.tar.gz"), None)
            if image and image.stat().st_size > 1_000_000:  # the save is under way, and the downloads
                break
            time.sleep(0.2)
        assert image is not None and proc.poll() is None, "no bundle was being written"
        children = psutil.Process(proc.pid).children(recursive=True)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr[-2000:]
    assert stderr.strip().splitlines()[-1] == "interrupted"
    assert list(tmp_path.iterdir()) == []  # no bundle, no staging folder, no lock file
    _, alive = psutil.wait_procs(children, timeout=30)
    assert not alive, [p.cmdline() for p in alive]
