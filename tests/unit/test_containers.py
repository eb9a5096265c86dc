"""The container runtime's decisions that need no engine: the flags each engine gets, the
notebooks and mounts handed to the lab inside the image, and how often the engine is asked."""

from __future__ import annotations

import os

import pytest

from labkit import BACKENDS, engine, images, jupyter, lab_in_container, paths
from labkit.engine import Engine
from labkit.errors import UsageError

CUDA = BACKENDS["cuda"]


def test_docker_gets_gpus_and_podman_gets_the_cdi_device():
    docker = Engine("docker").container_args(CUDA)
    podman = Engine("/usr/bin/podman").container_args(CUDA)
    assert docker == list(CUDA.container_args) and "--gpus" in docker
    assert "--gpus" not in podman
    assert podman[podman.index("--device") + 1] == "nvidia.com/gpu=all"


def test_other_backends_flags_are_the_same_for_both_engines():
    for backend in BACKENDS.values():
        if backend is not CUDA:
            assert Engine("podman").container_args(backend) == list(backend.container_args)


def test_podman_without_a_cdi_spec_for_nvidia_is_refused_with_the_fix(tmp_path, monkeypatch):
    monkeypatch.setattr(engine, "CDI_DIRS", (tmp_path,))
    (tmp_path / "other.yaml").write_text("cdiVersion: 0.6.0\nkind: vendor.example/fpga\n")
    with pytest.raises(UsageError, match="needs a CDI spec.*nvidia-ctk cdi generate"):
        Engine("podman").require_gpu_runtime(CUDA)
    (tmp_path / "nvidia.yaml").write_text("cdiVersion: 0.6.0\nkind: nvidia.com/gpu\n")
    Engine("podman").require_gpu_runtime(CUDA)


def test_notebooks_by_name_go_through_and_lab_files_go_by_name():
    lab_file = paths.notebook_paths()[0]
    args, mounts = lab_in_container.notebook_args(["06", "haiku", str(lab_file)])
    assert args == ["-n", "06", "-n", "haiku", "-n", lab_file.stem]
    assert mounts == []


def test_notebooks_from_elsewhere_are_mounted_read_only_one_mount_a_folder(tmp_path):
    for name in ("a.ipynb", "b.ipynb"):
        (tmp_path / "mine" / name).parent.mkdir(exist_ok=True)
        (tmp_path / "mine" / name).write_text("{}")
    (tmp_path / "theirs").mkdir()
    (tmp_path / "theirs" / "c.ipynb").write_text("{}")
    args, mounts = lab_in_container.notebook_args(
        [str(tmp_path / "mine" / "a.ipynb"), str(tmp_path / "mine" / "b.ipynb"), str(tmp_path / "theirs" / "c.ipynb")]
    )
    root = lab_in_container.NOTEBOOK_MOUNTS
    assert args == ["-n", f"{root}/0/a.ipynb", "-n", f"{root}/0/b.ipynb", "-n", f"{root}/1/c.ipynb"]
    assert mounts == [(tmp_path / "mine", f"{root}/0:ro"), (tmp_path / "theirs", f"{root}/1:ro")]


def fake_engine(tmp_path, exit_code: int) -> tuple[Engine, object]:
    """An engine command that counts how often it is asked, and answers (or not)."""
    calls = tmp_path / "calls"
    script = tmp_path / "fake-docker"
    script.write_text(f"#!/bin/sh\necho x >> {calls}\necho 27.0.0\nexit {exit_code}\n")
    script.chmod(0o755)
    return Engine(str(script)), lambda: len(calls.read_text().splitlines()) if calls.exists() else 0


def test_an_engine_that_answered_is_not_asked_again(tmp_path):
    engine, calls = fake_engine(tmp_path, 0)
    assert engine.answers() and engine.answers()
    engine.require()
    assert calls() == 1


def test_an_engine_that_did_not_answer_is_asked_again(tmp_path):
    engine, calls = fake_engine(tmp_path, 1)
    assert not engine.answers() and not engine.answers()
    assert calls() == 2
    with pytest.raises(UsageError, match="no container engine answers"):
        engine.require()


