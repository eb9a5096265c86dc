"""labkit.gpu_memory: a learner's bytes of a shared GPU become JAX's fraction of what is free at
their kernel's start, so a learner who starts last gets the same bytes as the first."""

from __future__ import annotations

import os

import pytest

from labkit import LabError
from labkit.gpu_memory import SHARE_VARIABLE, MiB, ShareUnavailable, apply_share

GiB = 1024 * MiB


@pytest.fixture
def gpu(tmp_path, monkeypatch):
    """A stand-in nvidia-smi on PATH that reports ``free`` MiB; set it with gpu(free_mib)."""

    def report(free_mib: int) -> None:
        smi = tmp_path / "nvidia-smi"
        smi.write_text(f"#!/bin/sh\necho {free_mib}\n")
        smi.chmod(0o755)

    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("XLA_PYTHON_CLIENT_MEM_FRACTION", raising=False)
    return report


def test_each_learner_gets_the_same_bytes_however_much_is_already_taken(gpu, monkeypatch):
    share = 9 * GiB
    monkeypatch.setenv(SHARE_VARIABLE, str(share))
    fractions = []
    for free in (80 * 1024, 80 * 1024 - 3 * 9 * 1024):  # the first learner, then the fourth
        gpu(free)
        apply_share()
        fractions.append(float(os.environ["XLA_PYTHON_CLIENT_MEM_FRACTION"]))
        assert fractions[-1] * free * MiB == pytest.approx(share, rel=1e-3)
    assert fractions[1] > fractions[0]  # a larger fraction of less free memory: the same bytes


def test_less_free_than_the_share_is_refused_in_one_line(gpu, monkeypatch):
    monkeypatch.setenv(SHARE_VARIABLE, str(9 * GiB))
    gpu(4 * 1024)
    with pytest.raises(ShareUnavailable) as err:
        apply_share()
    assert "\n" not in str(err.value) and "only 4.0 GiB is free" in str(err.value)


def test_no_share_or_no_nvidia_smi_leaves_the_environment_as_it_was(tmp_path, monkeypatch):
    monkeypatch.delenv("XLA_PYTHON_CLIENT_MEM_FRACTION", raising=False)
    monkeypatch.delenv(SHARE_VARIABLE, raising=False)
    apply_share()
    monkeypatch.setenv(SHARE_VARIABLE, str(GiB))
    monkeypatch.setenv("PATH", str(tmp_path))  # no nvidia-smi here
    apply_share()
    assert "XLA_PYTHON_CLIENT_MEM_FRACTION" not in os.environ


def test_a_share_that_is_not_bytes_is_one_line(gpu, monkeypatch):
    monkeypatch.setenv(SHARE_VARIABLE, "9GiB")
    with pytest.raises(LabError, match="give the share in bytes"):
        apply_share()


def test_a_learners_cuda_kernel_refuses_a_taken_share_before_jax_starts(gpu, monkeypatch):
    from labkit import get_backend, jaxsetup

    monkeypatch.setattr(type(get_backend("cuda")), "plugin_installed", lambda self: True)
    for name in ("JAX_PLATFORMS", "XLA_PYTHON_CLIENT_PREALLOCATE"):  # setup sets them; put them back after
        monkeypatch.setenv(name, os.environ.get(name, ""))
    monkeypatch.setenv(SHARE_VARIABLE, str(9 * GiB))
    gpu(2 * 1024)
    with pytest.raises(ShareUnavailable, match="only 2.0 GiB is free"):
        jaxsetup.setup("cuda")
