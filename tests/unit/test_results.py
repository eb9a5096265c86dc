"""Recording results and comparing numbers: the formats and bounds every notebook relies on."""

from __future__ import annotations

import json
import re

import ml_dtypes
import numpy as np
import pytest

from labkit import assert_close, results, tolerance


def test_small_arrays_are_kept_whole_and_large_ones_summarised():
    small = results.encode_array(np.arange(6, dtype=np.float32).reshape(2, 3))
    assert small == {"dtype": "float32", "shape": [2, 3], "data": [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]}
    big = np.linspace(-1.0, 3.0, 1001)
    summary = results.encode_array(big)["summary"]
    assert summary["sum"] == pytest.approx(big.sum()) and summary["max"] == 3.0 and summary["min"] == -1.0
    assert len(summary["sample"]) == results.SAMPLE and summary["sample"][0] == -1.0


def test_bfloat16_is_recorded_as_plain_floats():
    entry = results.encode_array(np.array([1.5, -2.0], dtype=ml_dtypes.bfloat16))
    assert entry["dtype"] == "bfloat16" and entry["data"] == [1.5, -2.0]


def test_recorder_writes_values_timings_metrics_facts_and_environment(tmp_path):
    rec = results.Recorder("99_demo", tmp_path, {"backend": "cpu", "seed": 4})
    rec.value("y", np.array([1.0, 2.0]))
    rec.timing("step", "jit", 0.25)
    rec.metric("speedup", 3.5)
    rec.fact("traces", 2)
    with pytest.raises(TypeError):
        rec.fact("not_json", object())
    saved = json.loads(rec.save().read_text())
    assert saved["format"] == results.FORMAT == 2
    assert saved["values"]["y"]["data"] == [1.0, 2.0]
    assert saved["timings"] == [{"subject": "step", "variant": "jit", "seconds": 0.25}]
    assert saved["metrics"] == {"speedup": 3.5}
    assert saved["facts"] == {"traces": 2} and saved["params"]["seed"] == 4
    assert saved["environment"]["platform"] == "cpu"
    merged = results.merge(tmp_path, {"backend": "cpu"})
    assert merged["format"] == results.FORMAT
    assert merged["notebooks"]["99_demo"]["facts"] == {"traces": 2}
    assert merged["environment"] == saved["environment"]


def test_timings_are_records_of_subject_variant_and_seconds(tmp_path):
    rec = results.Recorder("99_demo", tmp_path, {"backend": "cpu"})
    rec.timing("gelu", "eager", 0.02)
    rec.timing("gelu", "jit", 0.5)
    rec.timing("gelu", "jit", 0.001)  # timed again (a rerun cell): replaces the earlier record
    rec.timing("gelu_tiny", "jit", np.float32(0.25))
    saved = json.loads(rec.save().read_text())["timings"]
    assert saved == [
        {"subject": "gelu", "variant": "eager", "seconds": 0.02},
        {"subject": "gelu", "variant": "jit", "seconds": 0.001},
        {"subject": "gelu_tiny", "variant": "jit", "seconds": 0.25},
    ]


@pytest.mark.parametrize(
    "subject,variant,seconds,message",
    [
        ("gelu", "jitt", 0.1, "unknown timing variant 'jitt' for 'gelu'; valid variants: numpy, eager"),
        ("gelu_jit", "", 0.1, "unknown timing variant ''"),
        ("", "jit", 0.1, "a timing's subject names what was timed"),
        ("gelu", "jit", float("nan"), "timing gelu/jit: nan is not a duration"),
        ("gelu", "jit", -1.0, "timing gelu/jit: -1.0 is not a duration"),
    ],
    ids=["typo", "old_key", "no_subject", "nan", "negative"],
)
def test_a_timing_outside_the_vocabulary_is_refused_when_recorded(tmp_path, subject, variant, seconds, message):
    rec = results.Recorder("99_demo", tmp_path, {"backend": "cpu"})
    with pytest.raises(ValueError, match=re.escape(message)):
        rec.timing(subject, variant, seconds)
    assert rec.timings == []


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_assert_close_passes_within_and_fails_beyond_the_dtype_bound(dtype):
    atol, rtol = tolerance.tolerance(dtype)
    expected = np.array([1.0, -2.0, 0.5])
    dt = ml_dtypes.bfloat16 if dtype == "bfloat16" else np.dtype(dtype)
    assert_close(expected.astype(dt), expected)
    off = expected * (1 + 20 * rtol) + 20 * atol
    with pytest.raises(AssertionError):
        assert_close(off.astype(dt), expected)


def test_exceptions_apply_to_their_backend_only_and_accumulation_scales_the_bound():
    strict = tolerance.tolerance("float32")
    assert tolerance.tolerance("float32", "cpu") == strict  # the cpu has no exception
    assert tolerance.tolerance("float32", "cuda") != strict
    assert tolerance.tolerance("float32", accumulates=True)[1] == strict[1] * tolerance.DEFAULT_ACCUMULATION_FACTOR
    bf16 = tolerance.tolerance("bfloat16")
    assert tolerance.tolerance("bfloat16", accumulates=True)[1] == bf16[1] * tolerance.ACCUMULATION_FACTOR["bfloat16"]
