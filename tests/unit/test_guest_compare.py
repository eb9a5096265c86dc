"""A guest notebook's runs compared by what each cell printed (labkit.compare.printed): a changed
printed number is caught, while timings, memory addresses and device names are not compared."""

from __future__ import annotations

import copy
import json

import pytest

from labkit import compare
from labkit.results import FORMAT

CELLS = [
    "[CpuDevice(id=0), CpuDevice(id=1)]\nsum: 45.0\n<object object at 0x7ff74dba7320>\n",
    "1.23 ms ± 4.5 µs per loop (mean ± std. dev. of 7 runs, 100 loops each)\nloss 0.0123457 after 20 steps\n",
    "TypeError: JAX arrays are immutable\n",
]


def results(cells: list[str], backend: str = "cpu") -> dict:
    record = {
        "format": FORMAT,
        "notebook": "guest",
        "guest": True,
        "params": {"backend": backend},
        "environment": {"backend": backend, "platform": backend, "process_count": 1},
        "source_digest": "0123456789abcdef",
        "cells": [{"cell": i + 2, "seconds": 0.1, "text": text, "raises": i == 2} for i, text in enumerate(cells)],
    }
    return {
        "format": FORMAT,
        "run": {"backend": backend, "params": {}, "ok": True},
        "environment": record["environment"],
        "notebooks": {"guest": record},
    }


def compared(tmp_path, base: dict, other: dict) -> compare.Comparison:
    paths = []
    for name, data in (("base", base), ("other", other)):
        paths.append(tmp_path / f"{name}.json")
        paths[-1].write_text(json.dumps(data))
    return compare.run(paths)


def test_each_cell_of_two_runs_agrees(tmp_path):
    comparison = compared(tmp_path, results(CELLS), results(CELLS))
    assert comparison.ok and [r.key for r in comparison.rows] == ["cell 2", "cell 3", "cell 4"]


@pytest.mark.parametrize(
    ("cell", "old", "new"),
    [
        (0, "0x7ff74dba7320", "0x55d0c0ffee00"),  # a memory address
        (0, "CpuDevice(id=1)", "CudaDevice(id=1)"),  # a device name
        (1, "1.23 ms ± 4.5 µs", "98.1 µs ± 3 µs"),  # a timing
        (1, "0.0123457", "0.0123458"),  # the last printed digit of a float32 result
    ],
)
def test_what_differs_between_machines_by_nature_is_not_a_difference(tmp_path, cell, old, new):
    changed = copy.deepcopy(CELLS)
    changed[cell] = changed[cell].replace(old, new)
    assert changed != CELLS
    assert compared(tmp_path, results(CELLS), results(changed)).ok


@pytest.mark.parametrize(
    ("cell", "old", "new", "why"),
    [
        (0, "sum: 45.0", "sum: 46.0", "printed 46, baseline 45"),
        (1, "0.0123457", "0.0133457", "printed 0.0133457, baseline 0.0123457"),
        (1, "after 20 steps", "after 19 steps", "printed 19, baseline 20"),
        (2, "immutable", "mutable", "printed 'TypeError: JAX arrays are mutable'"),
    ],
)
def test_a_changed_printed_result_is_caught_and_named(tmp_path, cell, old, new, why):
    changed = copy.deepcopy(CELLS)
    changed[cell] = changed[cell].replace(old, new)
    comparison = compared(tmp_path, results(CELLS), results(changed))
    assert not comparison.ok
    (failed,) = [r for r in comparison.rows if not r.ok]
    assert failed.key == f"cell {cell + 2}" and why in failed.why, failed.why
