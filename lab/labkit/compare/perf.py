"""The hardware-dependent part of a comparison: timings, the speedups derived from them, and
metrics, side by side per run and never pass/fail (a GPU is meant to be faster).

A notebook records each timing as a subject timed in a variant (see :mod:`labkit.results`), so
a speedup is a lookup: for every (faster, slower) pair of variants in :data:`SPEEDUPS` that a
subject was timed in, the slower time over the faster.
"""

from __future__ import annotations

from .model import PerfRow, Run

# (faster, slower, label): the speedup of the first variant over the second, t(slower) / t(faster).
# Every variant is one of labkit.results.VARIANTS.
SPEEDUPS = (
    ("jit", "eager", "jit vs op-by-op"),
    ("jit", "op_by_op", "jit vs op-by-op"),
    ("jit", "numpy", "jit vs NumPy"),
    ("cached", "first_call", "cached call vs first call"),
    ("vmap", "loop", "vmap vs loop"),
    ("vmap", "by_hand", "vmap vs hand-batched"),
    ("shard_map", "pmap", "shard_map vs pmap"),
    ("jit_sharded", "pmap", "jit-sharded vs pmap"),
    ("scan", "unrolled", "scan vs unrolled loop"),
)


def timings(record: dict) -> dict[tuple[str, str], float]:
    """One notebook's timings by (subject, variant)."""
    return {(t["subject"], t["variant"]): t["seconds"] for t in record.get("timings") or []}


def speedups(timed: dict[tuple[str, str], float]) -> dict[str, float]:
    """The speedups of one notebook's timings, e.g. ``{"gelu: jit vs op-by-op": 18.9}``."""
    found = {}
    for subject in dict.fromkeys(subject for subject, _ in timed):
        for fast, slow, label in SPEEDUPS:
            t_fast, t_slow = timed.get((subject, fast)), timed.get((subject, slow))
            if t_fast and t_slow is not None:
                found[f"{subject}: {label}"] = t_slow / t_fast
    return found


def performance(runs: list[Run]) -> list[PerfRow]:
    """Every timing, derived speedup and metric, one row each with a column per run."""
    rows = []
    for nb in sorted({nb for run in runs for nb in run.notebooks}):
        per_run = {run.label: run.notebooks.get(nb, {}) for run in runs}
        timed = {label: timings(record) for label, record in per_run.items()}
        figures = {
            "timing": {label: {f"{s}: {v}": t for (s, v), t in found.items()} for label, found in timed.items()},
            "speedup": {label: speedups(found) for label, found in timed.items()},
            "metric": {label: record.get("metrics") or {} for label, record in per_run.items()},
        }
        for kind, by_run in figures.items():
            for key in sorted({k for found in by_run.values() for k in found}):
                rows.append(PerfRow(nb, key, kind, {label: found.get(key) for label, found in by_run.items()}))
    return rows
