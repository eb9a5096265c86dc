"""A run's summary: a Markdown file in ``out/<backend>/`` and the same table in the terminal."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

COLUMNS = ("step", "status", "seconds", "failing cell / detail")


def _rows(lab) -> list[tuple[str, str, str, str]]:
    rows = []
    for o in lab.steps:
        if o.cell is not None:
            detail = f"cell {o.cell} ({o.cell_source}): {o.error}"
        else:
            detail = o.error
        rows.append((o.name, o.status, f"{o.seconds:.1f}", detail))
    return rows


def cache_line(cache: dict) -> str:
    """How the compilation cache stood as the run began (see labkit.compile_cache.state)."""
    if not cache.get("enabled"):
        return "compilation cache off"
    if cache.get("warm"):
        return f"compilation cache warm ({cache['programs']} programs)"
    return "compilation cache cold"


def write_markdown(lab, path: Path) -> None:
    verdict = "passed" if lab.ok else "FAILED"
    lines = [
        f"# JAX Lab run: {lab.backend}, {verdict}",
        "",
        f"{len(lab.notebooks)} notebooks, {lab.seconds:.1f} s in all; parameters: {lab.params or 'defaults'}; "
        f"{cache_line(lab.cache)}",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in _rows(lab)]
    if lab.verdict:
        lines += ["", f"Cross-hardware verdict: {lab.verdict.line}"]
    path.write_text("\n".join(lines) + "\n")


def print_table(lab, console: Console | None = None) -> None:
    table = Table(title=f"JAX Lab · {lab.backend} · {lab.seconds:.1f} s · {cache_line(lab.cache)} · {lab.out}")
    for col in COLUMNS:
        table.add_column(col, overflow="fold")
    for name, status, seconds, detail in _rows(lab):
        style = "green" if status == "passed" else "red"
        table.add_row(name, f"[{style}]{status}[/]", seconds, detail)
    console = console or Console()
    console.print(table)
    if lab.verdict:
        style = "green" if lab.verdict.ok and lab.verdict.compared else ("red" if not lab.verdict.ok else "yellow")
        console.print(f"[{style}]verdict:[/] {escape(lab.verdict.line)}")
