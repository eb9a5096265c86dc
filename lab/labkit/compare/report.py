"""Presenting a comparison: ``report.md`` (plots beside it as PNG files), a self-contained
``report.html`` (the same plots embedded), and tables on the terminal.

Both files are rendered from one list of sections (:mod:`.sections`), so they always say the same
thing. This module only reads a :class:`~labkit.compare.model.Comparison`; computing one
(``labkit.compare.run``) writes nothing, so a caller that only wants the verdict never makes
files, and the ``compare`` task decides where the reports go.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .. import outdir, paths
from .model import Comparison
from .plots import PLOTS, make_plots
from .sections import Section, by_notebook, fmt, sections, title, worst

OUT = paths.OUT / "compare"


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
    for (nb, label), group in by_notebook(c.rows).items():
        failed = sum(not r.ok for r in group)
        style = "red" if failed else "green"
        table.add_row(
            nb, *([escape(label)] if several else []), str(len(group)), f"[{style}]{failed}[/]", fmt(worst(group).used)
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
