"""Reading the runs to compare: a run folder (its ``results.json``), a results file (a copy such
as ``lab/labkit/references/cpu.json``), or a results dict already in memory (the runner's own run).

Anything that is not lab results of the current format is a usage error with a one-line
message, before anything is compared: results of another format were recorded by another lab
(see :mod:`labkit.results`), and rerunning the lab is the only way to compare them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ..errors import UsageError
from ..results import FORMAT
from .model import Run

# A run folder or results file, or the results themselves.
Source = str | os.PathLike | Mapping


def load(source: Source) -> Run:
    """One source as a :class:`Run`, still without its label (see :func:`load_all`)."""
    if isinstance(source, Mapping):
        return Run(None, "", _checked(dict(source), "the results given"))
    path = Path(source)
    file = path / "results.json" if path.is_dir() else path
    if not path.exists():
        raise UsageError(f"{source}: no such run folder or results file")
    if not file.is_file():
        raise UsageError(
            f"{source}: no results.json in this folder; give a run folder (e.g. out/cpu) "
            f"or a results file (e.g. lab/labkit/references/cpu.json)"
        )
    try:
        data = json.loads(file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UsageError(f"{file}: cannot be read as lab results ({err})") from None
    return Run(file, "", _checked(data, str(file)))


def _checked(data, where: str) -> dict:
    if not (isinstance(data, dict) and isinstance(data.get("notebooks"), dict) and isinstance(data.get("run"), dict)):
        raise UsageError(f"{where}: not a lab results file (it has no run and notebooks)")
    if data.get("format") != FORMAT:
        raise UsageError(
            f"{where}: results format {data.get('format')!r}, but this lab reads format {FORMAT}: "
            f"rerun the lab (or the reference task) to record these results again"
        )
    for notebook, record in data["notebooks"].items():
        if problem := _malformed(record):
            raise UsageError(f"{where}: notebook {notebook!r} is not a lab record ({problem}); was the file edited?")
    return data


SUMMARY = {"sum", "mean", "std", "min", "max", "sample_index", "sample"}  # what labkit.results writes


def _malformed(record) -> str | None:
    """What is wrong with one notebook's record, in a few words; None when it is sound."""
    if not isinstance(record, dict):
        return "not an object"
    for section in ("values", "facts", "metrics", "params", "environment"):
        if not isinstance(record.get(section, {}), dict):
            return f"{section} is not an object"
    for key, value in record.get("values", {}).items():
        if not (
            isinstance(value, dict)
            and isinstance(value.get("dtype"), str)
            and isinstance(value.get("shape"), list)
            and ("data" in value or isinstance(value.get("summary"), dict))
        ):
            return f"value {key!r} lacks dtype, shape and data"
        if problem := _malformed_value(value):
            return f"value {key!r} {problem}"
    timings = record.get("timings", [])
    if not (
        isinstance(timings, list)
        and all(isinstance(t, dict) and {"subject", "variant", "seconds"} <= t.keys() for t in timings)
    ):
        return "timings are not (subject, variant, seconds) records"
    if not all(isinstance(v, int | float) for v in record.get("metrics", {}).values()):
        return "a metric is not a number"
    return None


def _malformed_value(value: dict) -> str | None:
    """What is wrong with one recorded array (see labkit.results.encode_array), or None: the
    comparison does arithmetic on it, so anything but numbers of the shape it claims is refused
    here, in words, rather than as a traceback from NumPy later."""
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in value["shape"]):
        return f"has a shape that is not a list of sizes: {value['shape']!r}"
    if "data" in value:
        data = _numbers(value["data"])
        if data is None:
            return "has data that is not a rectangular array of numbers"
        # Complex values are kept as (real, imaginary) pairs: one more axis of 2.
        if list(data.shape) not in (value["shape"], [*value["shape"], 2]):
            return f"has data of shape {list(data.shape)} but says shape {value['shape']}"
        return None
    summary = value["summary"]
    if missing := SUMMARY - summary.keys():
        return f"has a summary without {', '.join(sorted(missing))}"
    for stat in sorted(SUMMARY - {"sample", "sample_index"}):
        if (number := _numbers(summary[stat])) is None or number.ndim:
            return f"has a summary whose {stat} is not a number"
    sample, index = _numbers(summary["sample"]), _numbers(summary["sample_index"])
    if sample is None or index is None or sample.ndim != 1 or sample.shape != index.shape:
        return "has a summary whose sample and sample_index are not two lists of numbers of one length"
    return None


def _numbers(data) -> np.ndarray | None:
    """``data`` (JSON: numbers, lists of them) as a float64 array, or None when it is not one:
    strings, objects, null, or lists of unequal lengths."""

    def numeric(x) -> bool:
        return isinstance(x, int | float) or isinstance(x, list) and all(numeric(y) for y in x)

    if not numeric(data):
        return None
    try:
        return np.asarray(data, dtype=np.float64)
    except ValueError:  # ragged
        return None


def load_all(sources: Sequence[Source], labels: Sequence[str] | None = None) -> list[Run]:
    """Every source, each labelled: by ``labels`` when given, else by :func:`labels_for`."""
    runs = [load(s) for s in sources]
    if labels is not None and len(labels) != len(runs):
        raise UsageError(f"{len(labels)} labels for {len(runs)} runs")
    for run, label in zip(runs, labels or labels_for(runs), strict=True):
        run.label = label
    return runs


def labels_for(runs: Sequence[Run]) -> list[str]:
    """Short distinct names: a run folder's name (out/cuda -> cuda), a file's stem (cpu-smoke),
    or for results given directly their backend; with the folder above where those are alike."""

    def name(run: Run, depth: int) -> str:
        if run.path is None:
            return run.backend
        base = run.path.parent if run.path.name == "results.json" else run.path.with_suffix("")
        return "/".join(base.parts[-depth:])

    short = [name(r, 1) for r in runs]
    labels = [name(r, 2) if short.count(s) > 1 else s for r, s in zip(runs, short, strict=True)]
    # Still the same (the same file twice, two results dicts of one backend): number them.
    return [f"{label} #{i + 1}" if labels.count(label) > 1 else label for i, label in enumerate(labels)]
