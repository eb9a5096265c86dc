"""Device leases: each learner's fair, stated share of a class's machine, as a pure function.

:func:`plan` takes the room (cores, memory, accelerators) and the class size and returns one
:class:`Lease` per learner it can seat, and says why it seats no more. Nothing here looks at the
machine it runs on (:mod:`labkit.hub.room` does), so every case is a plain test.

The shares, by how a backend's device is leased (the registry's ``lease``):

- ``gpu``, several GPUs (or MIG instances): one each, the only isolation GPUs give; the rest
  are refused, and the plan says how to seat them (``share``).
- ``gpu``, one GPU (or ``share``): the GPUs are time-sliced, and each learner gets a memory
  share computed from the card and the class size. JAX's ``XLA_PYTHON_CLIENT_MEM_FRACTION`` is a
  fraction of the memory *free when the kernel starts* (xla's gpu_helpers), so with JAX's
  preallocation every later learner would get a smaller share. A lease states its share in
  bytes (``JAXLAB_GPU_MEMORY``): preallocation is off, and :func:`labkit.setup` turns the bytes
  into a fraction of what is free at the kernel's start, or refuses in one line when another
  process holds more than its share.
- ``chip``, a TPU VM: one chip per learner (libtpu lets one process open a chip), through
  ``TPU_VISIBLE_CHIPS`` and one-chip process bounds; the rest are refused.
- ``none`` (the CPU): cores and memory only.

Every learner also gets a share of the host's cores and memory, after a reserve for the hub and
the system. The memory a learner needs comes from the hub benchmark's measurement
(``invoke bench --what learner``), not from a guess.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from .. import paths
from ..backends import get_backend
from ..errors import UsageError

GiB = 1024**3
MiB = 1024**2
HOST_RESERVE_CORES = 1.0  # the hub, its proxy and the system
HOST_RESERVE_MEMORY = 2 * GiB
MIN_CORES = 0.5  # below this share a learner waits on every compilation, and the plan says so
# What one JAX process holds on a GPU outside its allocator's pool (the CUDA context, cuDNN and
# cuBLAS handles): a few hundred MiB on the cards JAX documents; kept out of every share.
GPU_CONTEXT = 512 * MiB
TPU_PORT = 8476  # libtpu's first mesh controller port; each learner's process takes its own


# One learner's JupyterLab server and kernel at their peak, as the hub benchmark measured them:
# this machine's own measurement when `invoke bench --what learner` has run here, else the one that
# ships with the lab (with the machine it was measured on).
MEASURED_HERE = paths.OUT / "bench" / "learner.json"
MEASURED_SHIPPED = Path(__file__).with_name("learner_memory.json")


def measured_learner_memory() -> int:
    """Bytes one learner's server and kernel need, from the hub benchmark's measurement."""
    for source in (MEASURED_HERE, MEASURED_SHIPPED):
        if source.is_file():
            return int(json.loads(source.read_text())["learner_memory_bytes"])
    raise UsageError("no measurement of a learner's memory: run invoke bench --what learner, or give --learner-memory")


@dataclass(frozen=True)
class Gpu:
    index: int
    name: str
    memory: int  # bytes
    mig: tuple[str, ...] = ()  # the UUIDs of its MIG instances, when MIG mode is on


@dataclass(frozen=True)
class Room:
    """The machine a class shares."""

    backend: str
    cores: int
    memory: int  # bytes of host memory
    gpus: tuple[Gpu, ...] = ()
    tpu_chips: int = 0
    tpu_type: str = ""  # e.g. v5litepod-8, for the plan's words


@dataclass(frozen=True)
class Lease:
    learner: int  # the seat, from 1
    device: str  # what the learner's kernel sees, in words
    cpus: float
    memory: int  # host memory, bytes
    env: dict[str, str] = field(default_factory=dict)  # set in the learner's server
    gpu_ids: tuple[str, ...] = ()  # passed through to the container (index or MIG UUID)
    tpu_chips: tuple[int, ...] = ()


@dataclass(frozen=True)
class LeasePlan:
    room: Room
    learners: int
    leases: tuple[Lease, ...]
    refused: int = 0
    why_refused: str = ""
    notes: tuple[str, ...] = ()

    def lease(self, seat: int) -> Lease:
        """The lease of ``seat`` (from 1); a :class:`UsageError` when the plan seats no one there."""
        if 1 <= seat <= len(self.leases):
            return self.leases[seat - 1]
        raise UsageError(f"learner {seat}: no seat left ({self.why_refused})")


def plan(room: Room, learners: int, learner_memory: int, share: bool = False) -> LeasePlan:
    """Each learner's share of ``room``, for a class of ``learners``; ``learner_memory`` is what
    one learner's server and kernel were measured to need, in bytes."""
    if learners < 1:
        raise UsageError(f"--learners {learners}: give the class size, 1 or more")
    if learner_memory < 1:
        raise UsageError(f"learner memory {learner_memory}: give the measured bytes, 1 or more")
    host_free = max(room.memory - HOST_RESERVE_MEMORY, 0)
    holds = host_free // learner_memory
    why_host = (
        f"this machine's memory holds {holds} learners at the measured {learner_memory / GiB:.1f} GiB each "
        f"({room.memory / GiB:.0f} GiB, {HOST_RESERVE_MEMORY / GiB:.0f} GiB kept for the hub and the system)"
    )
    kind = get_backend(room.backend).lease
    if kind == "gpu":
        devices, why_device, notes = _gpus(room, learners, share)
    elif kind == "chip":
        devices, why_device, notes = _chips(room, learners)
    else:
        devices, why_device, notes = [("the CPU (simulated devices)", {}, (), ())] * learners, "", ()
    seated = min(learners, holds, len(devices))
    why = why_host if holds < min(learners, len(devices)) else why_device
    cpus = max(round((room.cores - HOST_RESERVE_CORES) / max(seated, 1), 1), 0.1)
    memory = host_free // max(seated, 1)
    leases = tuple(
        Lease(i + 1, words, cpus, memory, env, gpu_ids, chips)
        for i, (words, env, gpu_ids, chips) in enumerate(devices[:seated])
    )
    if seated and cpus < MIN_CORES:
        notes = (
            *notes,
            f"{cpus:g} cores each: JAX's first compilations take a learner several times longer than on a core",
        )
    return LeasePlan(room, learners, leases, learners - seated, why if seated < learners else "", notes)


