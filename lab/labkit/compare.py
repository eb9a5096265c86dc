"""Comparing lab runs across hardware: every recorded result of each run against the first's.

Values must agree within the tolerance table's bound for their dtype (the looser of the two
backends' bounds, see :func:`labkit.tolerance.between`); facts must be equal; timings and
metrics depend on the hardware, so they are only reported side by side, with speedups.

Runs that did not run the same lab are refused before anything is compared: another lab
version, another notebook source, other parameters, or a run that ran on another platform than
its backend's (a ``cuda`` run that fell back to the CPU). ``force=True`` compares them anyway
and the report lists each refusal it overrode.

    comparison = compare.run(["tests/reference/cpu.json", "out/cuda"])
    compare.print_table(comparison)
    if not comparison.ok: ...  # comparison.failures names each notebook/key and why
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import paths
from .backends import BACKENDS
from .errors import UsageError
from .params import RUNNER_SET
from .results import FORMAT
from .tolerance import Allowance, Bound, between


@dataclass
class Run:
    """One run's results, as read from its ``results.json`` (or a copy such as a reference)."""

    path: Path
    label: str
    data: dict

    @property
    def backend(self) -> str:
        return self.data["run"].get("backend") or self.environment.get("backend") or "?"

    @property
    def environment(self) -> dict:
        return self.data.get("environment") or {}

    @property
    def notebooks(self) -> dict[str, dict]:
        return self.data["notebooks"]


@dataclass
class Row:
    """One recorded value or fact of one notebook, compared between the baseline and ``run``."""

    run: str  # label of the run compared with the baseline
    notebook: str
    key: str
    kind: str  # value | fact | notebook
    ok: bool
    why: str = ""  # what differs, when it fails
    max_abs: float | None = None
    max_rel: float | None = None
    # The largest error as a share of the error allowed there: above 1 fails.
    used: float | None = None
    bound: Bound | None = None
    # Summarised arrays: the bound their statistics (sum, mean, std) are held to.
    stats_bound: Bound | None = None

    @property
    def allowances(self) -> tuple[Allowance, ...]:
        bounds = [b for b in (self.bound, self.stats_bound) if b]
        return tuple(dict.fromkeys(a for b in bounds for a in b.allowances))

    @property
    def tolerance(self) -> str:
        if self.bound is None:
            return "equal" if self.kind == "fact" else ""
        text = _bound_text(self.bound)
        if self.stats_bound:
            text += f"; sum/mean/std {_bound_text(self.stats_bound)} × rms"
        return text


def _bound_text(bound: Bound) -> str:
    if bound.atol == bound.rtol == 0:
        return "exact"
    return f"atol {bound.atol:.0e}, rtol {bound.rtol:.0e}"


@dataclass
class PerfRow:
    """A hardware-dependent figure of one notebook, per run: never pass/fail."""

    notebook: str
    key: str
    kind: str  # timing (seconds) | speedup (derived from timings) | metric
    values: dict[str, float | None]  # run label -> figure


@dataclass
class Comparison:
    runs: list[Run]
    rows: list[Row]
    perf: list[PerfRow]
    # Refusals that force=True overrode: the report lists them first.
    refusals: list[str]
    out: Path
    reports: list[Path] = field(default_factory=list)

    @property
    def baseline(self) -> Run:
        return self.runs[0]

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rows)

    @property
    def failures(self) -> list[str]:
        """One line per inconsistency: ``notebook/key: why`` (with the run when there are several)."""
        several = len(self.runs) > 2
        return [f"{f'[{r.run}] ' if several else ''}{r.notebook}/{r.key}: {r.why}" for r in self.rows if not r.ok]

    def summary(self) -> str:
        """The verdict in one line."""
        names = f"{', '.join(r.label for r in self.runs[1:])} against {self.baseline.label}"
        forced = f" (forced past {len(self.refusals)} refusal(s))" if self.refusals else ""
        if self.ok:
            return f"{names}: all {len(self.rows)} results agree{forced}"
        fails = self.failures
        more = f" and {len(fails) - 3} more" if len(fails) > 3 else ""
        return f"{names}: {len(fails)} of {len(self.rows)} results disagree{forced}: {'; '.join(fails[:3])}{more}"


# ---------------------------------------------------------------------------------------------
# Reading runs


