"""A learner's share of a shared GPU, turned into JAX's memory fraction as their kernel starts.

A class on one GPU gives each learner a share in bytes (``JAXLAB_GPU_MEMORY``, from
:mod:`labkit.hub.leases`). JAX takes ``XLA_PYTHON_CLIENT_MEM_FRACTION`` as a fraction of the
memory that is *free when the kernel starts*, so a fixed fraction gives every later learner less.
Here the bytes become a fraction of what is free now, so each learner gets the same bytes; when
less than the share is free, another kernel holds more than its share, and the start is refused
in one line instead of failing later inside a learner's cell.
"""

from __future__ import annotations

import os
import shutil
import subprocess

from .errors import LabError

SHARE_VARIABLE = "JAXLAB_GPU_MEMORY"
MiB = 1024**2


class ShareUnavailable(LabError):
    """Less GPU memory is free than this learner's share."""


def fraction_of_free(share: int, free: int) -> float:
    """The fraction of ``free`` bytes that is ``share`` bytes; refused when ``share`` does not fit."""
    if share > free:
        raise ShareUnavailable(
            f"this learner's GPU memory share is {share / 1024**3:.1f} GiB but only {free / 1024**3:.1f} GiB "
            f"is free: another kernel on this GPU holds more than its share (ask the organiser to stop it)"
        )
    return share / free


def free_memory() -> int | None:
    """Bytes free on the first GPU this process sees (nvidia-smi's view); None where it cannot tell."""
    if not (smi := shutil.which("nvidia-smi")):
        return None
    try:
        done = subprocess.run(
            [smi, "--query-gpu=memory.free", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        return int(done.stdout.split()[0]) * MiB if done.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired, ValueError, IndexError):
        return None


def apply_share() -> None:
    """Set JAX's memory fraction from this learner's share, before JAX starts its GPU client.
    Without a share, or where the free memory cannot be read, the environment stays as it is (a
    lease also sets the share of the whole card, which then applies)."""
    if not (value := os.environ.get(SHARE_VARIABLE)):
        return
    try:
        share = int(value)
    except ValueError:
        raise LabError(f"{SHARE_VARIABLE}={value!r}: give the share in bytes, a whole number") from None
    if (free := free_memory()) is None:
        return
    os.environ["XLA_PYTHON_CLIENT_MEM_FRACTION"] = f"{fraction_of_free(share, free):.4f}"
    os.environ["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
