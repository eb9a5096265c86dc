"""Assertions shared by the notebooks' check cells and the test suite."""

from __future__ import annotations

import numpy as np

from .tolerance import tolerance


def assert_close(actual, expected, *, backend: str | None = None, accumulates: bool = False,
                 dtype=None, err_msg: str = "") -> None:
    """Assert ``actual`` matches ``expected`` within the table's tolerance for its dtype.

    ``expected`` is usually a float64 NumPy reference; the bound is the one of the dtype the
    computation ran in (``dtype``, else ``actual``'s own).
    """
    actual = np.asarray(actual)
    atol, rtol = tolerance(dtype or actual.dtype, backend, accumulates)
    np.testing.assert_allclose(widen(actual), widen(np.asarray(expected)),
                               atol=atol, rtol=rtol, err_msg=err_msg)


def widen(x: np.ndarray) -> np.ndarray:
    """Lift low-precision floats (bfloat16, float16) to float64 so NumPy can compare them."""
    if x.dtype.kind == "c":
        return x.astype(np.complex128)
    if x.dtype.kind == "f" or x.dtype.name == "bfloat16":
        return x.astype(np.float64)
    return x
