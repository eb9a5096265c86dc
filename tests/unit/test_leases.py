"""labkit.hub.leases: each learner's share of the class's machine, one case per kind of room."""

from __future__ import annotations

import pytest

from labkit import UsageError
from labkit.hub.leases import GPU_CONTEXT, HOST_RESERVE_MEMORY, GiB, Gpu, Room, plan

NEED = 3 * GiB  # one learner's server and kernel, as the hub benchmark would measure it


def box(backend: str, gpus=(), tpu_chips: int = 0, cores: int = 64, memory: int = 512 * GiB) -> Room:
    return Room(backend, cores, memory, tuple(gpus), tpu_chips)


def a100s(n: int, mig: int = 0) -> list[Gpu]:
    return [Gpu(i, "A100-SXM4-80GB", 80 * GiB, tuple(f"MIG-{i}-{k}" for k in range(mig))) for i in range(n)]


def test_a_multi_gpu_box_gives_one_gpu_each_and_refuses_the_rest_saying_how_to_seat_them():
    p = plan(box("cuda", a100s(4)), 10, NEED)
    assert [lease.gpu_ids for lease in p.leases] == [("0",), ("1",), ("2",), ("3",)]
    assert p.refused == 6 and "4 GPUs for 10 learners" in p.why_refused and "--share" in p.why_refused
    for lease in p.leases:  # a whole GPU: no memory cap, and nothing preallocated
        assert (
            "XLA_PYTHON_CLIENT_MEM_FRACTION" not in lease.env and lease.env["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"
        )
    with pytest.raises(UsageError, match="learner 5: no seat left"):
        p.lease(5)


def test_mig_instances_are_leased_one_each():
    p = plan(box("cuda", a100s(1, mig=7)), 8, NEED)
    assert [lease.gpu_ids for lease in p.leases] == [(f"MIG-0-{k}",) for k in range(7)]
    assert p.refused == 1 and "7 MIG instances" in p.why_refused


def test_one_gpu_is_shared_in_equal_stated_memory_shares_that_fit_the_card():
    h100 = Gpu(0, "H100 80GB HBM3", 80 * GiB)
    p = plan(box("cuda", [h100]), 8, NEED)
    assert p.refused == 0 and len(p.leases) == 8
    shares = {int(lease.env["JAXLAB_GPU_MEMORY"]) for lease in p.leases}
    assert len(shares) == 1  # even: the same bytes for every learner, whenever their kernel starts
    (share,) = shares
    assert 8 * (share + GPU_CONTEXT) <= h100.memory and share > 9 * GiB
    for lease in p.leases:
        assert lease.env["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"  # a preallocating kernel shrinks the next's
        assert float(lease.env["XLA_PYTHON_CLIENT_MEM_FRACTION"]) == pytest.approx(share / h100.memory, abs=1e-3)
    assert any("time-sliced" in note for note in p.notes)


def test_share_spreads_a_class_over_several_gpus():
    p = plan(box("cuda", a100s(4)), 10, NEED, share=True)
    assert p.refused == 0
    per_gpu = [sum(lease.gpu_ids == (str(i),) for lease in p.leases) for i in range(4)]
    assert per_gpu == [3, 3, 2, 2]
    for lease in p.leases:
        n = per_gpu[int(lease.gpu_ids[0])]
        assert n * (int(lease.env["JAXLAB_GPU_MEMORY"]) + GPU_CONTEXT) <= 80 * GiB


def test_a_share_below_one_gib_is_refused():
    with pytest.raises(UsageError, match="less than 1 GiB"):
        plan(box("cuda", [Gpu(0, "T4", 16 * GiB)]), 20, NEED)


def test_a_tpu_vm_gives_one_chip_each_on_ports_of_their_own():
    p = plan(box("tpu", tpu_chips=8), 8, NEED)
    assert [lease.env["TPU_VISIBLE_CHIPS"] for lease in p.leases] == [str(i) for i in range(8)]
    assert len({lease.env["TPU_PROCESS_PORT"] for lease in p.leases}) == 8
    assert all(
        lease.env["TPU_PROCESS_BOUNDS"] == lease.env["TPU_CHIPS_PER_PROCESS_BOUNDS"] == "1,1,1" for lease in p.leases
    )
    more = plan(box("tpu", tpu_chips=8), 10, NEED)
    assert more.refused == 2 and "8 TPU chips for 10 learners" in more.why_refused


def test_the_hosts_memory_bounds_the_class_at_the_measured_need_per_learner():
    room = box("cpu", cores=16, memory=32 * GiB)
    p = plan(room, 20, NEED)
    holds = (32 * GiB - HOST_RESERVE_MEMORY) // NEED
    assert len(p.leases) == holds and p.refused == 20 - holds
    assert f"holds {holds} learners at the measured 3.0 GiB each" in p.why_refused
    assert all(lease.memory >= NEED for lease in p.leases)
    assert sum(lease.cpus for lease in p.leases) <= room.cores
    assert not any("cores each" in note for note in p.notes)
    crowded = plan(box("cpu", cores=2, memory=32 * GiB), 8, NEED)
    assert any(note.startswith("0.1 cores each") for note in crowded.notes)


def test_the_smaller_limit_is_the_one_named():
    """Four GPUs on a host whose memory holds two learners: the memory is what refuses."""
    p = plan(box("cuda", a100s(4), memory=8 * GiB), 10, NEED)
    assert len(p.leases) == 2 and "memory holds 2 learners" in p.why_refused


@pytest.mark.parametrize(
    "room, learners, message",
    [
        (box("cpu"), 0, "--learners 0: give the class size"),
        (box("cuda"), 4, "this room has no GPU"),
        (box("tpu"), 4, "this room has no TPU chip"),
    ],
)
def test_a_plan_that_cannot_be_made_is_one_line(room, learners, message):
    with pytest.raises(UsageError, match=message):
        plan(room, learners, NEED)