def load(source: str | Path) -> Run:
    """A run folder (its ``results.json``) or a results JSON file; anything else is a usage error."""
    path = Path(source)
    file = path / "results.json" if path.is_dir() else path
    if not path.exists():
        raise UsageError(f"{source}: no such run folder or results file")
    if not file.is_file():
        raise UsageError(f"{source}: no results.json in this folder; give a run folder (e.g. out/cpu) "
                         f"or a results file (e.g. tests/reference/cpu.json)")
    try:
        data = json.loads(file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UsageError(f"{file}: cannot be read as lab results ({err})") from None
    if not (isinstance(data, dict) and isinstance(data.get("notebooks"), dict) and isinstance(data.get("run"), dict)):
        raise UsageError(f"{file}: not a lab results file (it has no run and notebooks)")
    if data.get("format") != FORMAT:
        raise UsageError(f"{file}: results format {data.get('format')!r}; this lab reads format {FORMAT}")
    return Run(file, "", data)


def load_all(sources: Sequence[str | Path]) -> list[Run]:
    runs = [load(s) for s in sources]
    for run, label in zip(runs, _labels([r.path for r in runs]), strict=True):
        run.label = label
    return runs


def _labels(files: list[Path]) -> list[str]:
    """Short distinct names: a run folder's name (out/cuda -> cuda), or a file's stem (cpu-smoke)."""

    def name(file: Path, depth: int) -> str:
        base = file.parent if file.name == "results.json" else file.with_suffix("")
        return "/".join(base.parts[-depth:])

    short = [name(f, 1) for f in files]
    labels = [name(f, 2) if short.count(s) > 1 else s for f, s in zip(files, short, strict=True)]
    # Still the same (the same file twice): number them.
    return [f"{label} #{i + 1}" if labels.count(label) > 1 else label for i, label in enumerate(labels)]


# ---------------------------------------------------------------------------------------------
# Refusals: runs that did not run the same lab on the hardware they name


def refusals(runs: list[Run]) -> list[str]:
    """Why these runs are not comparable, one line each; empty when they are."""
    found = [line for run in runs if (line := _wrong_platform(run))]
    base = runs[0]
    for other in runs[1:]:
        found += _different_lab(base, other)
    return found


def _wrong_platform(run: Run) -> str | None:
    backend = BACKENDS.get(run.backend)
    if backend is None:
        return f"{run.label}: unknown backend {run.backend!r}; valid backends: {', '.join(BACKENDS)}"
    recorded = {nb.get("environment", {}).get("platform") for nb in run.notebooks.values()}
    recorded = sorted(p for p in recorded | {run.environment.get("platform")} if p)
    if not recorded:
        return f"{run.label}: records no platform, so it cannot show it ran on {backend.platform!r}"
    wrong = [p for p in recorded if p != backend.platform]
    if wrong:
        return (f"{run.label}: a {run.backend!r} run that ran on platform {', '.join(map(repr, wrong))}, "
                f"not {backend.platform!r}")
    return None


def _different_lab(base: Run, other: Run) -> list[str]:
    found = []
    versions = base.environment.get("lab_version"), other.environment.get("lab_version")
    if versions[0] != versions[1]:
        found.append(f"lab version differs: {versions[0]} in {base.label}, {versions[1]} in {other.label}")
    common = [nb for nb in base.notebooks if nb in other.notebooks]
    for nb in common:
        digests = base.notebooks[nb].get("source_digest"), other.notebooks[nb].get("source_digest")
        if digests[0] != digests[1] or digests[0] is None:
            found.append(f"{nb}: notebook source differs ({digests[0]} in {base.label}, {digests[1]} in "
                         f"{other.label}); rerun both from the same lab revision")
    found += _different_params(base, other, common)
    return found


def _different_params(base: Run, other: Run, notebooks: list[str]) -> list[str]:
    """Parameters as the notebooks received them (typed, defaults included), so ``-p smoke=1``
    and ``-p smoke=true`` are the same run; the backend differs by design."""
    differing: dict[tuple, list[str]] = {}
    for nb in notebooks:
        pa, pb = (_effective(run.notebooks[nb]) for run in (base, other))
        for name in sorted(pa.keys() | pb.keys()):
            va, vb = (repr(p[name]) if name in p else "(unset)" for p in (pa, pb))
            if va != vb:
                differing.setdefault((name, va, vb), []).append(nb)
    given = f"(given: {base.data['run'].get('params', {})} vs {other.data['run'].get('params', {})})"
    return [f"parameter {name} differs: {va} in {base.label}, {vb} in {other.label} {given}; notebooks "
            f"{', '.join(nbs)}" for (name, va, vb), nbs in differing.items()]


def _effective(record: dict) -> dict:
    return {k: v for k, v in (record.get("params") or {}).items() if k not in RUNNER_SET}


# ---------------------------------------------------------------------------------------------
# Values and facts


@dataclass
class Measure:
    """How far ``actual`` is from ``expected``: max abs and max rel error, and the largest share
    of the allowed error (``atol + rtol * scale``) any element used, at flat index ``worst``."""

    max_abs: float
    max_rel: float
    used: float
    worst: int

    @property
    def ok(self) -> bool:
        return self.used <= 1.0


def measure(actual, expected, atol: float, rtol: float, scale=None) -> Measure:
    """NaN matches NaN and an infinity the same infinity, as in ``numpy.testing.assert_allclose``;
    ``scale`` (default ``|expected|``) is what the relative error is relative to."""
    a = np.asarray(actual, dtype=np.float64).ravel()
    e = np.asarray(expected, dtype=np.float64).ravel()
    scale = np.abs(e) if scale is None else np.broadcast_to(np.asarray(scale, dtype=np.float64), e.shape)
    if a.size == 0:
        return Measure(0.0, 0.0, 0.0, 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        same = (a == e) | (np.isnan(a) & np.isnan(e))
        diff = np.where(same, 0.0, np.abs(a - e))
        diff = np.where(np.isnan(diff), np.inf, diff)  # a NaN against a number is infinitely off
        rel = np.where(diff == 0, 0.0, diff / scale)
        used = np.where(diff == 0, 0.0, diff / (atol + rtol * scale))
    rel, used = (np.where(np.isnan(x), np.inf, x) for x in (rel, used))
    worst = int(np.argmax(used))
    return Measure(float(diff.max()), float(rel.max()), float(used[worst]), worst)


def compare_runs(base: Run, other: Run) -> list[Row]:
    """Every value and fact of every notebook in either run."""
    rows = []
    backends = (base.backend, other.backend)
    for nb in sorted(base.notebooks.keys() | other.notebooks.keys()):
        if nb not in other.notebooks or nb not in base.notebooks:
            has = base if nb in base.notebooks else other
            rows.append(Row(other.label, nb, "*", "notebook", False, f"notebook recorded in {has.label} only"))
            continue
        a, b = base.notebooks[nb], other.notebooks[nb]
        for kind, compare_one in (("value", compare_value), ("fact", compare_fact)):
            section = f"{kind}s"
            ra, rb = a.get(section) or {}, b.get(section) or {}
            for key in sorted(ra.keys() | rb.keys()):
                if key not in rb or key not in ra:
                    has = base if key in ra else other
                    rows.append(Row(other.label, nb, key, kind, False, f"recorded in {has.label} only"))
                    continue
                rows.append(compare_one(ra[key], rb[key], backends, Row(other.label, nb, key, kind, True)))
    return rows


def compare_value(expected: dict, actual: dict, backends, row: Row) -> Row:
    """An encoded array (see ``results.encode_array``) against the baseline's."""
    if expected["dtype"] != actual["dtype"]:
        return _fail(row, f"dtype {actual['dtype']}, baseline {expected['dtype']}")
    if expected["shape"] != actual["shape"]:
        return _fail(row, f"shape {actual['shape']}, baseline {expected['shape']}")
    accumulates = bool(expected.get("accumulates") or actual.get("accumulates"))
    try:
        row.bound = between(expected["dtype"], backends, accumulates)
    except (KeyError, TypeError):
        return _fail(row, f"dtype {expected['dtype']} has no bound in the tolerance table (labkit/tolerance.py)")
    if "data" in expected and "data" in actual:
        return _compare_data(expected["data"], actual["data"], row)
    if "summary" in expected and "summary" in actual:
        row.stats_bound = between(expected["dtype"], backends, accumulates=True)
        return _compare_summary(expected, actual, row)
    return _fail(row, "recorded whole in one run and summarised in the other")


def _compare_data(expected, actual, row: Row) -> Row:
    e, a = np.asarray(expected, dtype=np.float64), np.asarray(actual, dtype=np.float64)
    if e.shape != a.shape:
        return _fail(row, f"data of shape {list(a.shape)}, baseline {list(e.shape)}")
    m = measure(a, e, row.bound.atol, row.bound.rtol)
    _set_measure(row, m)
    if not m.ok:
        at = np.unravel_index(m.worst, e.shape) if e.ndim else ()
        where = f" at [{', '.join(map(str, at))}]" if at else ""
        allowed = row.bound.atol + row.bound.rtol * abs(e.flat[m.worst])
        _fail(row, f"{a.flat[m.worst]:.9g}{where}, baseline {e.flat[m.worst]:.9g}: off by "
                   f"{abs(a.flat[m.worst] - e.flat[m.worst]):.3g}, allowed {allowed:.3g}")
    return row


def _compare_summary(expected: dict, actual: dict, row: Row) -> Row:
    """A large array kept as statistics and a sample.

    An error of at most ``atol + rtol * |x|`` in every element moves the mean and the standard
    deviation by at most ``atol + rtol * rms(x)`` and the sum by ``n`` times that, so the
    statistics are held to the accumulation bound relative to the array's rms (relative to
    themselves would fail a mean of ~0, e.g. of standardised data, for a harmless rounding); min,
    max and the sample are elements, held to the elementwise bound.
    """
    se, sa = expected["summary"], actual["summary"]
    if se.get("sample_index") != sa.get("sample_index"):
        return _fail(row, "sampled at other indices than the baseline")
    n = math.prod(expected["shape"])
    rms = math.hypot(se["mean"], se["std"])
    el, st = row.bound, row.stats_bound
    checks = {
        "sum": measure(sa["sum"], se["sum"], n * st.atol, st.rtol, n * rms),
        "mean": measure(sa["mean"], se["mean"], st.atol, st.rtol, rms),
        "std": measure(sa["std"], se["std"], st.atol, st.rtol, rms),
        "min": measure(sa["min"], se["min"], el.atol, el.rtol),
        "max": measure(sa["max"], se["max"], el.atol, el.rtol),
        "sample": measure(sa["sample"], se["sample"], el.atol, el.rtol),
    }
    row.max_abs = max(m.max_abs for m in checks.values())
    row.max_rel = max(m.max_rel for m in checks.values())
    name, worst = max(checks.items(), key=lambda item: item[1].used)
    row.used = worst.used
    if not worst.ok:
        got, base = (s[name][worst.worst] if name == "sample" else s[name] for s in (sa, se))
        what = f"sample element {se['sample_index'][worst.worst]}" if name == "sample" else name
        _fail(row, f"{what} {got:.9g}, baseline {base:.9g} ({worst.used:.3g} times the allowed difference)")
    return row


def compare_fact(expected, actual, backends, row: Row) -> Row:
    """Equal JSON values; floats (a fraction, a ratio) within the float32 bound."""
    bound = between("float32", backends)
    measures = []
    for where, e, a in _leaves(expected, actual):
        if _numbers(e, a) and (isinstance(e, float) or isinstance(a, float)):
            measures.append(measure(a, e, bound.atol, bound.rtol))
            if measures[-1].ok:
                continue
        elif type(e) is type(a) and e == a:
            continue
        _set_facts_measure(row, bound, measures)
        return _fail(row, f"{where or 'value'}: {_short(a)}, baseline {_short(e)}")
    _set_facts_measure(row, bound, measures)
    return row


def _set_facts_measure(row: Row, bound: Bound, measures: list[Measure]) -> None:
    """Errors of the fact's floats; a fact without floats is compared for equality, no bound."""
    if measures:
        row.bound = bound
        row.max_abs = max(m.max_abs for m in measures)
        row.max_rel = max(m.max_rel for m in measures)
        row.used = max(m.used for m in measures)


def _leaves(a, b, where: str = "") -> Iterator[tuple[str, object, object]]:
    """Matching leaves of two JSON values; where their structure differs, the two subtrees."""
    if isinstance(a, dict) and isinstance(b, dict) and a.keys() == b.keys():
        for k in a:
            yield from _leaves(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            yield from _leaves(x, y, f"{where}[{i}]")
    else:
        yield where, a, b


def _numbers(*xs) -> bool:
    return all(isinstance(x, int | float) and not isinstance(x, bool) for x in xs)


def _short(x, limit: int = 80) -> str:
    text = json.dumps(x)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _set_measure(row: Row, m: Measure) -> None:
    row.max_abs, row.max_rel, row.used = m.max_abs, m.max_rel, m.used


def _fail(row: Row, why: str) -> Row:
    row.ok, row.why = False, why
    return row


# ---------------------------------------------------------------------------------------------
# Timings, speedups and metrics: reported side by side, never pass/fail

# Timing keys name what was timed and how: "gelu_jit", "gelu_eager_tiny", "layer_loop", "pmap".
# Longer names first, so "jit_sharded" is not read as "jit".
VARIANTS = ("jit_sharded", "shard_map", "op_by_op", "by_hand", "pmap", "vmap", "loop", "eager", "numpy", "jit")
# (faster, slower, label): the speedup of the first over the second is t(slower) / t(faster).
SPEEDUPS = (
    ("jit", "eager", "jit vs op-by-op"),
    ("jit", "op_by_op", "jit vs op-by-op"),
    ("vmap", "loop", "vmap vs loop"),
    ("vmap", "by_hand", "vmap vs hand-batched"),
    ("jit", "numpy", "jit vs NumPy"),
    ("shard_map", "pmap", "shard_map vs pmap"),
    ("jit_sharded", "pmap", "jit-sharded vs pmap"),
)


def split_timing(key: str) -> tuple[str, str] | None:
    """``"gelu_eager_tiny"`` -> ``("gelu_tiny", "eager")``; None if no known variant is named."""
    tokens = key.split("_")
    for variant in VARIANTS:
        v = variant.split("_")
        for i in range(len(tokens) - len(v) + 1):
            if tokens[i: i + len(v)] == v:
                return "_".join(tokens[:i] + tokens[i + len(v):]), variant
    return None


def speedups(timings: dict[str, float]) -> dict[str, float]:
    """Speedups of one notebook derived from its timings, e.g. ``{"gelu: jit vs op-by-op": 18.9}``."""
    by = {split: t for key, t in timings.items() if (split := split_timing(key))}
    found = {}
    for (subject, variant), t_fast in by.items():
        for fast, slow, label in SPEEDUPS:
            if variant == fast and (subject, slow) in by and t_fast > 0:
                found[f"{subject}: {label}" if subject else label] = by[(subject, slow)] / t_fast
    return found


def performance(runs: list[Run]) -> list[PerfRow]:
    """Every timing, derived speedup and metric, one row each with a column per run."""
    rows = []
    notebooks = sorted({nb for run in runs for nb in run.notebooks})
    for nb in notebooks:
        per_run = {run.label: run.notebooks.get(nb, {}) for run in runs}
        figures = {
            "timing": {label: rec.get("timings") or {} for label, rec in per_run.items()},
            "speedup": {label: speedups(rec.get("timings") or {}) for label, rec in per_run.items()},
            "metric": {label: rec.get("metrics") or {} for label, rec in per_run.items()},
        }
        for kind, by_run in figures.items():
            for key in sorted({k for found in by_run.values() for k in found}):
                rows.append(PerfRow(nb, key, kind, {label: found.get(key) for label, found in by_run.items()}))
    return rows


# ---------------------------------------------------------------------------------------------


def run(sources: Sequence[str | Path], out: Path = paths.OUT / "compare", force: bool = False) -> Comparison:
    """Compare every run in ``sources`` with the first; write ``out/report.md`` and ``report.html``.

    Raises UsageError for a source that cannot be read, and for runs that are not comparable
    unless ``force`` (then the report lists what was overridden).
    """
    if len(sources) < 2:
        raise UsageError("compare needs two runs or more: the baseline first, then the runs to compare with it")
    runs = load_all(sources)
    refused = refusals(runs)
    if refused and not force:
        lines = "\n".join(f"  - {line}" for line in refused)
        raise UsageError(f"these runs are not comparable (--force compares them anyway):\n{lines}")
    rows = [row for other in runs[1:] for row in compare_runs(runs[0], other)]
    comparison = Comparison(runs, rows, performance(runs), refused, Path(out))
    from .report import write_reports

    comparison.reports = write_reports(comparison)
    return comparison


def print_table(comparison: Comparison, console=None) -> None:
    """The comparison as tables on the terminal (see :mod:`labkit.report`)."""
    from .report import print_table as show

    show(comparison, console)
