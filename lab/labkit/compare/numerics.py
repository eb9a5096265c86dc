"""The pass/fail part of a comparison: every recorded value and fact of a run against the
baseline's, one :class:`~labkit.compare.model.Row` each.

Values must agree within the tolerance table's bound for their dtype, the looser of the two
backends' bounds (:func:`labkit.tolerance.between`): a result may differ across hardware by
what either backend is allowed to differ from the exact answer. Facts (counts, flags, names)
must be equal, any floats in them within the float32 bound. A key, notebook, shape or dtype
recorded by one run only is an inconsistency too: the runs did not compute the same thing.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator

import numpy as np

from ..closeness import Measure, measure
from ..tolerance import Bound, NoTolerance, between
from .model import Row, Run
from .printed import compare_cells


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
        if a.get("guest") or b.get("guest"):  # a notebook written elsewhere: what each cell printed
            rows += compare_cells(a, b, backends, other.label, nb)
            continue
        counts = tuple((r.get("environment") or {}).get("process_count", 1) for r in (a, b))
        for kind, compare_one in (("value", compare_value), ("fact", compare_fact)):
            section = f"{kind}s"
            ra, rb = a.get(section) or {}, b.get(section) or {}
            for key in sorted(ra.keys() | rb.keys()):
                if key not in rb or key not in ra:
                    has = base if key in ra else other
                    rows.append(Row(other.label, nb, key, kind, False, f"recorded in {has.label} only"))
                    continue
                rows.append(compare_one(ra[key], rb[key], backends, Row(other.label, nb, key, kind, True), counts))
    return rows


def compare_value(expected: dict, actual: dict, backends, row: Row, process_counts=(1,)) -> Row:
    """An encoded array (see ``results.encode_array``) against the baseline's, computed by as many
    processes as ``process_counts`` says (see ``tolerance.ACROSS_PROCESS_COUNTS``)."""
    if expected["dtype"] != actual["dtype"]:
        return row.fail(f"dtype {actual['dtype']}, baseline {expected['dtype']}")
    if expected["shape"] != actual["shape"]:
        return row.fail(f"shape {actual['shape']}, baseline {expected['shape']}")
    # The notebook marks what accumulates; both runs ran the same source, so a flag that differs
    # was edited, and taking either one would loosen (or tighten) the bound for both runs.
    accumulates = bool(expected.get("accumulates"))
    if accumulates != bool(actual.get("accumulates")):
        return row.fail(
            f"marked accumulates={bool(actual.get('accumulates'))}, baseline {accumulates}: the same "
            f"notebook source marks a value one way"
        )
    try:
        row.bound = between(expected["dtype"], backends, accumulates, process_counts)
    except (NoTolerance, TypeError):  # TypeError: not a dtype NumPy knows at all
        return row.fail(f"dtype {expected['dtype']} has no bound in the tolerance table (labkit/tolerance.py)")
    if "data" in expected and "data" in actual:
        return _compare_data(expected["data"], actual["data"], row)
    if "summary" in expected and "summary" in actual:
        row.stats_bound = between(expected["dtype"], backends, accumulates=True)
        return compare_summary(expected, actual, row)
    return row.fail("recorded whole in one run and summarised in the other")


def _compare_data(expected, actual, row: Row) -> Row:
    e, a = np.asarray(expected, dtype=np.float64), np.asarray(actual, dtype=np.float64)
    if e.shape != a.shape:
        return row.fail(f"data of shape {list(a.shape)}, baseline {list(e.shape)}")
    bound = row.bound
    assert bound is not None  # compare_value sets it before it compares the data
    m = measure(a, e, bound.atol, bound.rtol)
    row.max_abs, row.max_rel, row.used = m.max_abs, m.max_rel, m.used
    if not m.ok:
        at = m.worst_at(e.shape)
        where = f" at [{', '.join(map(str, at))}]" if at else ""
        allowed = bound.atol + bound.rtol * abs(e.flat[m.worst])
        row.fail(
            f"{a.flat[m.worst]:.9g}{where}, baseline {e.flat[m.worst]:.9g}: off by "
            f"{abs(a.flat[m.worst] - e.flat[m.worst]):.3g}, allowed {allowed:.3g}"
        )
    return row


def compare_summary(expected: dict, actual: dict, row: Row) -> Row:
    """A large array kept as statistics and a sample.

    An error of at most ``atol + rtol * |x|`` in every element moves the mean and the standard
    deviation by at most ``atol + rtol * rms(x)`` and the sum by ``n`` times that, so the
    statistics are held to the accumulation bound relative to the array's rms (relative to
    themselves would fail a mean of ~0, e.g. of standardised data, for a harmless rounding); min,
    max and the sample are elements, held to the elementwise bound.
    """
    se, sa = expected["summary"], actual["summary"]
    if se.get("sample_index") != sa.get("sample_index"):
        return row.fail("sampled at other indices than the baseline")
    n = math.prod(expected["shape"])
    rms = math.hypot(se["mean"], se["std"])
    el, st = row.bound, row.stats_bound
    assert el is not None and st is not None  # compare_value sets both before it compares a summary
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
        row.fail(f"{what} {got:.9g}, baseline {base:.9g} ({worst.used:.3g} times the allowed difference)")
    return row


def compare_fact(expected, actual, backends, row: Row, process_counts=(1,)) -> Row:
    """Equal JSON values; floats (a fraction, a ratio) within the float32 bound."""
    bound = between("float32", backends, process_counts=process_counts)
    measures = []
    for where, e, a in _leaves(expected, actual):
        if _numbers(e, a) and (isinstance(e, float) or isinstance(a, float)):
            measures.append(measure(a, e, bound.atol, bound.rtol))
            if measures[-1].ok:
                continue
        elif type(e) is type(a) and e == a:
            continue
        _set_facts_measure(row, bound, measures)
        return row.fail(f"{where or 'value'}: {_short(a)}, baseline {_short(e)}")
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
