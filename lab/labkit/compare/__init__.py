"""Comparing lab runs across hardware: every recorded result of each run against the first's.

Values must agree within the tolerance table's bound for their dtype, facts must be equal
(:mod:`.numerics`); timings and metrics depend on the hardware, so they are only put side by
side, with the speedups their timings give (:mod:`.perf`). Runs that did not run the same lab
on the hardware they name are refused first (:mod:`.refusals`); ``force=True`` compares them
anyway and the comparison lists each refusal it overrode.

:func:`run` computes and writes nothing, so anything can ask for a verdict: ::

    comparison = compare.run([reference.path("cpu", smoke=True), "out/cpu"])  # paths or results dicts
    comparison.ok, comparison.summary(), comparison.failures  # failures: "notebook/key: why" lines

Presenting it is :mod:`.report`'s job (report files with :mod:`.plots`, terminal tables), which
the ``compare`` task calls. Every module imports the data it shares from :mod:`.model`, which
imports none of them, and nothing here imports :mod:`.report`: computing a verdict never pulls
in how it is shown.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import UsageError
from .load import Source, load, load_all
from .model import Comparison, PerfRow, Row, Run
from .numerics import compare_runs
from .perf import performance
from .refusals import refusals

__all__ = ["run", "Comparison", "Row", "PerfRow", "Run", "Source", "load", "load_all", "refusals"]


def run(sources: Sequence[Source], force: bool = False, labels: Sequence[str] | None = None) -> Comparison:
    """Compare every run in ``sources`` (run folders, results files or results dicts) with the
    first. ``labels`` names the runs (default: from their folders or files, see
    :func:`.load.labels_for`).

    Raises UsageError for a source that cannot be read or is of another results format, and for
    runs that are not comparable unless ``force``.
    """
    if len(sources) < 2:
        raise UsageError("compare needs two runs or more: the baseline first, then the runs to compare with it")
    runs = load_all(sources, labels)
    refused = refusals(runs)
    if refused and not force:
        lines = "\n".join(f"  - {line}" for line in refused)
        raise UsageError(f"these runs are not comparable (--force compares them anyway):\n{lines}")
    rows = [row for other in runs[1:] for row in compare_runs(runs[0], other)]
    return Comparison(runs, rows, performance(runs), refused)