# (what the learner's kernel sees, the environment, GPUs passed through, TPU chips passed through)
Device = tuple[str, dict[str, str], tuple[str, ...], tuple[int, ...]]


def _gpus(room: Room, learners: int, share: bool) -> tuple[list[Device], str, tuple[str, ...]]:
    """One GPU or MIG instance each, or (one GPU, or ``share``) memory shares of time-sliced GPUs."""
    if not room.gpus:
        raise UsageError(f"backend {room.backend!r}: this room has no GPU; describe it with --gpus N")
    units = [(f"MIG {uuid} on GPU {g.index}", uuid) for g in room.gpus for uuid in g.mig]
    units += [(f"GPU {g.index} ({g.name})", str(g.index)) for g in room.gpus if not g.mig]
    if len(units) > 1 and not share:
        # The kernel takes what it uses of its own GPU: nothing is preallocated.
        whole: list[Device] = [
            (f"{words}, whole", {"XLA_PYTHON_CLIENT_PREALLOCATE": "false"}, (ident,), ()) for words, ident in units
        ]
        kind = "MIG instances" if any(g.mig for g in room.gpus) else "GPUs"
        why = (
            f"{len(units)} {kind} for {learners} learners: one each is the only isolation GPUs give; "
            f"--share seats all {learners} on memory shares of the GPUs instead"
        )
        return whole, why, ()
    # Time-sliced: learners spread over the GPUs in turn, each with a memory share of its card.
    cards = [g for g in room.gpus if not g.mig] or list(room.gpus)
    sharing = {g.index: len(range(i, learners, len(cards))) for i, g in enumerate(cards)}
    devices: list[Device] = []
    for i in range(learners):
        gpu = cards[i % len(cards)]
        n = sharing[gpu.index]
        share_bytes = (gpu.memory - n * GPU_CONTEXT) // n
        if share_bytes < GiB:
            raise UsageError(
                f"{n} learners on GPU {gpu.index} ({gpu.memory / GiB:.0f} GiB) leave each less than 1 GiB; "
                f"seat fewer learners per GPU"
            )
        env = {
            "XLA_PYTHON_CLIENT_PREALLOCATE": "false",
            "JAXLAB_GPU_MEMORY": str(share_bytes),
            # For a kernel that never calls labkit (a guest notebook): its share of the whole card,
            # which JAX applies to the memory free at its start.
            "XLA_PYTHON_CLIENT_MEM_FRACTION": f"{share_bytes / gpu.memory:.3f}",
        }
        words = f"GPU {gpu.index} ({gpu.name}), shared by {n}: {share_bytes / GiB:.1f} GiB"
        devices.append((words, env, (str(gpu.index),), ()))
    notes = (
        "time-sliced: the learners on one GPU take turns; a busy kernel slows the others, and "
        "memory shares are kept by JAX's allocator, not enforced by the GPU",
    )
    return devices, "", notes


def _chips(room: Room, learners: int) -> tuple[list[Device], str, tuple[str, ...]]:
    """One TPU chip each: libtpu lets one process hold a chip."""
    if room.tpu_chips < 1:
        raise UsageError(f"backend {room.backend!r}: this room has no TPU chip; describe it with --tpu-chips N")
    devices: list[Device] = []
    for chip in range(room.tpu_chips):
        port = str(TPU_PORT + chip)
        env = {
            "TPU_VISIBLE_CHIPS": str(chip),
            "TPU_CHIPS_PER_PROCESS_BOUNDS": "1,1,1",
            "TPU_PROCESS_BOUNDS": "1,1,1",
            "TPU_PROCESS_PORT": port,
            "TPU_MESH_CONTROLLER_ADDRESS": f"localhost:{port}",
            "TPU_MESH_CONTROLLER_PORT": port,
        }
        devices.append((f"TPU chip {chip}", env, (), (chip,)))
    why = (
        f"{room.tpu_chips} TPU chips for {learners} learners: libtpu lets one process hold a chip, so "
        f"the others wait until a learner's server stops (the idle culler frees chips)"
    )
    return devices, why, ()
