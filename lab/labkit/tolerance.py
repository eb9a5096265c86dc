"""The one tolerance table: how close two results must be, by dtype (JAX's own test defaults).

Per-backend exceptions are written in the backend registry (``labkit.backends``), each with the
reason, and read here, so a looser bound is never a silent edit somewhere else.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .backends import BACKENDS
from .errors import LabError

# dtype name -> (atol, rtol), as in jax/_src/public_test_util.py.
DEFAULT = {
    "bool": (0.0, 0.0),
    "int8": (0.0, 0.0),
    "int16": (0.0, 0.0),
    "int32": (0.0, 0.0),
    "int64": (0.0, 0.0),
    "uint8": (0.0, 0.0),
    "uint32": (0.0, 0.0),
    "bfloat16": (1e-2, 1e-2),
    "float16": (1e-3, 1e-3),
    "float32": (1e-6, 1e-6),
    "float64": (1e-15, 1e-15),
    "complex64": (1e-6, 1e-6),
    "complex128": (1e-15, 1e-15),
}


def as_dtype(dtype) -> np.dtype:
    """``np.dtype(dtype)``, bfloat16 included. ml_dtypes teaches NumPy that name when it is
    imported, which takes most of a second; only a name NumPy does not know yet pays for it, so a
    task that refuses bad input, or a comparison without bfloat16, starts at once."""
    try:
        return np.dtype(dtype)
    except TypeError:
        import ml_dtypes  # noqa: F401  (registers bfloat16 and friends with NumPy)

        return np.dtype(dtype)


class NoTolerance(LabError):
    """A dtype the tolerance table does not hold: one line that names it and the ones it does."""


@dataclass(frozen=True)
class Allowance:
    backend: str
    dtype: str
    atol: float
    rtol: float
    reason: str


# Named per-backend exceptions, (backend, dtype) -> looser bound and why. Written in the backend
# registry (each Backend's ``tolerances``), so a backend's facts stay in one place; this is a view.
EXCEPTIONS = {
    (b.name, dtype): Allowance(b.name, dtype, looser.atol, looser.rtol, looser.reason)
    for b in BACKENDS.values()
    for dtype, looser in b.tolerances.items()
}

# Results that accumulate many roundings (sums, matmuls, scans, gradients) are checked at a
# multiple of the elementwise bound. For the 8-bit-mantissa dtypes the bound is already coarse,
# so a large multiple would let real errors through (a reversed batch order still passed
# bfloat16 at 100x); measured worst cases on CPU: bfloat16 1.4e-2, float16 4e-4.
ACCUMULATION_FACTOR = {"bfloat16": 5.0, "float16": 10.0}
DEFAULT_ACCUMULATION_FACTOR = 100.0


def tolerance(dtype, backend: str | None = None, accumulates: bool = False) -> tuple[float, float]:
    """(atol, rtol) for comparing arrays of ``dtype`` computed on ``backend``; a :class:`NoTolerance`
    for a dtype the table does not hold (float128, a string): no bound is guessed."""
    name = as_dtype(dtype).name
    if name not in DEFAULT:
        raise NoTolerance(f"the lab has no tolerance for {name} values; it has one for {', '.join(DEFAULT)}")
    atol, rtol = DEFAULT[name]
    if exc := allowance(name, backend):  # the exception replaces the default (a test keeps it looser)
        atol, rtol = exc.atol, exc.rtol
    if accumulates:
        factor = ACCUMULATION_FACTOR.get(name, DEFAULT_ACCUMULATION_FACTOR)
        atol, rtol = atol * factor, rtol * factor
    return atol, rtol


def allowance(dtype, backend: str | None) -> Allowance | None:
    """The named exception that loosens ``dtype`` on ``backend``, if there is one."""
    return EXCEPTIONS.get((backend, as_dtype(dtype).name)) if backend else None


@dataclass(frozen=True)
class Bound:
    """The bound for comparing a result computed on several backends, and the named exceptions
    that set it (empty when the dtype's default applies)."""

    atol: float
    rtol: float
    allowances: tuple[Allowance, ...] = ()


# The process count is one more axis: a sum over the devices of several processes adds its partial
# sums in another order than one process does (measured: 6e-8 apart in float32 on 2 processes), so
# results of runs with different process counts are held to the accumulation bound, as sums are.
ACROSS_PROCESS_COUNTS = "results of runs with different process counts: collectives reorder their sums"


def between(dtype, backends, accumulates: bool = False, process_counts=(1,)) -> Bound:
    """(atol, rtol) for comparing results of ``dtype`` computed on each of ``backends``, by as many
    processes each as ``process_counts`` says.

    Each backend's result is only as close to the truth as its own bound, so two backends agree
    only to the looser of their bounds: the larger atol and the larger rtol of the two.
    """
    accumulates = accumulates or len(set(process_counts)) > 1  # see ACROSS_PROCESS_COUNTS
    bounds = {b: tolerance(dtype, b, accumulates) for b in dict.fromkeys(backends)}
    atol = max(a for a, _ in bounds.values())
    rtol = max(r for _, r in bounds.values())
    default = tolerance(dtype, None, accumulates)
    setting = []
    for backend, (a, r) in bounds.items():
        exc = allowance(dtype, backend)
        # Name an exception only where it loosened the bound and set the one used.
        if exc and (a, r) != default and (a == atol or r == rtol):
            setting.append(exc)
    return Bound(atol, rtol, tuple(setting))
