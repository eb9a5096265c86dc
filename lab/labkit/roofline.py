"""Measuring a device against its own limits (notebook 09): array sizes that suit the device the
notebook runs on, and timings of kernels next to a plain copy on that same device.

Sizes. A timing is only as good as the share of it the work takes: a call also pays a fixed cost
(Python, dispatch, a kernel launch, the wait for the result: microseconds), and an array that
fits in a cache is read at the cache's speed, not the memory's. So the working array is as large
as the device can spare:

- an accelerator (``device.memory_stats()`` has ``bytes_limit``): a notebook may share it with
  :data:`SHARERS` others, and holds about :data:`ARRAYS` arrays of the working size at once, so
  one array gets at most ``bytes_limit / (SHARERS * ARRAYS)``, capped at :data:`ACCEL_CAP`;
- a CPU (``memory_stats()`` is None): well past the last-level cache, between :data:`HOST_MIN`
  and :data:`HOST_CAP`, and never more than a ``SHARERS * ARRAYS``-th of the machine's memory.

Smoke mode takes a small fixed size instead, for a quick check (its figures show overheads and
caches, which is a lesson too).

Timings. :func:`time_in_place` runs functions that donate their argument, so each call writes
its result over its input: no call waits for fresh memory (on a CPU, a new buffer of hundreds of
MiB costs the operating system more time than copying it), and the functions take turns, so a
machine that slows down for a while slows all of them alike.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

MiB = 2**20
GiB = 2**30
SHARERS = 10  # notebooks that may run on one accelerator at the same time
ARRAYS = 4  # arrays of the working size one notebook holds at once (input, output, intermediates)
ACCEL_CAP = 1 * GiB  # per array, on an accelerator: enough to hide a launch on any current chip
ACCEL_SMOKE = 16 * MiB
HOST_MIN, HOST_CAP = 64 * MiB, 256 * MiB  # per array, on a CPU
HOST_CACHE_FACTOR = 4  # a CPU array is at least this many times its last-level cache, within the bounds above
HOST_SMOKE = 4 * MiB
# n of the n x n matmuls: (full, smoke). 2 n^3 FLOP each; 8192 keeps even a bfloat16 product on a
# current GPU (hundreds of TFLOP/s) at milliseconds, 1024 a CPU's at tens of milliseconds.
MATMUL_N_ACCEL = (8192, 1024)
MATMUL_N_HOST = (1024, 256)
MATMUL_N_MIN = 256


@dataclass(frozen=True)
class Sizes:
    """What the notebook runs at: bytes per elementwise array, n of the matmuls, and why."""

    array_bytes: int
    matmul_n: int
    why: str

    def elements(self, itemsize: int = 4) -> int:
        return self.array_bytes // itemsize


def device_memory(device) -> int | None:
    """The memory the device's allocator may use (``bytes_limit``), or None: a CPU has no such
    limit (JAX returns None), and a backend that cannot say is treated alike."""
    try:
        stats = device.memory_stats()
    except Exception:  # a backend without memory statistics raises its own error type
        return None
    limit = (stats or {}).get("bytes_limit")
    return int(limit) if limit else None


def last_level_cache(root: Path = Path("/sys/devices/system/cpu/cpu0/cache")) -> int | None:
    """Bytes of the CPU's largest cache, as Linux reports it (``index*/size``, e.g. ``32768K``);
    None elsewhere or when it cannot be read."""
    found: dict[int, int] = {}
    for entry in sorted(root.glob("index*")):
        try:
            level = int((entry / "level").read_text())
            text = (entry / "size").read_text().strip().upper()
        except (OSError, ValueError):
            continue
        unit = {"K": 2**10, "M": 2**20, "G": 2**30}.get(text[-1:], 1)
        try:
            found[level] = max(found.get(level, 0), int(text.rstrip("KMG")) * unit)
        except ValueError:
            continue
    return found[max(found)] if found else None


def host_memory() -> int | None:
    """Bytes of physical memory, or None where the platform cannot say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _floor_pow2(n: int) -> int:
    return 1 << (max(int(n), 1).bit_length() - 1)


def _mib(n: int) -> str:
    return f"{n / MiB:.4g} MiB" if n < GiB else f"{n / GiB:.4g} GiB"


def choose_sizes(device, smoke: bool = False, cache: int | None = None, memory: int | None = None) -> Sizes:
    """The working sizes for ``device`` (a ``jax.Device``); ``cache`` and ``memory`` (bytes)
    override what this machine reports for a CPU, for tests."""
    limit = device_memory(device)
    if limit is not None:  # an accelerator: its own memory, shared
        budget = limit // (SHARERS * ARRAYS)
        full = max(min(ACCEL_CAP, _floor_pow2(budget)), MiB)
        n_full, n_smoke = MATMUL_N_ACCEL
        n = n_smoke if smoke else n_full
        while n > MATMUL_N_MIN and n * n * 4 > budget:
            n //= 2
        if smoke:
            return Sizes(min(ACCEL_SMOKE, full), n, f"smoke mode: {_mib(min(ACCEL_SMOKE, full))} per array")
        why = (
            f"{_mib(limit)} usable device memory / ({SHARERS} notebooks x {ARRAYS} arrays) = "
            f"{_mib(budget)} per array; taking {_mib(full)} (a power of two, at most {_mib(ACCEL_CAP)})"
        )
        return Sizes(full, n, why)
    n_full, n_smoke = MATMUL_N_HOST
    if smoke:
        return Sizes(HOST_SMOKE, n_smoke, f"smoke mode: {_mib(HOST_SMOKE)} per array (likely inside a cache)")
    cache = last_level_cache() if cache is None else cache
    memory = host_memory() if memory is None else memory
    want = HOST_CACHE_FACTOR * cache if cache else HOST_CAP
    full = min(max(_floor_pow2(want), HOST_MIN), HOST_CAP)
    rule = f"{HOST_CACHE_FACTOR}x the last-level cache of {_mib(cache)}" if cache else "the cache size is unknown"
    rule += f", within {_mib(HOST_MIN)}..{_mib(HOST_CAP)}"
    if memory and _floor_pow2(memory // (SHARERS * ARRAYS)) < full:
        full = max(_floor_pow2(memory // (SHARERS * ARRAYS)), MiB)
        rule += f", at most 1/{SHARERS * ARRAYS} of the {_mib(memory)} memory"
    why = f"CPU: {_mib(full)} per array ({rule})"
    if cache and full <= 2 * cache:
        why += (
            "; the cache is unusually large, so part of each array may still be served from it "
            "(a cache this size is usually shared with other cores, or other machines)"
        )
    return Sizes(full, n_full, why)


def time_in_place(fns: dict[str, Callable], x, repeats: int = 7, warmup: int = 1) -> dict[str, float]:
    """Median wall seconds of each function in ``fns`` over ``repeats`` calls, after ``warmup``.

    Each function maps an array to one of the same shape and dtype and should be jitted with
    ``donate_argnums=0``: its result is its next call's input, and donation lets the result take
    over the input's memory, so no call allocates. The functions take turns (one call of each,
    then again), so a machine that is busy for a while slows them all alike; ``x`` itself is
    left untouched.
    """
    import jax
    import jax.numpy as jnp

    current = {name: jax.block_until_ready(jnp.copy(x)) for name in fns}
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for i in range(warmup + repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            current[name] = jax.block_until_ready(fn(current[name]))
            if i >= warmup:
                samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(s) for name, s in samples.items()}
