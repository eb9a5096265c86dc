"""What a comparison is made of: the runs read, a row per recorded result, a row per
hardware-dependent figure, and the :class:`Comparison` that holds them and gives the verdict.

Plain data with no I/O, so every other module of the package (and whoever presents a
comparison) can import it without importing anything else.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..tolerance import Allowance, Bound


@dataclass
class Run:
    """One run's results, as read from its ``results.json`` (or a copy such as a reference, or a
    results dict handed over directly; then ``path`` is None)."""

    path: Path | None
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

    @property
    def source(self) -> str:
        """Where the results came from, for the report."""
        return str(self.path) if self.path else "(results given directly)"


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

    def fail(self, why: str) -> Row:
        self.ok, self.why = False, why
        return self


def _bound_text(bound: Bound) -> str:
    if bound.atol == bound.rtol == 0:
        return "exact"
    return f"atol {bound.atol:.0e}, rtol {bound.rtol:.0e}"


@dataclass
class PerfRow:
    """A hardware-dependent figure of one notebook, per run: never pass/fail."""

    notebook: str
    key: str  # "gelu: jit" (a timing), "gelu: jit vs op-by-op" (a speedup), or the metric's name
    kind: str  # timing (seconds) | speedup (derived from timings) | metric
    values: dict[str, float | None]  # run label -> figure


@dataclass
class Comparison:
    """Every run's results against the first's (the baseline): ``ok``, ``summary()`` and
    ``failures`` give the verdict; ``rows`` and ``perf`` the detail a report shows."""

    runs: list[Run]
    rows: list[Row]
    perf: list[PerfRow]
    # Refusals that force=True overrode: the report lists them first.
    refusals: list[str]

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