def test_root_lends_the_folder_to_the_images_user_and_gives_every_file_back_to_its_owner(tmp_path):
    if os.getuid() != 0:
        pytest.skip("lending a folder to another user needs root (CI runs as root)")
    folder, owner = tmp_path / "work", 4321  # a learner's folder, not root's
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "mine.ipynb").write_text("{}")
    for path in (folder, folder / "sub", folder / "sub" / "mine.ipynb"):
        os.chown(path, owner, owner)
    with lab_in_container.image_user(folder) as args:
        assert args == []  # the image's own non-root user, never --user 0:0
        assert {p.stat().st_uid for p in [folder, *folder.rglob("*")]} == {images.IMAGE_UID}
        (folder / "new.ipynb").write_text("{}")  # what the container makes, as the image's user
        os.chown(folder / "new.ipynb", images.IMAGE_UID, images.IMAGE_UID)
    assert {p.name: p.stat().st_uid for p in [folder, *folder.rglob("*")]} == {
        "work": owner,
        "sub": owner,
        "mine.ipynb": owner,
        "new.ipynb": owner,
    }


def test_other_users_run_the_container_as_themselves(tmp_path, monkeypatch):
    monkeypatch.setattr(lab_in_container.os, "getuid", lambda: 1234)
    monkeypatch.setattr(lab_in_container.os, "getgid", lambda: 99)
    with lab_in_container.image_user(tmp_path) as args:
        assert args[:2] == ["--user", "1234:99"]


def test_jupyter_token_is_not_on_the_command_line(monkeypatch, tmp_path):
    seen = {}
    monkeypatch.setattr(jupyter, "check_backend", lambda engine, backend: None)
    monkeypatch.setattr(jupyter, "out_mount", lambda: [])
    monkeypatch.setattr(jupyter, "_announce", lambda *a: None)
    monkeypatch.setattr(Engine, "run_attached", lambda engine, cmd, env=None: seen.update(cmd=cmd, env=env) or 0)
    monkeypatch.setattr(jupyter, "ensure_image", lambda *a: None)
    monkeypatch.setenv("JUPYTER_TOKEN", "s3cret-token")
    jupyter.jupyter(Engine(), "cpu", 8899, work=tmp_path / "work", anywhere=True)
    assert not any("s3cret-token" in arg for arg in seen["cmd"])
    assert "JUPYTER_TOKEN" in seen["cmd"] and seen["env"]["JUPYTER_TOKEN"] == "s3cret-token"


@pytest.mark.parametrize(
    "checkout,image,builds",
    [
        ("abc123", "abc123", False),  # a loaded bundle, offline: used as it is
        ("abc123", "def456", True),  # another revision
        ("abc123-dirty", "abc123-dirty", True),  # local changes: always rebuilt
        ("abc123", None, True),  # no image yet
    ],
)
def test_an_image_is_rebuilt_unless_built_from_this_clean_revision(monkeypatch, checkout, image, builds):
    built = []
    monkeypatch.setattr(images, "lab_revision", lambda: checkout)
    monkeypatch.setattr(images, "image_revision", lambda engine, backend: image)
    monkeypatch.setattr(images, "build", lambda engine, name, quiet=False: built.append(name))
    images.ensure_image(Engine(), BACKENDS["cpu"])
    assert built == (["cpu"] if builds else [])


@pytest.mark.parametrize(
    "compare,cache,wanted,unwanted",
    [
        (True, False, ["--against", "--no-cache"], ["--no-compare"]),  # --no-cache keeps --against
        (True, True, ["--against"], ["--no-cache", "--no-compare"]),
        (False, True, ["--no-compare"], ["--against", "--no-cache"]),  # no verdict: no reference
    ],
)
def test_the_lab_inside_the_image_gets_the_verdict_and_cache_flags_it_was_given(
    monkeypatch, tmp_path, compare, cache, wanted, unwanted
):
    """Each of invoke lab's flags reaches the lab in the container on its own: --no-cache says
    nothing about the verdict's reference, and the images' compilation cache is mounted either way."""
    seen = {}
    reference = tmp_path / "ref" / "results.json"
    reference.parent.mkdir()
    reference.write_text("{}")
    monkeypatch.setattr(lab_in_container, "check_backend", lambda *a: None)
    monkeypatch.setattr(lab_in_container, "ensure_image", lambda *a: None)
    monkeypatch.setattr(Engine, "run_attached", lambda engine, cmd, env=None: seen.update(cmd=cmd) or 0)
    lab_in_container.run_lab(
        Engine(), "cpu", [], {}, tmp_path / "out", None, True, compare=compare, against=str(reference), cache=cache
    )
    inner = seen["cmd"][seen["cmd"].index(BACKENDS["cpu"].image) + 1 :]
    assert all(flag in inner for flag in wanted) and not any(flag in inner for flag in unwanted), inner
    assert f"{images.CACHE_VOLUME}:{images.CACHE_MOUNT}" in seen["cmd"]
