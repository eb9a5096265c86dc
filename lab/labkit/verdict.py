"""The cross-hardware verdict that ends ``invoke lab``: this run against a checked-in reference
(the CPU's, of the same parameters: full sizes or smoke), with the same code as ``invoke compare``.

A run on other hardware or another JAX than the reference is what the verdict is for: it says
what differed and compares anyway. Only a run that did not run the same lab (other notebook
sources, other parameters, another lab version) is not compared, and the line says why; that
never fails a run. Values that disagree do.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from . import compare, paths
from .errors import LabError


@dataclass
class Verdict:
    line: str
    ok: bool  # False only when compared values disagree
    compared: bool


def reference_for(results: dict) -> Path:
    """The CPU reference made with the same sizes as ``results`` (full, or smoke)."""
    smoke = any(nb.get("params", {}).get("smoke") for nb in results["notebooks"].values())
    return paths.reference("cpu", smoke)


def _where(environment: dict) -> str:
    platform = environment.get("platform", "?")
    device = environment.get("device_kind") if platform != "cpu" else environment.get("machine")
    return f"JAX {environment.get('jax', '?')}, {platform}" + (f" ({device})" if device else "")


def verdict(results: dict, against: Path | None = None) -> Verdict:
    """``results`` (a run's results.json, as a dict) against ``against`` (default: the CPU reference
    of the same parameters), restricted to the notebooks this run ran."""
    against = Path(against).resolve() if against else reference_for(results)
    if against.is_dir():  # a run folder, as invoke compare takes it
        against = against / "results.json"
    name = "the CPU reference" if against in (paths.reference("cpu"), paths.reference("cpu", True)) else str(against)
    if not against.is_file():
        return Verdict(f"not compared: no reference at {against}", True, False)
    try:
        baseline = json.loads(against.read_text())
        # A guest notebook (labkit.guest) is in no reference: the verdict is about the lab's own.
        ours = {nb: rec for nb, rec in results["notebooks"].items() if not rec.get("guest")}
        baseline["notebooks"] = {nb: rec for nb, rec in baseline.get("notebooks", {}).items() if nb in ours}
        if not baseline["notebooks"]:
            return Verdict(f"not compared: {name} holds none of this run's notebooks", True, False)
        results = dict(results, notebooks=ours)
        comparison = compare.run([baseline, results], force=True, labels=["reference", "this run"])
    except (LabError, ValueError, AttributeError) as err:
        return Verdict(f"not compared with {name}: {err}", True, False)
    if comparison.refusals:
        return Verdict(f"not compared with {name}: {comparison.refusals[0]}", True, False)
    ref_env = comparison.baseline.environment
    differs = (
        f"; this run: {_where(comparison.runs[1].environment)}"
        if _where(ref_env) != _where(comparison.runs[1].environment)
        else ""
    )
    where = f"{name} ({_where(ref_env)}){differs}"
    total = len(comparison.rows)
    if comparison.ok:
        return Verdict(f"{total} of {total} results agree with {where}", True, True)
    fails = comparison.failures
    more = f" and {len(fails) - 3} more" if len(fails) > 3 else ""
    return Verdict(f"{len(fails)} of {total} results disagree with {where}: {'; '.join(fails[:3])}{more}", False, True)
