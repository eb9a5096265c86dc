"""Comparing runs across hardware: the smoke run against its backend's reference, and what makes
a comparison fail or be refused, on small synthetic results."""

from __future__ import annotations

import ast
import copy
import json
from pathlib import Path

import numpy as np
import pytest

from labkit import compare, reference, results, tolerance
from labkit.compare import perf, report
from labkit.errors import UsageError
from labkit.results import FORMAT, encode_array

NB = "99_demo"


# ---------------------------------------------------------------------------------------------
# (a) the smoke run against the reference: the same code path as `invoke compare`


@pytest.mark.slow
def test_smoke_run_matches_the_reference(request, backend, tmp_path):
    ref = reference.path(backend, smoke=True)
    if not ref.is_file():
        pytest.fail(
            f"no reference results at {ref}: run the reference task (labkit.reference.regenerate"
            f"({backend!r})) on {backend} to create them, then commit lab/labkit/references/"
        )
    lab, _ = request.getfixturevalue("smoke_run")  # only now: without a reference it would be wasted
    try:
        comparison = compare.run([ref, lab.out])
    except UsageError as err:
        pytest.fail(
            f"{err}\nIf the notebooks changed on purpose, run the reference task again "
            f"(labkit.reference.regenerate({backend!r}))."
        )
    assert comparison.ok, comparison.summary() + "\n" + "\n".join(comparison.failures)


# ---------------------------------------------------------------------------------------------
# Synthetic results: one notebook with a small array, a summarised one, an accumulated scalar,
# facts, timings and metrics.


def make_results(backend: str = "cpu", platform: str = "cpu") -> dict:
    rng = np.random.default_rng(0)

    def value(x, accumulates=False):
        return encode_array(x) | {"accumulates": accumulates}

    big = rng.standard_normal(1000).astype(np.float32)
    environment = {
        "backend": backend,
        "platform": platform,
        "device_kind": platform,
        "device_count": 1,
        "jax": "0.10.2",
        "lab_version": "0.1.0",
        "lab_revision": "abc",
    }
    record = {
        "params": {"backend": backend, "seed": 0, "smoke": True},
        "environment": environment,
        "source_digest": "0123456789abcdef",
        "values": {
            "y": value(np.linspace(-2, 2, 8, dtype=np.float32)),
            "big": value(big),
            "total": value(big.sum(), accumulates=True),
            "count": value(np.int32(7)),
        },
        "timings": [
            timed("f", "eager", 0.01),
            timed("f", "jit", 0.001),
            timed("layer", "loop", 0.2),
            timed("layer", "vmap", 0.002),
        ],
        "metrics": {"bandwidth_GBps": 12.5},
        "facts": {"traces": 2, "kept_fraction": 0.5, "names": ["mul", "add"]},
    }
    return {
        "format": FORMAT,
        "run": {"backend": backend, "params": {"smoke": "true"}, "ok": True},
        "environment": environment,
        "notebooks": {NB: record},
    }


def timed(subject: str, variant: str, seconds: float) -> dict:
    return {"subject": subject, "variant": variant, "seconds": seconds}


def write(tmp_path, name: str, results: dict):
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(results))
    return path


def run_pair(tmp_path, base: dict, other: dict, **kwargs) -> compare.Comparison:
    return compare.run([write(tmp_path, "base", base), write(tmp_path, "other", other)], **kwargs)


def report_md(tmp_path, comparison: compare.Comparison) -> str:
    report.write_reports(comparison, tmp_path / "compare")
    return (tmp_path / "compare" / "report.md").read_text()


def moved(results: dict, key: str, factor: float, index: int = 3) -> dict:
    """A copy with one element of the array ``key`` scaled by ``factor``."""
    changed = copy.deepcopy(results)
    changed["notebooks"][NB]["values"][key]["data"][index] *= factor
    return changed


# ---------------------------------------------------------------------------------------------
# (b) values and facts


def test_identical_runs_agree_and_report_speedups(tmp_path):
    comparison = run_pair(tmp_path, make_results(), make_results())
    assert comparison.ok and not comparison.failures and not comparison.refusals
    assert {(r.notebook, r.key) for r in comparison.rows} >= {(NB, "y"), (NB, "big"), (NB, "traces")}
    speed = {p.key: p.values for p in comparison.perf if p.kind == "speedup"}
    assert speed["f: jit vs op-by-op"] == {"base": pytest.approx(10.0), "other": pytest.approx(10.0)}
    assert speed["layer: vmap vs loop"]["other"] == pytest.approx(100.0)


