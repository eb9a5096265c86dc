"""Runs that cannot be compared, and why: checked before any result is.

Two runs' numbers say something about their hardware only if the runs ran the same lab:
the same lab version, the same notebook sources and the same parameters. And a run says
something about its backend only if it ran on that backend's platform: a ``cuda`` run that
fell back to the CPU would compare the CPU with itself and pass. ``labkit.compare.run``
refuses such runs unless forced, and then the report lists each refusal it overrode.
"""

from __future__ import annotations

from ..backends import BACKENDS
from ..params import RUNNER_SET
from .model import Run


def refusals(runs: list[Run]) -> list[str]:
    """Why these runs are not comparable, one line each; empty when they are."""
    found = [line for run in runs if (line := wrong_platform(run))]
    base = runs[0]
    for other in runs[1:]:
        found += different_lab(base, other)
    return found


def wrong_platform(run: Run) -> str | None:
    """Why ``run`` did not run on its backend's platform, or None if it did."""
    backend = BACKENDS.get(run.backend)
    if backend is None:
        return f"{run.label}: unknown backend {run.backend!r}; valid backends: {', '.join(BACKENDS)}"
    per_notebook = {nb.get("environment", {}).get("platform") for nb in run.notebooks.values()}
    recorded = sorted(p for p in per_notebook | {run.environment.get("platform")} if p)
    if not recorded:
        return f"{run.label}: records no platform, so it cannot show it ran on {backend.platform!r}"
    wrong = [p for p in recorded if p != backend.platform]
    if wrong:
        return (
            f"{run.label}: a {run.backend!r} run that ran on platform {', '.join(map(repr, wrong))}, "
            f"not {backend.platform!r}"
        )
    return None


def different_lab(base: Run, other: Run) -> list[str]:
    """How ``other`` ran another lab than ``base``: version, notebook sources, parameters."""
    found = []
    versions = base.environment.get("lab_version"), other.environment.get("lab_version")
    if versions[0] != versions[1]:
        found.append(f"lab version differs: {versions[0]} in {base.label}, {versions[1]} in {other.label}")
    common = [nb for nb in base.notebooks if nb in other.notebooks]
    for nb in common:
        digests = base.notebooks[nb].get("source_digest"), other.notebooks[nb].get("source_digest")
        if digests[0] != digests[1] or digests[0] is None:
            found.append(
                f"{nb}: notebook source differs ({digests[0]} in {base.label}, {digests[1]} in "
                f"{other.label}); rerun both from the same lab revision"
            )
    found += different_params(base, other, common)
    return found


def different_params(base: Run, other: Run, notebooks: list[str]) -> list[str]:
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
    return [
        f"parameter {name} differs: {va} in {base.label}, {vb} in {other.label} {given}; notebooks {', '.join(nbs)}"
        for (name, va, vb), nbs in differing.items()
    ]


def _effective(record: dict) -> dict:
    return {k: v for k, v in (record.get("params") or {}).items() if k not in RUNNER_SET}
