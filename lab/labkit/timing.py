"""Timing JAX code honestly: dispatch is asynchronous, so wait for the result every time."""

from __future__ import annotations

import statistics
import time

import jax

from . import compile_cache


def median_time(fn, *args, repeats: int = 7, warmup: int = 1) -> float:
    """Median wall seconds of ``fn(*args)`` over ``repeats`` runs, after ``warmup`` runs.

    The warm-up absorbs compilation, so a jitted function is timed as it runs, not as it
    compiles; ``block_until_ready`` makes the clock include the work, not just its dispatch.
    """
    for _ in range(warmup):
        jax.block_until_ready(fn(*args))
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


# A cell that times compilation turns the lab's compilation cache off for its block.
real_compilations = compile_cache.real_compilations
