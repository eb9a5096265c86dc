"""The plots of a comparison's reports, as PNG bytes: each result's error as a share of its
tolerance, and the speedups and timings per run.

matplotlib's ``Figure`` directly, not pyplot: no global figure state and no display needed, so
reports can be written from any process, headless included.
"""

from __future__ import annotations

import io

import numpy as np

from .model import Comparison

# Plot names: the files report.md links (<name>.png) and the sections of report.html embed.
PLOTS = ("errors", "speedups", "timings")
# The errors plot draws exact matches at FLOOR and missing or far-off results at CAP (log axis).
FLOOR, CAP = 1e-5, 1e3


def figure(**kwargs):
    """A new matplotlib Figure. matplotlib is imported here, when a report draws, not when the
    runner or the verdict imports compare: it takes a second."""
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return buf.getvalue()


def errors_plot(c: Comparison) -> bytes | None:
    """Per notebook, each result's largest error as a share of its tolerance (log scale)."""
    rows = [r for r in c.rows if r.used is not None or not r.ok]
    if not rows:
        return None
    notebooks = sorted({r.notebook for r in c.rows})
    others = [run.label for run in c.runs[1:]]
    fig = figure(figsize=(10, 4.8))
    # Fixed margins: a layout engine would measure every label and double the drawing time.
    fig.subplots_adjust(left=0.13, right=0.98, top=0.92, bottom=0.3)
    ax = fig.add_subplot()
    ax.axhspan(1, CAP * 3, color="#fde0dc", zorder=0)
    ax.axhline(1, color="#c62828", lw=1.2, label="tolerance")
    jitter = np.random.default_rng(0)  # spreads overlapping points; fixed so the plot is repeatable
    for i, label in enumerate(others):
        offset = (i - (len(others) - 1) / 2) * 0.25
        for ok in (True, False):
            pts = [r for r in rows if r.run == label and r.ok == ok]
            if not pts:
                continue
            x = [notebooks.index(r.notebook) + offset + jitter.uniform(-0.08, 0.08) for r in pts]
            y = [CAP if r.used is None else min(max(r.used, FLOOR), CAP) for r in pts]
            # None is scatter's own default for the size and the alpha a style leaves unset.
            marker, color, size, alpha = ("o", f"C{i}", None, 0.7) if ok else ("X", "#c62828", 60, None)
            suffix = "" if ok else " (failing)"
            ax.scatter(x, y, s=size, marker=marker, color=color, alpha=alpha, label=f"{label}{suffix}", zorder=3)
    ax.set_yscale("log")
    ax.set_ylim(FLOOR / 2, CAP * 3)
    ticks = [FLOOR, 1e-4, 1e-3, 1e-2, 0.1, 1, 10, 100, CAP]
    ax.set_yticks(ticks, ["exact", "1e-4", "1e-3", "0.01", "0.1", "1", "10", "100", "≥1000 / missing"])
    ax.set_xticks(range(len(notebooks)), notebooks, rotation=30, ha="right")
    ax.set_ylabel("largest error / allowed error")
    ax.set_title(f"Each result's error against {c.baseline.label}, as a share of its tolerance (≤ 1 passes)")
    ax.legend(loc="upper right", fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)


def bars_plot(c: Comparison, kind: str, xlabel: str, title: str, unity: bool = False) -> bytes | None:
    """Horizontal bars, a group per timing (or speedup) and a bar per run, on a log axis."""
    rows = [p for p in c.perf if p.kind == kind and any(v and v > 0 for v in p.values.values())]
    if not rows:
        return None
    labels = [r.label for r in c.runs]
    height = 0.8 / len(labels)
    names = [f"{p.notebook[:2]} · {p.key}" for p in rows]
    inches = 1.4 + 0.28 * len(rows) * len(labels)
    fig = figure(figsize=(10, inches))
    # Room for the longest name at the left (about 0.075 inch a character at this font size).
    fig.subplots_adjust(
        left=min(0.5, 0.04 + 0.0075 * max(map(len, names))), right=0.98, top=1 - 0.45 / inches, bottom=0.6 / inches
    )
    ax = fig.add_subplot()
    for i, label in enumerate(labels):
        y = [j + (i - (len(labels) - 1) / 2) * height for j in range(len(rows))]
        widths = [p.values.get(label) or 0 for p in rows]
        ax.barh(y, widths, height=height * 0.9, color=f"C{i}", label=label)
    ax.set_xscale("log")
    ax.set_yticks(range(len(rows)), names, fontsize=8)
    ax.invert_yaxis()
    if unity:
        ax.axvline(1, color="black", lw=0.8)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)


def make_plots(c: Comparison) -> dict[str, bytes]:
    made = {
        "errors": errors_plot(c),
        "speedups": bars_plot(c, "speedup", "times faster (log)", "Speedups per run", unity=True),
        "timings": bars_plot(c, "timing", "seconds (log)", "Timings per run"),
    }
    return {name: png for name, png in made.items() if png}
