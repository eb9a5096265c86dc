"""A guest notebook's comparison (labkit.guest): it has no ``lab.check``, so what each cell printed
is compared instead, one :class:`~labkit.compare.model.Row` per cell.

The numbers in a cell's text agree within the tolerance table (float32's accumulation bound of the
two backends: a printed number is rounded already, and often a sum), and the rest of the text
exactly. What differs between machines by nature is left out first: memory addresses, device
names and timings.
"""

from __future__ import annotations

import re

import numpy as np

from ..closeness import measure
from ..tolerance import between
from .model import Row

# Masked before comparing, in this order: what names a machine, a moment or a place in memory.
VOLATILE = [
    (re.compile(r"0x[0-9a-fA-F]+"), "0x…"),  # memory addresses
    (re.compile(r"\b\w*Device\([^)]*\)"), "<device>"),  # CpuDevice(id=0), CudaDevice(id=3), TpuDevice(...)
    (re.compile(r"\b(?:cpu|gpu|cuda|rocm|tpu|METAL)(?::\d+)?\b", re.I), "<platform>"),
    (re.compile(r"^.*(?:per loop|Wall time|CPU times|it/s|s/it).*$", re.M), "<timing>"),  # timeit, %time, tqdm
    (re.compile(r"[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?\s*(?:ns|µs|us|ms|s|sec|seconds|min)\b"), "<time>"),
]
NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?|\b(?:nan|inf)\b", re.I)


def masked(text: str) -> str:
    for pattern, stand_in in VOLATILE:
        text = pattern.sub(stand_in, text)
    return text


def split(text: str) -> tuple[str, list[float]]:
    """(the text with each number replaced by ``#``, the numbers)."""
    text = masked(text)
    return NUMBER.sub("#", text), [float(m.group()) for m in NUMBER.finditer(text)]


def compare_cells(base: dict, other: dict, backends, label: str, notebook: str) -> list[Row]:
    """Every code cell of a guest notebook's two runs, by its position in the notebook."""
    cells_a = {c["cell"]: c for c in base.get("cells", [])}
    cells_b = {c["cell"]: c for c in other.get("cells", [])}
    bound = between("float32", backends, accumulates=True)
    rows = []
    for cell in sorted(cells_a.keys() | cells_b.keys()):
        row = Row(label, notebook, f"cell {cell}", "printed", True, bound=bound)
        if cell not in cells_a or cell not in cells_b:
            rows.append(row.fail("a cell of one run only: the notebooks differ"))
            continue
        (text_a, nums_a), (text_b, nums_b) = split(cells_a[cell]["text"]), split(cells_b[cell]["text"])
        if text_a != text_b:
            lines = zip(text_a.splitlines() + [""], text_b.splitlines() + [""], strict=False)
            was, now = next((la, lb) for la, lb in lines if la != lb)
            rows.append(row.fail(f"printed {now.strip()!r}, baseline {was.strip()!r}"))
            continue
        if nums_a:
            m = measure(np.asarray(nums_b), np.asarray(nums_a), bound.atol, bound.rtol)
            row.max_abs, row.max_rel, row.used = m.max_abs, m.max_rel, m.used
            if not m.ok:
                row.fail(f"printed {nums_b[m.worst]:.9g}, baseline {nums_a[m.worst]:.9g}: outside the float32 bound")
        rows.append(row)
    return rows
