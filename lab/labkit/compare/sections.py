"""What a comparison's report says, as a list of sections (text, a table, a plot's name), before it
is rendered: :mod:`.report` renders the same list as markdown, as HTML and on the terminal, so the
three always say the same thing.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from ..tolerance import ACROSS_PROCESS_COUNTS
from .model import Comparison, PerfRow, Row, Run


@dataclass
class Grid:
    headers: list[str]
    rows: list[list[str]]
    failing: list[bool] = field(default_factory=list)  # rows to highlight


@dataclass
class Section:
    title: str
    text: list[str] = field(default_factory=list)
    table: Grid | None = None
    plot: str | None = None  # a name from PLOTS
    alert: bool = False  # shown prominently: refusals overridden, inconsistencies


def fmt(x: float | None) -> str:
    if x is None:
        return "—"
    if x == 0:
        return "0"
    if math.isinf(x):
        return "inf"
    return f"{x:.3g}"


def sections(c: Comparison, plots: dict[str, bytes]) -> list[Section]:
    found = [
        _refusals(c),
        _runs(c),
        _inconsistencies(c),
        _overview(c, plots),
        _all_results(c),
        _exceptions(c),
        _speedups(c, plots),
        _timings(c, plots),
        _metrics(c),
    ]
    return [s for s in found if s]


def title(c: Comparison) -> str:
    verdict = "consistent" if c.ok else "INCONSISTENT"
    return f"JAX Lab comparison: {' vs '.join(r.label for r in c.runs)} · {verdict}"


def _refusals(c: Comparison) -> Section | None:
    if not c.refusals:
        return None
    return Section(
        "Compared despite refusals (--force)",
        ["These runs would have been refused; their differences may explain disagreements below:"]
        + [f"• {line}" for line in c.refusals],
        alert=True,
    )


def _runs(c: Comparison) -> Section:
    def recorded(name: str) -> Callable[[Run], str]:
        return lambda r: str(r.environment.get(name, "—"))

    fields: list[tuple[str, Callable[[Run], str]]] = [("source", lambda r: r.source), ("backend", lambda r: r.backend)]
    fields += [
        (name, recorded(name))
        for name in (
            "platform",
            "device_kind",
            "device_count",
            "process_count",
            "jax",
            "jaxlib",
            "haiku",
            "numpy",
            "python",
            "machine",
            "lab_version",
            "lab_revision",
            "time",
        )
    ]
    fields += [
        ("parameters", lambda r: str(r.data["run"].get("params") or "defaults")),
        ("run ok", lambda r: str(r.data["run"].get("ok", "—"))),
    ]
    headers = ["", *(f"{r.label} (baseline)" if i == 0 else r.label for i, r in enumerate(c.runs))]
    text = [f"Each run is compared with the baseline, {c.baseline.label}."]
    counts = sorted({r.environment.get("process_count", 1) for r in c.runs})
    if len(counts) > 1:
        text.append(
            f"The runs ran in {' and '.join(map(str, counts))} processes: values are held to the "
            f"accumulation bound ({ACROSS_PROCESS_COUNTS})."
        )
    for run in c.runs:  # a failed step recorded less, so its results show below as missing
        failed = [s["name"] for s in run.data["run"].get("steps", []) if s.get("status") != "passed"]
        if failed or run.data["run"].get("ok") is False:
            text.append(f"{run.label} did not pass: {', '.join(failed) or 'see its summary'}.")
    return Section("Runs", text, Grid(headers, [[name, *(get(r) for r in c.runs)] for name, get in fields]))


def _inconsistencies(c: Comparison) -> Section | None:
    failing = [r for r in c.rows if not r.ok]
    if not failing:
        return None
    rows = [[f"{r.notebook}/{r.key}", r.run, r.kind, r.why] for r in failing]
    return Section(
        f"Inconsistencies ({len(failing)})",
        [],
        Grid(["notebook/key", "run", "kind", "what differs"], rows, [True] * len(rows)),
        alert=True,
    )


def _overview(c: Comparison, plots: dict[str, bytes]) -> Section:
    text = [
        c.summary(),
        "Values pass when every element is within atol + rtol·|baseline|, the looser of the two "
        "backends' bounds for the dtype (tolerance.py); results marked as accumulating (sums, matmuls, "
        "training) get the accumulation bound. Large arrays are kept as statistics and a sample: the "
        "sample, min and max are held to the elementwise bound, sum, mean and std to the accumulation "
        "bound relative to the array's rms. Facts must be equal, floats in them within the float32 "
        "bound. Timings and metrics depend on the hardware and are only reported.",
    ]
    rows, failing = [], []
    for (nb, run), group in by_notebook(c.rows).items():
        top = worst(group)
        bad = [r for r in group if not r.ok]
        rows.append(
            [
                nb,
                *([run] if len(c.runs) > 2 else []),
                str(len(group)),
                str(len(bad)),
                fmt(top.used),
                top.key if top.used or not top.ok else "—",
            ]
        )
        failing.append(bool(bad))
    headers = [
        "notebook",
        *(["run"] if len(c.runs) > 2 else []),
        "results",
        "failed",
        "worst error / tolerance",
        "worst result",
    ]
    return Section("Results by notebook", text, Grid(headers, rows, failing), "errors" if "errors" in plots else None)


def worst(rows: list[Row]) -> Row:
    """The row nearest to failing, or past it: a failure without a measure (a missing key) first."""
    return max(rows, key=lambda r: math.inf if r.used is None and not r.ok else (r.used or 0.0))


def by_notebook(rows: list[Row]) -> dict[tuple[str, str], list[Row]]:
    groups: dict[tuple[str, str], list[Row]] = {}
    for r in rows:
        groups.setdefault((r.notebook, r.run), []).append(r)
    return groups


def _all_results(c: Comparison) -> Section:
    several = len(c.runs) > 2
    headers = [
        "notebook",
        "key",
        "kind",
        *(["run"] if several else []),
        "max abs err",
        "max rel err",
        "error / tolerance",
        "tolerance",
        "exception",
        "status",
    ]
    rows = [
        [
            r.notebook,
            r.key,
            r.kind,
            *([r.run] if several else []),
            fmt(r.max_abs),
            fmt(r.max_rel),
            fmt(r.used),
            r.tolerance,
            ", ".join(f"{a.backend}/{a.dtype}" for a in r.allowances) or "—",
            "pass" if r.ok else "FAIL",
        ]
        for r in c.rows
    ]  # what differs is listed under Inconsistencies
    return Section("All results", [], Grid(headers, rows, [not r.ok for r in c.rows]))


def _exceptions(c: Comparison) -> Section | None:
    used = {a: None for r in c.rows for a in r.allowances}
    if not used:
        return None
    return Section(
        "Named tolerance exceptions applied",
        [f"• {a.backend}/{a.dtype} (atol {a.atol:.0e}, rtol {a.rtol:.0e}): {a.reason}" for a in used],
    )


def _perf_table(c: Comparison, rows: list[PerfRow], ratio: bool) -> Grid:
    """A column per run; with ``ratio``, also how many times faster each run is than the baseline."""
    labels = [r.label for r in c.runs]
    others = labels[1:] if ratio else []
    headers = ["notebook", "key", *labels, *(f"{o}: × faster than {labels[0]}" for o in others)]
    body = []
    for p in rows:
        base = p.values.get(labels[0])
        cells = [fmt(p.values.get(label)) for label in labels]
        speed = [fmt(base / v) if base and v else "—" for v in (p.values.get(o) for o in others)]
        body.append([p.notebook, p.key, *cells, *speed])
    return Grid(headers, body)


def _speedups(c: Comparison, plots: dict[str, bytes]) -> Section | None:
    rows = [p for p in c.perf if p.kind == "speedup"]
    if not rows:
        return None
    return Section(
        "Speedups",
        [
            "Derived from each run's timings: how many times faster the first variant "
            "is than the second on that run's hardware."
        ],
        _perf_table(c, rows, ratio=False),
        "speedups" if "speedups" in plots else None,
    )


def _timings(c: Comparison, plots: dict[str, bytes]) -> Section | None:
    rows = [p for p in c.perf if p.kind == "timing"]
    if not rows:
        return None
    return Section(
        "Timings (seconds, median of repeats)",
        [],
        _perf_table(c, rows, ratio=len(c.runs) > 1),
        "timings" if "timings" in plots else None,
    )


def _metrics(c: Comparison) -> Section | None:
    rows = [p for p in c.perf if p.kind == "metric"]
    if not rows:
        return None
    return Section(
        "Metrics",
        ["Hardware-dependent figures the notebooks record (speedups, bandwidths, shares of peak), side by side."],
        _perf_table(c, rows, ratio=False),
    )
