"""labkit.roofline: working sizes chosen from the device, and in-place timings that take turns."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from labkit import roofline
from labkit.roofline import GiB, MiB


class Accelerator:
    """A device whose allocator reports ``bytes_limit``, as GPUs and TPUs do."""

    platform = "gpu"

    def __init__(self, limit):
        self.limit = limit

    def memory_stats(self):
        return {"bytes_limit": self.limit, "bytes_in_use": 0}


class Host:
    platform = "cpu"

    def memory_stats(self):
        return None


class Broken:
    def memory_stats(self):
        raise RuntimeError("memory statistics are not supported on this backend")


@pytest.mark.parametrize(
    "limit, array_bytes, n",
    [
        (104 * GiB, 1 * GiB, 8192),  # an H200's allocator limit: capped at 1 GiB
        (60 * GiB, 1 * GiB, 8192),  # an H100's
        (12 * GiB, 256 * MiB, 8192),  # 12 GiB / 40 = 307 MiB: the power of two below
        (2 * GiB, 32 * MiB, 2048),  # a small device: the matmul shrinks to fit too
    ],
)
def test_an_accelerator_gets_a_fortieth_of_its_memory_per_array_at_most_1_gib(limit, array_bytes, n):
    sizes = roofline.choose_sizes(Accelerator(limit))
    assert (sizes.array_bytes, sizes.matmul_n) == (array_bytes, n)
    assert sizes.array_bytes <= limit / (roofline.SHARERS * roofline.ARRAYS)
    assert sizes.elements() == array_bytes // 4 and "per array" in sizes.why


def test_smoke_mode_is_small_everywhere():
    gpu = roofline.choose_sizes(Accelerator(104 * GiB), smoke=True)
    cpu = roofline.choose_sizes(Host(), smoke=True)
    assert (gpu.array_bytes, gpu.matmul_n) == (16 * MiB, 1024)
    assert (cpu.array_bytes, cpu.matmul_n) == (4 * MiB, 256)
    assert "smoke" in gpu.why and "smoke" in cpu.why


@pytest.mark.parametrize(
    "cache, memory, array_bytes",
    [
        (32 * MiB, 64 * GiB, 128 * MiB),  # 4x the cache
        (8 * MiB, 64 * GiB, 64 * MiB),  # never below 64 MiB
        (300 * MiB, 64 * GiB, 256 * MiB),  # never above 256 MiB, and the why says the cache may still serve part
        (None, 64 * GiB, 256 * MiB),  # cache unknown: the cap
        (32 * MiB, 2 * GiB, 32 * MiB),  # a small machine: 1/40 of its memory
    ],
)
def test_a_cpu_works_past_its_last_level_cache_within_bounds(monkeypatch, cache, memory, array_bytes):
    monkeypatch.setattr(roofline, "last_level_cache", lambda: cache)
    monkeypatch.setattr(roofline, "host_memory", lambda: memory)
    sizes = roofline.choose_sizes(Host())
    assert sizes.array_bytes == array_bytes and sizes.matmul_n == 1024
    assert sizes.why.startswith("CPU")
    assert ("served from it" in sizes.why) == bool(cache and array_bytes <= 2 * cache)


def test_a_backend_without_memory_statistics_is_sized_like_a_cpu():
    assert roofline.device_memory(Broken()) is None
    assert roofline.device_memory(Host()) is None
    assert roofline.device_memory(Accelerator(5)) == 5
    assert roofline.choose_sizes(Broken(), cache=32 * MiB, memory=64 * GiB).array_bytes == 128 * MiB


def test_the_real_device_gets_sizes_that_fit():
    sizes = roofline.choose_sizes(jax.devices()[0])
    assert MiB <= sizes.array_bytes <= roofline.ACCEL_CAP and sizes.matmul_n >= roofline.MATMUL_N_MIN


def test_last_level_cache_reads_linux_sysfs(tmp_path):
    for index, level, size in (("index0", 1, "48K"), ("index2", 2, "2048K"), ("index3", 3, "300M")):
        (tmp_path / index).mkdir()
        (tmp_path / index / "level").write_text(f"{level}\n")
        (tmp_path / index / "size").write_text(f"{size}\n")
    assert roofline.last_level_cache(tmp_path) == 300 * MiB
    assert roofline.last_level_cache(tmp_path / "missing") is None


def test_time_in_place_chains_each_function_and_leaves_the_input_alone():
    calls = []

    def counting(name, fn):
        def wrapped(a):
            calls.append(name)
            return fn(a)

        return wrapped

    x = jnp.arange(8.0)
    neg = jax.jit(lambda a: -a, donate_argnums=0)
    inc = jax.jit(lambda a: a + 1, donate_argnums=0)
    times = roofline.time_in_place({"neg": counting("neg", neg), "inc": counting("inc", inc)}, x, repeats=3)
    assert set(times) == {"neg", "inc"} and all(t > 0 for t in times.values())
    assert calls == ["neg", "inc"] * 4  # one warm-up, three repeats, taking turns
    np.testing.assert_array_equal(x, np.arange(8.0))  # x was copied, never donated
