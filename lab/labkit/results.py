"""Recording a notebook's key numbers, and merging them into a run's ``results.json``.

A notebook records values (outputs of its exercises, as small arrays or summaries of large
ones) and timings through a :class:`Recorder`; each notebook writes its own JSON file, and the
runner merges them with the run's metadata. The format is what ``invoke compare`` reads.

Timings are data, not names to parse: each is a record of what was timed (the subject), how it
ran (a variant from :data:`VARIANTS`) and the seconds it took, kept in a list in the order the
notebook recorded them::

    "timings": [{"subject": "gelu", "variant": "eager", "seconds": 0.0123},
                {"subject": "gelu", "variant": "jit", "seconds": 0.00061}]

A subject is timed at most once per variant, so the comparison can pair the variants of one
subject into speedups (jit against eager, vmap against a loop) from a small table of variants
(``labkit.compare.perf.SPEEDUPS``) instead of guessing them from key names.

Format 2 brought these timing records (format 1 kept timings as ``{"gelu_jit": seconds}``);
results of another format are refused by the comparison, and a rerun writes the current one.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path

import numpy as np

from .closeness import widen

FORMAT = 2
# How a subject was run when it was timed: the one vocabulary of timing variants. A variant
# outside it is refused when it is recorded, so a typo cannot quietly drop a speedup.
VARIANTS = {
    "numpy": "NumPy on the host",
    "eager": "JAX op by op, as Python calls each operation",
    "op_by_op": "the same as eager: notebook 09's name for it",
    "jit": "compiled with jax.jit, called again after its first call",
    "first_call": "a fresh jax.jit's first call: trace, compile and run",
    "cached": "a jitted function called again: the compiled code only",
    "loop": "a Python loop over the examples",
    "vmap": "batched with jax.vmap",
    "by_hand": "batched by hand, with the batch axis written into the code",
    "pmap": "one shard per device with jax.pmap",
    "shard_map": "one shard per device with jax.shard_map",
    "jit_sharded": "jax.jit on sharded inputs, the partitioning left to the compiler",
    "unrolled": "a Python loop, unrolled by jax.jit into one copy of its body per step",
    "scan": "the same loop as lax.scan: one copy of its body, whatever the length",
}
# Arrays up to this many elements are kept whole; larger ones as shape, statistics and a sample.
FULL_LIMIT = 64
SAMPLE = 16


def encode_array(x) -> dict:
    arr = np.asarray(x)
    dtype = arr.dtype.name
    wide = widen(arr)
    if wide.dtype.kind == "c":
        wide = np.stack([wide.real, wide.imag], axis=-1)
    entry: dict[str, object] = {"dtype": dtype, "shape": list(arr.shape)}
    if arr.size <= FULL_LIMIT:
        entry["data"] = wide.tolist()
    else:
        flat = wide.reshape(-1).astype(np.float64)
        idx = np.linspace(0, flat.size - 1, SAMPLE).astype(int)
        entry["summary"] = {
            "sum": float(flat.sum()),
            "mean": float(flat.mean()),
            "std": float(flat.std()),
            "min": float(flat.min()),
            "max": float(flat.max()),
            "sample_index": idx.tolist(),
            "sample": flat[idx].tolist(),
        }
    return entry


def write_json(path: Path, data: dict) -> None:
    """Write whole or not at all (a reader never sees half a file), never through a link."""
    from .outdir import replace_file

    path.parent.mkdir(parents=True, exist_ok=True)
    replace_file(path, (json.dumps(data, indent=1, sort_keys=True) + "\n").encode())


class Recorder:
    """Collects one notebook's results; ``save()`` writes ``<results_dir>/<notebook>.json``, or, in
    a run of several processes, ``<notebook>.process-<i>.json`` for each process but the first
    (kept beside the run's results; the comparison reads process 0's)."""

    def __init__(self, notebook: str, results_dir: str | os.PathLike, params: dict, process: int = 0):
        self.notebook = notebook
        self.path = Path(results_dir) / (f"{notebook}.json" if process == 0 else f"{notebook}.process-{process}.json")
        self.params = dict(params)
        self.values: dict[str, dict] = {}
        self.timings: list[dict] = []  # {"subject", "variant", "seconds"} records; see the module's doc
        self.facts: dict[str, object] = {}
        self.metrics: dict[str, float] = {}

    def value(self, key: str, x, accumulates: bool = False) -> None:
        """An array (or scalar) result, compared across hardware by dtype tolerance;
        ``accumulates`` marks sums, matmuls, scans and training, which get the looser bound."""
        self.values[key] = encode_array(x) | {"accumulates": bool(accumulates)}

    def timing(self, subject: str, variant: str, seconds: float) -> None:
        """How long ``subject`` (what was timed, e.g. ``"gelu"``) took run as ``variant`` (one of
        :data:`VARIANTS`, e.g. ``"jit"``): seconds, a median of repeats. Reported side by side
        across machines and paired into speedups, never expected to match. Timing the same
        subject and variant again (a rerun cell) replaces the earlier record."""
        if variant not in VARIANTS:
            raise ValueError(
                f"unknown timing variant {variant!r} for {subject!r}; valid variants: "
                f"{', '.join(VARIANTS)} (labkit/results.py)"
            )
        if not (isinstance(subject, str) and subject):
            raise ValueError(f"a timing's subject names what was timed, e.g. 'gelu'; got {subject!r}")
        seconds = float(seconds)
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"timing {subject}/{variant}: {seconds} is not a duration in seconds")
        record = {"subject": subject, "variant": variant, "seconds": seconds}
        self.timings = [t for t in self.timings if (t["subject"], t["variant"]) != (subject, variant)]
        self.timings.append(record)

    def metric(self, key: str, value: float) -> None:
        """A hardware-dependent figure (a speedup, a bandwidth, a share of peak): reported side
        by side across machines, never expected to match."""
        self.metrics[key] = float(value)

    def fact(self, key: str, value) -> None:
        """A plain JSON value that should be the same on any hardware: a count, a flag, a string
        (e.g. how many times f was traced)."""
        json.dumps(value)  # refuse what cannot be recorded now, not at save time
        self.facts[key] = value

    def save(self) -> Path:
        from .compile_cache import tally
        from .environment import describe

        write_json(
            self.path,
            {
                "format": FORMAT,
                "notebook": self.notebook,
                "params": self.params,
                "environment": describe(self.params.get("backend", "cpu")),
                "values": self.values,
                "timings": self.timings,
                "metrics": self.metrics,
                "facts": self.facts,
                "compilation": tally(),  # what this kernel compiled and loaded; never compared
            },
        )
        return self.path


def source_digest(notebook: Path) -> str:
    """A digest of a notebook's code: runs are comparable only if they ran the same code."""
    import nbformat

    cells = nbformat.read(notebook, as_version=4).cells
    code = "\n\0".join(c.source for c in cells if c.cell_type == "code")
    return hashlib.sha256(code.encode()).hexdigest()[:16]


def merge(results_dir: Path, run: dict, digests: dict[str, str] | None = None) -> dict:
    """One run's results: the runner's ``run`` metadata plus every notebook's record, each with
    the digest of the notebook source it came from."""
    notebooks = {}
    for path in sorted(results_dir.glob("*.json")):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        # Only what a Recorder saved: a notebook may keep JSON files of its own there too.
        if not (isinstance(record, dict) and record.get("notebook") == path.stem and "environment" in record):
            continue
        notebooks[path.stem] = record
        if digests and path.stem in digests:
            notebooks[path.stem]["source_digest"] = digests[path.stem]
    environment = next(iter(notebooks.values()))["environment"] if notebooks else {}
    return {"format": FORMAT, "run": run, "environment": environment, "notebooks": notebooks}
