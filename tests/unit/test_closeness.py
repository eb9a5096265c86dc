"""The one closeness measure: what is within the bound, where the first and the worst elements
beyond it are, and the assertion the consistency checks make with it."""

from __future__ import annotations

import numpy as np
import pytest

from labkit import closeness


def test_an_element_exactly_at_the_bound_passes_and_one_just_past_it_fails():
    e = np.array([1.0, 2.0, 4.0])
    at_bound = e + (1e-3 + 1e-3 * e)  # atol + rtol * |expected|
    assert closeness.measure(at_bound * (1 - 1e-12), e, 1e-3, 1e-3).ok
    past = closeness.measure(at_bound * (1 + 1e-9), e, 1e-3, 1e-3)
    assert not past.ok and past.beyond == 3 and past.first == 0


def test_the_first_and_the_worst_element_beyond_the_bound_are_told_apart():
    e = np.zeros(5)
    a = np.array([0.0, 0.5, 0.0, 3.0, 0.0])
    m = closeness.measure(a, e, 0.1, 0.0)
    assert (m.first, m.worst, m.beyond, m.size) == (1, 3, 2, 5)
    assert m.max_abs == 3.0 and m.used == pytest.approx(30.0)


@pytest.mark.parametrize(
    "a, e, ok",
    [
        ([np.nan], [np.nan], True),
        ([np.inf], [np.inf], True),
        ([-np.inf], [np.inf], False),
        ([np.nan], [1.0], False),
        ([1.0], [np.nan], False),
    ],
    ids=["nan-nan", "inf-inf", "-inf-inf", "nan-number", "number-nan"],
)
def test_nan_and_infinity_match_only_themselves(a, e, ok):
    assert closeness.measure(np.array(a), np.array(e), 1e-3, 1e-3).ok is ok


def test_integers_and_strings_are_equal_or_not_whatever_the_bound():
    assert not closeness.measure(np.array([7, 8]), np.array([7, 9]), 1.0, 1.0).ok
    assert closeness.measure(np.array(["a", "b"]), np.array(["a", "b"])).ok
    m = closeness.measure(np.array(["a", "b"]), np.array(["a", "c"]))
    assert not m.ok and m.first == 1


def test_bfloat16_and_complex_are_measured_in_their_wide_types():
    import ml_dtypes

    a = np.array([1.0, 2.0], dtype=ml_dtypes.bfloat16)
    assert closeness.measure(a, np.array([1.0, 2.004]), 1e-2, 1e-2).ok
    z = np.array([1 + 1j, 2 - 1j], dtype=np.complex64)
    assert closeness.measure(z, z.astype(np.complex128)).ok
    assert not closeness.measure(z, z.astype(np.complex128) + 1e-3j, 1e-6, 1e-6).ok


def test_assert_close_names_the_first_element_beyond_the_dtypes_bound():
    expected = np.linspace(0, 1, 6)
    got = expected.astype(np.float32)
    closeness.assert_close(got, expected)
    got[4] += 1e-3
    with pytest.raises(AssertionError, match=r"1 of 6 elements differ; the first at \[4\]"):
        closeness.assert_close(got, expected, err_msg="mine")
