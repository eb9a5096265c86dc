"""Presenting a comparison: ``report.md`` (plots beside it as PNG files), a self-contained
``report.html`` (the same plots embedded), and tables on the terminal.

Both files are rendered from one list of sections, so they always say the same thing. This
module only reads a :class:`~labkit.compare.model.Comparison`; computing one
(``labkit.compare.run``) writes nothing, so a caller that only wants the verdict never makes
files, and the ``compare`` task decides where the reports go.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .. import outdir, paths
from .model import Comparison, PerfRow, Row, Run
from .plots import PLOTS, make_plots

OUT = paths.OUT / "compare"


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


# ---------------------------------------------------------------------------------------------
# Sections


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
    for (nb, run), group in _by_notebook(c.rows).items():
        worst = _worst(group)
        bad = [r for r in group if not r.ok]
        rows.append(
            [
                nb,
                *([run] if len(c.runs) > 2 else []),
                str(len(group)),
                str(len(bad)),
                fmt(worst.used),
                worst.key if worst.used or not worst.ok else "—",
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


def _worst(rows: list[Row]) -> Row:
    """The row nearest to failing, or past it: a failure without a measure (a missing key) first."""
    return max(rows, key=lambda r: math.inf if r.used is None and not r.ok else (r.used or 0.0))


def _by_notebook(rows: list[Row]) -> dict[tuple[str, str], list[Row]]:
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


# ---------------------------------------------------------------------------------------------
# Rendering


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(c: Comparison, secs: list[Section]) -> str:
    lines = [f"# {title(c)}", ""]
    for s in secs:
        lines += [f"## {'⚠ ' if s.alert else ''}{s.title}", ""]
        for text in s.text:
            line = f"- {text[2:]}" if text.startswith("• ") else text
            # An alert is one quoted block, so it stands out as a whole.
            lines += [f"> {line}", ">"] if s.alert else [line, ""]
        if s.alert and s.text:
            lines[-1] = ""
        if s.plot:
            lines += [f"![{s.plot}]({s.plot}.png)", ""]
        if s.table:
            lines.append("| " + " | ".join(map(_md_cell, s.table.headers)) + " |")
            lines.append("|" + "---|" * len(s.table.headers))
            lines += ["| " + " | ".join(map(_md_cell, row)) + " |" for row in s.table.rows]
            lines.append("")
    return "\n".join(lines) + "\n"


STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px auto; max-width: 1200px; color: #222; }
h1 { font-size: 22px; } h2 { font-size: 17px; margin-top: 28px; border-bottom: 1px solid #ddd; }
.ok { color: #2e7d32; } .bad { color: #c62828; }
.alert { background: #fff3e0; border-left: 5px solid #e65100; padding: 6px 14px; }
table { border-collapse: collapse; font-size: 12.5px; margin: 8px 0; }
th, td { border: 1px solid #ddd; padding: 3px 7px; text-align: left; vertical-align: top; }
.nowrap { white-space: nowrap; }
th { background: #f5f5f5; } tr.fail td { background: #fdecea; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
img { max-width: 100%; border: 1px solid #eee; }
"""


def _html_cell(text: str) -> str:
    numeric = text in ("—", "inf") or text.replace(".", "", 1).replace("e-", "").replace("e+", "").isdigit()
    if numeric:
        return f'<td class="num">{html.escape(text)}</td>'
    # Short phrases stay whole ("atol 1e-05, rtol 1e-05" would otherwise break inside "1e-05").
    parts = [
        f'<span class="nowrap">{html.escape(p)}</span>' if len(p) <= 60 else html.escape(p) for p in text.split("; ")
    ]
    return f"<td>{'; '.join(parts)}</td>"


def html_report(c: Comparison, secs: list[Section], plots: dict[str, bytes]) -> str:
    verdict = "ok" if c.ok else "bad"
    parts = [
        f'<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title(c))}</title>',
        f"<style>{STYLE}</style></head><body>",
        f'<h1 class="{verdict}">{html.escape(title(c))}</h1>',
    ]
    for s in secs:
        css = ' class="alert"' if s.alert else ""
        parts.append(f"<section{css}><h2>{html.escape(s.title)}</h2>")
        parts += [f"<p>{html.escape(t)}</p>" for t in s.text]
        if s.plot:
            data = base64.b64encode(plots[s.plot]).decode()
            parts.append(f'<img alt="{s.plot}" src="data:image/png;base64,{data}">')
        if s.table:
            parts.append("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in s.table.headers) + "</tr>")
            failing = s.table.failing or [False] * len(s.table.rows)
            for row, bad in zip(s.table.rows, failing, strict=True):
                css = ' class="fail"' if bad else ""
                parts.append(f"<tr{css}>" + "".join(map(_html_cell, row)) + "</tr>")
            parts.append("</table>")
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


MARKER = ".jaxlab-report"  # in every folder write_reports fills: the only folders it writes into again


def write_reports(c: Comparison, out: Path = OUT) -> list[Path]:
    """``out/report.md`` with its plots beside it, and ``out/report.html`` with them embedded:
    the two reports first, then the plots. ``out`` is new, empty, or a folder of earlier reports
    (:data:`MARKER`); nothing else is ever replaced or deleted there."""
    out = outdir.owned_folder(out, MARKER, "--out", "invoke compare")
    plots = make_plots(c)
    secs = sections(c, plots)
    pages = {out / "report.md": markdown(c, secs).encode(), out / "report.html": html_report(c, secs, plots).encode()}
    files = pages | {out / f"{name}.png": plots[name] for name in PLOTS if name in plots}
    written = outdir.fill(out, MARKER, files, "--out")
    for name in PLOTS:  # a plot with nothing to show this time must not linger from an earlier report
        if name not in plots and (out / f"{name}.png").is_file():
            (out / f"{name}.png").unlink()
    return written


def print_table(c: Comparison, console: Console | None = None) -> None:
    """Per notebook, how many results agree and the worst; then what differs, and the speedups."""
    console = console or Console()
    for line in c.refusals:
        console.print(f"[bold yellow]compared despite refusal:[/] {escape(line)}")
    several = len(c.runs) > 2
    table = Table(title=escape(title(c)))
    table.add_column("notebook", no_wrap=True)
    for col in (*(["run"] if several else []), "results", "failed", "worst err/tol"):
        table.add_column(col, justify="left" if col == "run" else "right")
    for (nb, label), group in _by_notebook(c.rows).items():
        failed = sum(not r.ok for r in group)
        style = "red" if failed else "green"
        table.add_row(
            nb, *([escape(label)] if several else []), str(len(group)), f"[{style}]{failed}[/]", fmt(_worst(group).used)
        )
    console.print(table)
    failing = [r for r in c.rows if not r.ok]
    if failing:
        bad = Table(title="what differs", title_style="bold red")
        for col in ("notebook/key", *(["run"] if several else []), "what differs"):
            bad.add_column(col, overflow="fold")
        for r in failing:
            bad.add_row(escape(f"{r.notebook}/{r.key}"), *([escape(r.run)] if several else []), escape(r.why))
        console.print(bad)
    speed = [p for p in c.perf if p.kind == "speedup"]
    if speed:
        perf = Table(title="speedups (× faster), per run")
        perf.add_column("notebook")
        perf.add_column("speedup")
        for run in c.runs:
            perf.add_column(escape(run.label), justify="right")
        for p in speed:
            perf.add_row(p.notebook, escape(p.key), *(fmt(p.values.get(r.label)) for r in c.runs))
        console.print(perf)
    console.print(f"[{'green' if c.ok else 'red'}]{escape(c.summary())}[/]")