def test_a_value_moved_beyond_tolerance_fails_naming_notebook_and_key(tmp_path):
    comparison = run_pair(tmp_path, make_results(), moved(make_results(), "y", 1.01))
    assert not comparison.ok
    assert len(comparison.failures) == 1 and comparison.failures[0].startswith(f"{NB}/y: ")
    assert f"{NB}/y" in comparison.summary()
    (row,) = [r for r in comparison.rows if not r.ok]
    assert row.max_rel == pytest.approx(0.01, rel=1e-3) and row.used > 1
    assert f"{NB}/y" in report_md(tmp_path, comparison)


def test_a_value_moved_within_tolerance_passes(tmp_path):
    _, rtol = tolerance.tolerance("float32", "cpu")
    comparison = run_pair(tmp_path, make_results(), moved(make_results(), "y", 1 + rtol / 3))
    assert comparison.ok, comparison.failures
    row = next(r for r in comparison.rows if r.key == "y")
    assert 0 < row.used < 1 and row.max_rel == pytest.approx(rtol / 3, rel=0.05)


def test_two_backends_are_held_to_the_looser_bound_and_the_exception_is_named(tmp_path):
    cpu_rtol = tolerance.tolerance("float32", "cpu")[1]
    cuda_rtol = tolerance.tolerance("float32", "cuda")[1]
    assert cuda_rtol > cpu_rtol
    factor = 1 + (cpu_rtol + cuda_rtol) / 2  # beyond the CPU's bound, within the GPU's
    assert not run_pair(tmp_path, make_results(), moved(make_results(), "y", factor)).ok
    comparison = run_pair(tmp_path, make_results(), moved(make_results("cuda", "gpu"), "y", factor))
    assert comparison.ok, comparison.failures
    row = next(r for r in comparison.rows if r.key == "y")
    assert [(a.backend, a.dtype) for a in row.allowances] == [("cuda", "float32")]
    assert tolerance.EXCEPTIONS[("cuda", "float32")].reason in report_md(tmp_path, comparison)


def test_summarised_arrays_compare_their_statistics_and_sample(tmp_path):
    other = make_results()
    summary = other["notebooks"][NB]["values"]["big"]["summary"]
    summary["mean"] += 1e-7  # a rounding-sized shift of a mean near zero: within the bound
    assert run_pair(tmp_path, make_results(), other).ok
    summary["sample"][5] *= 1.01
    comparison = run_pair(tmp_path, make_results(), other)
    assert comparison.failures[0].startswith(f"{NB}/big: sample element")


def test_integers_must_be_exact(tmp_path):
    other = make_results()
    other["notebooks"][NB]["values"]["count"]["data"] = 8
    assert run_pair(tmp_path, make_results(), other).failures[0].startswith(f"{NB}/count: 8")


def test_facts_must_be_equal_with_floats_within_float32(tmp_path):
    other = make_results()
    facts = other["notebooks"][NB]["facts"]
    facts["kept_fraction"] = 0.5 * (1 + 1e-7)
    assert run_pair(tmp_path, make_results(), other).ok
    facts["names"] = ["mul", "sub"]
    failures = run_pair(tmp_path, make_results(), other).failures
    assert failures == [f'{NB}/names: [1]: "sub", baseline "add"']


def test_timings_and_metrics_never_fail(tmp_path):
    other = make_results()
    timings = other["notebooks"][NB]["timings"]
    timings[:] = [t | {"seconds": t["seconds"] * 50} for t in timings if (t["subject"], t["variant"]) != ("f", "jit")]
    other["notebooks"][NB]["metrics"]["bandwidth_GBps"] = 900.0
    comparison = run_pair(tmp_path, make_results(), other)
    assert comparison.ok
    rows = {(p.kind, p.key): p.values for p in comparison.perf}
    assert rows[("timing", "layer: loop")] == {"base": 0.2, "other": pytest.approx(10.0)}
    assert rows[("timing", "f: jit")] == {"base": 0.001, "other": None}
    assert rows[("speedup", "f: jit vs op-by-op")] == {"base": pytest.approx(10.0), "other": None}


