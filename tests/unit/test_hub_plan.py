"""`invoke hub --plan`: the lease plan for this machine or a described one, and the machine's GPUs
as nvidia-smi lists them (a stand-in nvidia-smi here: there is no GPU)."""

from __future__ import annotations

import os

import pytest
from helpers import invoke, one_line_error

from labkit.hub import room

NVIDIA_SMI = """#!/bin/sh
case "$1" in
  -L) cat <<'EOF'
GPU 0: NVIDIA A100-SXM4-80GB (UUID: GPU-aaaa)
  MIG 3g.40gb     Device  0: (UUID: MIG-aaaa-0)
  MIG 3g.40gb     Device  1: (UUID: MIG-aaaa-1)
GPU 1: NVIDIA A100-SXM4-80GB (UUID: GPU-bbbb)
EOF
  ;;
  *) printf '0, 81920\\n1, 81920\\n' ;;
esac
"""


def test_this_machines_gpus_and_their_mig_instances_are_read_from_nvidia_smi(tmp_path, monkeypatch):
    smi = tmp_path / "nvidia-smi"
    smi.write_text(NVIDIA_SMI)
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    found = room.this_machine("cuda")
    assert [(g.index, g.name, g.memory, g.mig) for g in found.gpus] == [
        (0, "NVIDIA A100-SXM4-80GB", 80 * 1024**3, ("MIG-aaaa-0", "MIG-aaaa-1")),
        (1, "NVIDIA A100-SXM4-80GB", 80 * 1024**3, ()),
    ]


def test_the_plan_for_a_described_box_seats_one_learner_per_gpu_and_says_who_is_refused():
    done = invoke(
        "hub", "--plan", "--backend", "cuda", "--learners", "10", "--gpus", "4", "--cores", "64", "--memory", "512",
        "--learner-memory", "3",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    text = " ".join(done.stdout.split())
    assert "4 of 10 learners seated" in text and "refused: 6 learners" in text and "--share" in text
    assert "backend cuda: 64 cores, 512 GiB memory, 4 × GPU (80 GiB)" in text


@pytest.mark.parametrize(
    "args, message",
    [
        (["--learners", "3", "--bind", "0.0.0.0"], "--bind 0.0.0.0 exposes the hub beyond this machine"),
        (["--learners", "3", "--gpus", "2"], "they go with --plan"),
        (["--plan", "--learners", "0"], "--learners '0': give a whole number, 1 or more"),
        (["--plan", "--learners", "3", "--gpus", "2"], "backend 'cpu' leases no GPUs"),
        (["--plan", "--learners", "3", "--backend", "tpu", "--cores", "8", "--learner-memory", "3"], "has no TPU chip"),
    ],
    ids=["bind-without-password", "machine-without-plan", "no-learners", "gpus-for-cpu", "tpu-without-chips"],
)
def test_a_plan_that_cannot_be_made_is_one_line(args, message):
    assert message in one_line_error(invoke("hub", *args))
