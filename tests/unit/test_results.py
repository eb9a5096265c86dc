"""Recording results and comparing numbers: the formats and bounds every notebook relies on."""

from __future__ import annotations

import json

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
    rec.timing("step", 0.25)
    rec.metric("speedup", 3.5)
    rec.fact("traces", 2)
    with pytest.raises(TypeError):
        rec.fact("not_json", object())
    saved = json.loads(rec.save().read_text())
    assert saved["values"]["y"]["data"] == [1.0, 2.0]
    assert saved["timings"] == {"step": 0.25} and saved["metrics"] == {"speedup": 3.5}
    assert saved["facts"] == {"traces": 2} and saved["params"]["seed"] == 4
    assert saved["environment"]["platform"] == "cpu"
    merged = results.merge(tmp_path, {"backend": "cpu"})
    assert merged["notebooks"]["99_demo"]["facts"] == {"traces": 2}
    assert merged["environment"] == saved["environment"]


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_assert_close_passes_within_and_fails_beyond_the_dtype_bound(dtype):
    atol, rtol = tolerance.tolerance(dtype)
    expected = np.array([1.0, -2.0, 0.5])
    dt = ml_dtypes.bfloat16 if dtype == "bfloat16" else np.dtype(dtype)
    assert_close(expected.astype(dt), expected)
    off = expected * (1 + 20 * rtol) + 20 * atol
    with pytest.raises(AssertionError):
        assert_close(off.astype(dt), expected)


def test_named_backend_exceptions_only_loosen_their_backend():
    strict = tolerance.tolerance("float32")
    for (backend, dtype), allowance in tolerance.EXCEPTIONS.items():
        assert allowance.reason
        assert tolerance.tolerance(dtype, backend) >= tolerance.tolerance(dtype)
    assert tolerance.tolerance("float32", "cpu") == strict
    assert tolerance.tolerance("float32", accumulates=True)[1] == strict[1] * tolerance.DEFAULT_ACCUMULATION_FACTOR
    bf16 = tolerance.tolerance("bfloat16")
    assert tolerance.tolerance("bfloat16", accumulates=True)[1] == bf16[1] * tolerance.ACCUMULATION_FACTOR["bfloat16"]