# ---------------------------------------------------------------------------------------------
# (e) keys, shapes and dtypes that differ are inconsistencies


@pytest.mark.parametrize(
    "change,expected",
    [
        (lambda v: v.update(extra=copy.deepcopy(v["y"])), f"{NB}/extra: recorded in other only"),
        (lambda v: v.pop("y"), f"{NB}/y: recorded in base only"),
        (lambda v: v["y"].update(dtype="float16"), f"{NB}/y: dtype float16, baseline float32"),
        (
            lambda v: v["y"].update(shape=[2, 4], data=np.reshape(v["y"]["data"], (2, 4)).tolist()),
            f"{NB}/y: shape [2, 4], baseline [8]",
        ),
    ],
    ids=["extra", "missing", "dtype", "shape"],
)
def test_keys_shapes_and_dtypes_that_differ_fail(tmp_path, change, expected):
    other = make_results()
    change(other["notebooks"][NB]["values"])
    comparison = run_pair(tmp_path, make_results(), other)
    assert comparison.failures == [expected]


def test_a_missing_notebook_fails(tmp_path):
    other = make_results()
    other["notebooks"]["98_other"] = other["notebooks"][NB]
    assert run_pair(tmp_path, make_results(), other).failures == ["98_other/*: notebook recorded in other only"]


# ---------------------------------------------------------------------------------------------
# (c) refusals, and force=True


def _params(r):
    r["notebooks"][NB]["params"]["seed"] = 1
    r["run"]["params"]["seed"] = "1"


def _digest(r):
    r["notebooks"][NB]["source_digest"] = "fedcba9876543210"


def _fell_back_to_cpu(r):
    r["run"]["backend"] = r["environment"]["backend"] = "cuda"
    r["notebooks"][NB]["params"]["backend"] = "cuda"


def _version(r):
    r["environment"]["lab_version"] = "0.2.0"


@pytest.mark.parametrize(
    "change,reason",
    [
        (_params, "parameter seed differs: 0 in base, 1 in other"),
        (_digest, f"{NB}: notebook source differs"),
        (_fell_back_to_cpu, "other: a 'cuda' run that ran on platform 'cpu', not 'gpu'"),
        (_version, "lab version differs: 0.1.0 in base, 0.2.0 in other"),
    ],
    ids=["params", "source_digest", "cuda_on_cpu", "lab_version"],
)
def test_incomparable_runs_are_refused_unless_forced(tmp_path, change, reason):
    other = make_results()
    change(other)
    with pytest.raises(UsageError, match="not comparable") as refused:
        run_pair(tmp_path, make_results(), other)
    assert reason in str(refused.value) and refused.value.exit_code == 2
    comparison = run_pair(tmp_path, make_results(), other, force=True)
    assert comparison.ok and any(reason in line for line in comparison.refusals)
    markdown = report_md(tmp_path, comparison)
    assert "Compared despite refusals" in markdown and reason in markdown


@pytest.mark.parametrize("content", [None, "not json", '{"format": 1}'], ids=["missing", "garbage", "not_results"])
def test_a_missing_or_unreadable_source_is_a_usage_error(tmp_path, content):
    bad = tmp_path / "bad.json"
    if content is not None:
        bad.write_text(content)
    with pytest.raises(UsageError, match="bad.json"):
        compare.run([write(tmp_path, "base", make_results()), bad])


MALFORMED = {
    "string-data": (("y", "data"), ["a", "b"], "data that is not a rectangular array of numbers"),
    "ragged-data": (("y", "data"), [[1.0, 2.0], [3.0]], "data that is not a rectangular array of numbers"),
    "null-data": (("y", "data"), None, "data that is not a rectangular array of numbers"),
    "data-of-another-shape": (("y", "data"), [1.0, 2.0], "has data of shape [2] but says shape [8]"),
    "shape-of-words": (("y", "shape"), ["eight"], "a shape that is not a list of sizes"),
    "summary-without-mean": (("big", "summary", "mean"), KeyError, "has a summary without mean"),
    "summary-of-a-string": (("big", "summary", "std"), "wide", "whose std is not a number"),
    "ragged-sample": (("big", "summary", "sample"), [[1.0], [2.0, 3.0]], "sample and sample_index"),
}


