"""The room a class shares: read from this machine, or described on the command line for a machine
an organiser is planning for (``invoke hub --plan --gpus 4 ...``)."""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess

import psutil

from ..backends import get_backend
from ..errors import UsageError
from .leases import GiB, Gpu, Room

# nvidia-smi -L: "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-...)" and, under a GPU in MIG mode,
# "  MIG 1g.10gb     Device  0: (UUID: MIG-...)".
_GPU_LINE = re.compile(r"^GPU (?P<index>\d+): (?P<name>.+?) \(UUID")
_MIG_LINE = re.compile(r"^\s+MIG .*\(UUID: (?P<uuid>MIG-[^)]+)\)")


def this_machine(backend: str) -> Room:
    """The cores, memory and accelerators of the machine this runs on."""
    cores, memory = os.cpu_count() or 1, psutil.virtual_memory().total
    kind = get_backend(backend).lease
    if kind == "gpu":
        return Room(backend, cores, memory, gpus=_nvidia_gpus())
    if kind == "chip":
        chips = len(glob.glob("/dev/accel[0-9]*")) or len(glob.glob("/dev/vfio/[0-9]*"))
        return Room(backend, cores, memory, tpu_chips=chips)
    return Room(backend, cores, memory)


def described(
    backend: str,
    cores: int | None = None,
    memory_gib: float | None = None,
    gpus: int = 0,
    gpu_memory_gib: float = 80,
    gpu_name: str = "GPU",
    mig: int = 0,
    tpu_chips: int = 0,
) -> Room:
    """A room as an organiser describes it; what is not given is this machine's."""
    here = this_machine("cpu")
    kind = get_backend(backend).lease
    if gpus and kind != "gpu" or tpu_chips and kind != "chip":
        raise UsageError(f"backend {backend!r} leases no {'GPUs' if gpus else 'TPU chips'}; give --backend to match")
    cards = tuple(
        Gpu(i, gpu_name, int(gpu_memory_gib * GiB), tuple(f"MIG-{i}-{k}" for k in range(mig))) for i in range(gpus)
    )
    return Room(
        backend,
        cores or here.cores,
        int(memory_gib * GiB) if memory_gib else here.memory,
        gpus=cards,
        tpu_chips=tpu_chips,
    )


def _nvidia_gpus() -> tuple[Gpu, ...]:
    if not (smi := shutil.which("nvidia-smi")):
        return ()
    try:
        listed = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=30).stdout
        sizes = subprocess.run(
            [smi, "--query-gpu=index,memory.total", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ()
    memory = {int(i): int(mib) * 1024**2 for i, mib in (line.split(",") for line in sizes.splitlines() if "," in line)}
    found: list[Gpu] = []
    for line in listed.splitlines():
        if m := _GPU_LINE.match(line):
            found.append(Gpu(int(m["index"]), m["name"], memory.get(int(m["index"]), 0)))
        elif (m := _MIG_LINE.match(line)) and found:
            last = found[-1]
            found[-1] = Gpu(last.index, last.name, last.memory, (*last.mig, m["uuid"]))
    return tuple(found)
