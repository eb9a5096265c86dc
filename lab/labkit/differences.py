"""What differs between a checked value and the expected one, in the words a learner reads.

The words help find the slip (shapes, dtypes, the first element that differs and by how much)
without giving the answer away; :mod:`labkit.closeness` decides whether there is a difference.
"""

from __future__ import annotations

import math

import numpy as np

from .closeness import exact, measure, widen
from .tolerance import as_dtype, tolerance


def mismatch(actual: np.ndarray, expected: np.ndarray, dtype, backend: str, accumulates: bool) -> str | None:
    """What differs between ``actual`` and ``expected``, in words; None when they agree."""
    if dtype is not None and actual.dtype != as_dtype(dtype):
        return f"expected dtype {as_dtype(dtype).name}, got {actual.dtype.name}"
    if actual.shape != expected.shape:
        return f"expected shape {expected.shape}, got {actual.shape}"
    is_exact = exact(actual.dtype)
    atol, rtol = (0.0, 0.0) if is_exact else tolerance(actual.dtype, backend, accumulates)
    m = measure(actual, expected, atol, rtol)
    if m.ok:
        return None
    at = m.first_at(actual.shape)
    got, wanted = widen(actual)[at], widen(expected)[at]
    if actual.size == 1 and not is_exact:
        return _scalar_off(actual.dtype.name, float(got), float(wanted), atol, rtol)
    where = f"the first at index {list(at)}" if at else "the value"
    count = f"{m.beyond} of {m.size} elements differ" if actual.ndim else "it differs"
    if is_exact:
        return f"{count}; {where}: got {actual[at]!r}"
    return (
        f"{count} beyond the {actual.dtype.name} tolerance (atol {atol:.0e}, rtol {rtol:.0e}); {where}: "
        f"got {got:.6g}, off by {abs(got - wanted):.3g}"
    )


def _scalar_off(dtype: str, got: float, wanted: float, atol: float, rtol: float) -> str:
    """A wrong scalar in words that do not give the answer away: which way it is off, and by how
    many tolerances in round powers of ten (the value and the exact difference would)."""
    if not math.isfinite(got) or not math.isfinite(wanted):
        return f"got {got:.6g}" if not math.isfinite(got) else f"got {got:.6g}, where a non-finite value is expected"
    times = abs(got - wanted) / (atol + rtol * abs(wanted))
    scale = "less than 10 times" if times < 10 else f"more than {10 ** int(math.log10(times)):,} times"
    return f"the value is too {'large' if got > wanted else 'small'}, by {scale} the {dtype} tolerance"


def message(key: str, problem: str, hint: str, exercise: int | None = None) -> str:
    of = f" of exercise {exercise}" if exercise is not None else ""  # known in a handout's check cell
    return f"check {key!r}{of} failed: {problem}" + (f"\nhint: {hint}" if hint else "")