@pytest.mark.parametrize("where, bad, says", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_value_is_one_line_naming_the_notebook_and_key(tmp_path, where, bad, says):
    other = make_results()
    *path, last = where
    holder = other["notebooks"][NB]["values"]
    for step in path:
        holder = holder[step]
    if bad is KeyError:
        del holder[last]
    else:
        holder[last] = bad
    with pytest.raises(UsageError) as refused:
        run_pair(tmp_path, make_results(), other)
    message = str(refused.value)
    assert f"notebook {NB!r}" in message and f"value {where[0]!r} " in message and says in message
    assert "\n" not in message


def test_results_of_another_format_are_refused_with_a_one_line_message_to_rerun(tmp_path):
    old = make_results()
    old["format"] = 1
    old["notebooks"][NB]["timings"] = {"f_eager": 0.01, "f_jit": 0.001}
    with pytest.raises(UsageError) as refused:
        run_pair(tmp_path, make_results(), old)
    message = str(refused.value)
    assert "other.json" in message and f"format 1, but this lab reads format {FORMAT}" in message
    assert "rerun" in message and "\n" not in message and refused.value.exit_code == 2


def test_a_run_folder_is_read_through_its_results_json(tmp_path):
    folder = tmp_path / "cpu"
    folder.mkdir()
    (folder / "results.json").write_text(json.dumps(make_results()))
    comparison = compare.run([write(tmp_path, "base", make_results()), folder])
    assert [r.label for r in comparison.runs] == ["base", "cpu"] and comparison.ok
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="no results.json"):
        compare.run([folder, tmp_path / "empty"])


def test_results_dicts_compare_without_any_file_read_or_written(tmp_path, monkeypatch):
    other = moved(make_results(), "y", 1.01)
    for method in ("read_text", "write_text", "write_bytes", "mkdir", "touch"):
        monkeypatch.setattr(Path, method, lambda *a, m=method, **k: pytest.fail(f"Path.{m} called"))
    comparison = compare.run([make_results(), other])
    assert [r.label for r in comparison.runs] == ["cpu #1", "cpu #2"]
    assert not comparison.ok and comparison.failures[0].startswith(f"{NB}/y: ")
    assert "cpu #2 against cpu #1: 1 of" in comparison.summary()
    named = compare.run([make_results(), other], labels=["reference", "this run"])
    assert named.summary().startswith("this run against reference: 1 of")


# ---------------------------------------------------------------------------------------------
# (d) the reports


def test_reports_embed_and_link_their_plots(tmp_path):
    comparison = run_pair(tmp_path, make_results(), moved(make_results(), "y", 1.01))
    out = tmp_path / "compare"
    written = report.write_reports(comparison, out)
    assert [p.name for p in written[:2]] == ["report.md", "report.html"]
    page = (out / "report.html").read_text()
    assert page.count('src="data:image/png;base64,') == 3  # errors, speedups, timings
    assert f"{NB}/y" in page and "INCONSISTENT" in page
    markdown = (out / "report.md").read_text()
    for name in ("errors", "speedups", "timings"):
        assert f"]({name}.png)" in markdown
        assert (out / f"{name}.png").read_bytes().startswith(b"\x89PNG")
    assert {p.name for p in written} == {"report.md", "report.html", "errors.png", "speedups.png", "timings.png"}


def test_print_table_names_the_failing_key(tmp_path):
    from rich.console import Console

    console = Console(record=True, width=200)
    report.print_table(run_pair(tmp_path, make_results(), moved(make_results(), "y", 1.01)), console)
    text = console.export_text()
    assert f"{NB}/y" in text and "disagree" in text


# ---------------------------------------------------------------------------------------------
# The bound between two backends, and how timings pair up into speedups


def test_bound_between_backends_is_the_looser_of_the_two():
    cuda = tolerance.between("float32", ["cpu", "cuda"])
    assert (cuda.atol, cuda.rtol) == tolerance.tolerance("float32", "cuda")
    assert [a.backend for a in cuda.allowances] == ["cuda"]
    both = tolerance.between("float32", ["cuda", "tpu"], accumulates=True)
    assert (both.atol, both.rtol) == tolerance.tolerance("float32", "tpu", accumulates=True)
    assert [a.backend for a in both.allowances] == ["tpu"]
    assert tolerance.between("int32", ["cpu", "tpu"]) == tolerance.Bound(0.0, 0.0)
    assert tolerance.between("bfloat16", ["cpu"]).rtol == tolerance.tolerance("bfloat16")[1]


