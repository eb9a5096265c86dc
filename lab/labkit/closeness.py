"""How close one result is to another: the one measure behind every comparison in the lab.

A learner's ``lab.check``, the consistency checks' ``assert_close`` and ``invoke compare`` all
ask :func:`measure` whether ``actual`` lies within ``atol + rtol * |expected|`` of ``expected``,
element by element, and read from its answer what they say: the first element beyond the bound
(a learner's message), the worst (a report), the largest errors (a table). The bound itself comes
from :mod:`labkit.tolerance`.

NaN matches NaN and an infinity the same infinity, as in ``numpy.testing.assert_allclose``; a NaN
against a number is infinitely far off. Integers, booleans and strings are equal or not.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .tolerance import tolerance


@dataclass(frozen=True)
class Measure:
    """How far ``actual`` is from ``expected``.

    ``max_abs`` and ``max_rel`` are the largest absolute and relative errors; ``used`` the largest
    share of the allowed error any element used (1.0: exactly at the bound), at flat index
    ``worst``; ``beyond`` how many of ``size`` elements lie past the bound, the first at flat
    index ``first`` (None when none does)."""

    max_abs: float
    max_rel: float
    used: float
    worst: int
    beyond: int = 0
    size: int = 0
    first: int | None = None

    @property
    def ok(self) -> bool:
        return self.beyond == 0

    def first_at(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """The first element beyond the bound, as an index into an array of ``shape`` (() for a scalar)."""
        if self.first is None:
            raise ValueError("every element lies within the bound")
        return _index(self.first, shape)

    def worst_at(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """The element that used the largest share of the bound, as an index into ``shape``."""
        return _index(self.worst, shape)


def _index(flat: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(int(i) for i in np.unravel_index(flat, shape))


def exact(dtype: np.dtype) -> bool:
    """Whether values of ``dtype`` are compared for equality, with no tolerance."""
    return dtype.kind not in "fc" and dtype.name != "bfloat16"


def measure(actual, expected, atol: float = 0.0, rtol: float = 0.0, scale=None) -> Measure:
    """``actual`` against ``expected`` (arrays of one shape, or scalars) at ``atol + rtol * scale``
    per element; ``scale`` defaults to ``|expected|``."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    if exact(actual.dtype) and exact(expected.dtype):
        bad = np.asarray(actual != expected).ravel()
        if actual.dtype.kind in "iub" and expected.dtype.kind in "iub":
            e = expected.astype(np.float64).ravel()
            diff = np.abs(actual.astype(np.float64).ravel() - e)
            rel = np.where(diff == 0, 0.0, diff / np.where(e == 0, 1.0, np.abs(e)))
        else:  # strings and the like: how far apart has no number
            diff = rel = np.where(bad, np.inf, 0.0)
        used = np.where(bad, np.inf, 0.0)
    else:
        a, e = (
            widen(x).astype(np.complex128 if x.dtype.kind == "c" else np.float64).ravel() for x in (actual, expected)
        )
        scale = np.abs(e) if scale is None else np.broadcast_to(np.asarray(scale, dtype=np.float64), e.shape)
        with np.errstate(invalid="ignore", divide="ignore"):
            same = (a == e) | (np.isnan(a) & np.isnan(e))
            diff = np.where(same, 0.0, np.abs(a - e))
            diff = np.where(np.isnan(diff), np.inf, diff)  # a NaN against a number is infinitely off
            rel = np.where(diff == 0, 0.0, diff / scale)
            used = np.where(diff == 0, 0.0, diff / (atol + rtol * scale))
        rel, used = (np.where(np.isnan(x), np.inf, x) for x in (rel, used))
        bad = used > 1.0
    if bad.size == 0:
        return Measure(0.0, 0.0, 0.0, 0)
    worst = int(np.argmax(used))
    beyond = int(bad.sum())
    return Measure(
        float(np.max(diff)),
        float(np.max(rel)),
        float(used[worst]),
        worst,
        beyond,
        int(bad.size),
        int(np.argmax(bad)) if beyond else None,
    )


def widen(x: np.ndarray) -> np.ndarray:
    """Lift low-precision floats (bfloat16, float16) to float64 so NumPy can compare them."""
    if x.dtype.kind == "c":
        return x.astype(np.complex128)
    if x.dtype.kind == "f" or x.dtype.name == "bfloat16":
        return x.astype(np.float64)
    return x


def assert_close(
    actual, expected, *, backend: str | None = None, accumulates: bool = False, dtype=None, err_msg: str = ""
) -> None:
    """The consistency checks' assertion: ``actual`` within the tolerance of the dtype the
    computation ran in (``dtype``, else ``actual``'s own) on ``backend`` of ``expected`` (usually
    a float64 NumPy reference); else an AssertionError that says how far off, and where."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    if actual.shape != expected.shape:
        raise AssertionError(f"{err_msg}: shape {actual.shape}, expected {expected.shape}".lstrip(": "))
    atol, rtol = tolerance(dtype or actual.dtype, backend, accumulates)
    m = measure(actual, expected, atol, rtol)
    if not m.ok:
        at = m.first_at(actual.shape)
        raise AssertionError(
            f"{err_msg}\nNot equal to tolerance rtol={rtol:g}, atol={atol:g}: {m.beyond} of {m.size} elements "
            f"differ; the first at {list(at)}: {actual[at]!r} against {expected[at]!r}; max abs "
            f"difference {m.max_abs:.3g}, max relative {m.max_rel:.3g}".lstrip()
        )