def test_speedups_pair_the_variants_of_one_subject():
    by_variant = perf.timings(
        {
            "timings": [
                timed("gelu", "eager", 0.02),
                timed("gelu", "jit", 0.001),
                timed("gelu_tiny", "jit", 0.5),
                timed("selu", "op_by_op", 0.3),
                timed("selu", "numpy", 0.2),
                timed("selu", "jit", 0.1),
                timed("standardize", "pmap", 0.4),
                timed("standardize", "jit_sharded", 0.1),
            ]
        }
    )
    assert perf.speedups(by_variant) == {
        "gelu: jit vs op-by-op": pytest.approx(20.0),  # gelu_tiny has no eager time: no speedup
        "selu: jit vs op-by-op": pytest.approx(3.0),
        "selu: jit vs NumPy": pytest.approx(2.0),
        "standardize: jit-sharded vs pmap": pytest.approx(4.0),
    }


def test_speedups_name_only_variants_a_notebook_can_record():
    named = {v for fast, slow, _ in perf.SPEEDUPS for v in (fast, slow)}
    assert named <= set(results.VARIANTS), named - set(results.VARIANTS)


# ---------------------------------------------------------------------------------------------
# The package's layout: computing a comparison never imports how it is presented


def test_compare_modules_import_each_other_one_way_only():
    package = Path(compare.__file__).parent
    imports = {}
    for module in package.glob("*.py"):
        found = set()
        for node in ast.walk(ast.parse(module.read_text())):  # lazy imports inside functions too
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                found |= {node.module} if node.module else {a.name for a in node.names}
        imports[module.stem] = found
    assert imports["model"] == set(), "the model imports nothing of the package"
    assert [m for m, found in imports.items() if "report" in found] == [], "only the compare task uses report"

    def reaches(start: str, seen: tuple[str, ...] = ()) -> None:
        assert start not in seen, f"import cycle: {' -> '.join((*seen, start))}"
        for name in imports.get(start, ()):
            reaches(name, (*seen, start))

    for module in imports:
        reaches(module)


@pytest.mark.parametrize("dtype", ["float128", "nosuch"])
def test_a_dtype_without_a_tolerance_fails_its_row_and_nothing_else(tmp_path, dtype):
    """Both runs say the same dtype, which the table has no bound for: that value is one failing
    row that names it; no bound is guessed and the comparison still reads every other value."""
    base, other = make_results(), make_results()
    for run in (base, other):
        run["notebooks"][NB]["values"]["y"]["dtype"] = dtype
    comparison = run_pair(tmp_path, base, other)
    assert comparison.failures == [f"{NB}/y: dtype {dtype} has no bound in the tolerance table (labkit/tolerance.py)"]


def test_the_tolerance_of_an_unknown_dtype_is_one_line_naming_it():
    with pytest.raises(tolerance.NoTolerance) as refused:
        tolerance.tolerance(np.longdouble)
    message = str(refused.value)
    assert message.startswith("the lab has no tolerance for float128 values") and "\n" not in message


def test_runs_of_different_process_counts_are_held_to_the_accumulation_bound():
    """A psum over several processes adds its partial sums in another order: a float32 value that
    differs by more than the elementwise bound, within the accumulation bound, agrees across process
    counts, and not between two runs of one process each."""
    from labkit.compare.model import Row
    from labkit.compare.numerics import compare_value

    atol, rtol = tolerance.tolerance("float32", "cpu")
    base = np.float32(3.0)
    moved = np.float32(base + 10 * (atol + rtol * base))  # 10x the elementwise bound
    a, b = encode_array(base), encode_array(moved)

    def ok(counts) -> bool:
        return compare_value(a, b, ("cpu", "cpu"), Row("b", "nb", "k", "value", True), counts).ok

    assert ok((1, 2)) and ok((2, 4))
    assert not ok((1, 1)) and not ok((2, 2))
