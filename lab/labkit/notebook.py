"""What a notebook calls: one line to start, one call to check an exercise.

    jax, lab = labkit.start("01_jax_vs_numpy", globals())
    ...
    lab.check("standardized", z, expected, hint="did you pass keepdims=True to the reductions?")

:func:`start` starts JAX on the notebook's backend (see :func:`labkit.setup`) and reads the
notebook's parameters from its namespace, as its ``parameters`` cell and papermill left them.
:meth:`Lab.check` does three jobs in one call, so a check cell reads as a check and nothing else:

- it compares with the backend's tolerance for the dtype (the one table, :mod:`labkit.tolerance`);
- on a mismatch it raises :class:`CheckFailed` with what a learner needs to find the slip (shapes,
  dtypes, the first element that differs and by how much, and the hint), never the whole answer;
- it records the value for ``invoke compare`` and the verdict, so no recording call is in sight.

A learner who is stuck calls :meth:`Lab.solution`, which shows the exercise's answer and loads it,
so the rest of the notebook works and its state ends as the instructor's run's (nothing runs twice).
A check that fails after an earlier exercise's check failed says to fix that one first.
"""

from __future__ import annotations

import json
import textwrap

import numpy as np

from . import params, paths, progress
from .backends import default_backend
from .check_cells import CheckFailed, brief_errors_in_check_cells, follow_check_cells
from .differences import message, mismatch
from .errors import UsageError
from .jaxsetup import setup
from .results import Recorder
from .tolerance import DEFAULT as TOLERANCES
from .tolerance import NoTolerance


class Pending:
    """What a handout binds an exercise's names to until the learner writes them: any use raises
    the exercise's message (its number, its title, and the way out, ``lab.solution(N)``)."""

    def __init__(self, exercise: int, message: str):
        object.__setattr__(self, "_message", message)
        object.__setattr__(self, "exercise", exercise)

    def _raise(self, *args, **kwargs):
        raise NotImplementedError(object.__getattribute__(self, "_message"))

    def __getattr__(self, name):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        self._raise()

    def __repr__(self) -> str:
        return f"<exercise {object.__getattribute__(self, 'exercise')}: not written yet>"

    __call__ = __getitem__ = __iter__ = __len__ = __bool__ = __array__ = __float__ = __int__ = _raise
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __truediv__ = __rtruediv__ = _raise
    __matmul__ = __rmatmul__ = __neg__ = __pow__ = __eq__ = __lt__ = __gt__ = __le__ = __ge__ = _raise
    # None makes instances unhashable, as Python documents it; object's declared __hash__ is a method, not None.
    __hash__ = None  # type: ignore[assignment]


def pending(exercise: int, message: str) -> Pending:
    return Pending(exercise, message)


def start(notebook: str, namespace: dict):
    """Start JAX for ``notebook`` (its stem, e.g. "01_jax_vs_numpy") on its backend; return
    ``(jax, lab)``. ``namespace`` is the notebook's ``globals()``.

    The room decides the device: a notebook opened by hand leaves ``backend`` empty, and starts on
    the backend its image or environment names (``$INVOKE_JAXLAB_BACKEND``), else the CPU. Only a
    value papermill injected (``invoke lab --backend``) overrides it. Where the room names a device
    that is absent, :func:`labkit.setup` refuses in one line; JAX never falls back to the CPU.
    """
    brief_errors_in_check_cells()
    source = paths.NOTEBOOKS / f"{notebook}.ipynb"
    if not source.is_file():  # before JAX starts: a wrong name is refused at once
        raise UsageError(
            f"labkit.start({notebook!r}): no such notebook in {paths.NOTEBOOKS}; give the "
            f"notebook's own name, e.g. {paths.notebook_paths()[0].stem!r}"
        )
    backend = namespace.get("backend") or default_backend()
    namespace["backend"] = backend  # what the notebook's own code reads (plots, printed lines)
    declared = params.names(source)
    # A notebook that declares ``processes`` can run as several processes (invoke lab --processes).
    jax = setup(backend, int(namespace.get("processes") or 1) if "processes" in declared else 1)
    given = {name: namespace[name] for name in declared if name in namespace and name != "results_dir"}
    lab = Lab(notebook, backend, given, namespace.get("results_dir") or "", namespace, jax.process_index())
    follow_check_cells(lab)
    return jax, lab


class Lab:
    """One notebook's checks and records. Values go to ``<results_dir>/<notebook>.json`` when the
    lab runs the notebook (it sets ``results_dir``); a learner's own session writes nothing."""

    def __init__(self, notebook: str, backend: str, given: dict, results_dir: str, namespace: dict, process: int = 0):
        self.notebook, self.backend, self.params = notebook, backend, dict(given)
        self._namespace = namespace
        self.record = Recorder(notebook, results_dir or ".", dict(given), process)
        self._saving = bool(results_dir)
        self.exercise: int | None = None  # the exercise the running check cell checks, if known
        self._unresolved: dict[int, str] = {}  # exercise -> the check of it that failed

    # -- checks --------------------------------------------------------------------------------

    def check(
        self, key: str, got, expected, *, hint: str = "", accumulates: bool = False, dtype=None, record: bool = True
    ) -> None:
        """``got`` matches ``expected`` (usually a float64 NumPy reference) within this backend's
        tolerance for ``got``'s dtype; with ``dtype``, ``got`` must also be of that dtype."""
        _unwritten(got)
        actual = np.asarray(got)
        wanted = np.asarray(expected)
        compared = actual
        if not hasattr(got, "dtype") and dtype is None and actual.dtype.kind == "f":
            # A Python list or number holds what a JAX computation gave: float32 by default. NumPy
            # would call it float64 and hold it to float64's bound, rejecting a right answer.
            compared = actual.astype(np.float32)
        try:
            problem = mismatch(compared, wanted, dtype, self.backend, accumulates)
        except NoTolerance:
            known = ", ".join(n for n in TOLERANCES if n.startswith(("float", "bfloat", "complex")))
            problem = f"got {actual.dtype.name} values, which the lab has no tolerance for; give {known}"
            self._fail(key, problem, hint)
        if problem:
            kind = "" if hasattr(got, "dtype") else f" (got a {type(got).__name__}, compared as {compared.dtype.name})"
            self._fail(key, problem + kind, hint)
        if record:
            self.record.value(key, actual, accumulates=accumulates)
        self._noted(key, passed=True)
        print(f"✓ {key}")

    def check_equal(self, key: str, got, expected, *, hint: str = "", record: bool = True) -> None:
        """``got == expected`` exactly: counts, flags, dtypes, shapes, strings."""
        _unwritten(got)
        plain = _plain(got)
        if plain != _plain(expected):
            what = f"got {plain!r}" if _short(plain) else f"got a {type(got).__name__} that differs"
            self._fail(key, what, hint)
        if record:
            self.record.fact(key, plain)
        self._noted(key, passed=True)
        print(f"✓ {key}")

    def check_true(self, key: str, condition: bool, *, hint: str = "") -> None:
        """A property that must hold (nothing is recorded)."""
        if not condition:
            self._fail(key, "the condition does not hold", hint)
        self._noted(key, passed=True)
        print(f"✓ {key}")

    def _noted(self, key: str, passed: bool) -> None:
        """A learner's check goes into their progress notes; the lab's own runs note nothing."""
        if not self._saving:
            progress.note(self.notebook, self.exercise, key, passed)

    def _fail(self, key: str, problem: str, hint: str):
        self._noted(key, passed=False)
        text = message(key, problem, hint, self.exercise)
        if self.exercise is not None:
            # A check that builds on an earlier exercise fails too when that one is wrong: its hint
            # would send the learner to the wrong place, so name the first failure.
            if earlier := sorted(n for n in self._unresolved if n < self.exercise):
                first = earlier[0]
                text += (
                    f"\nfirst fix exercise {first}: its check failed too ({self._unresolved[first]}), "
                    f"and this exercise builds on what came before"
                )
            self._unresolved.setdefault(self.exercise, f"check {key!r}")
        raise CheckFailed(text)

    # -- what is recorded without a check --------------------------------------------------------

    def fact(self, key: str, value) -> None:
        self.record.fact(key, _plain(value))

    def value(self, key: str, x, accumulates: bool = False) -> None:
        self.record.value(key, x, accumulates=accumulates)

    def metric(self, key: str, value: float) -> None:
        self.record.metric(key, value)

    def timing(self, subject: str, variant: str, seconds: float) -> None:
        self.record.timing(subject, variant, seconds)

    def save(self) -> None:
        """Write the record when the lab runs this notebook; silent either way."""
        if self._saving:
            self.record.save()

    # -- stuck? ----------------------------------------------------------------------------------

    def solution(self, exercise: int) -> None:
        """Show exercise ``exercise``'s answer and load it, so the rest of the notebook can go on.

        Only the answer and the part of its cell that the stub stopped run (see
        :func:`labkit.handouts.answer`), so nothing prints twice and no random number is drawn
        twice: the notebook's state ends as in the instructor's run."""
        from .handouts import answer

        found = answer(paths.NOTEBOOKS / f"{self.notebook}.ipynb", exercise)
        print(f"Exercise {exercise} ({found.exercise.title}), the answer, now loaded:\n")
        print(textwrap.indent(found.code, "    ") + "\n")
        for part, source in (("answer", found.code), ("rest of its cell", found.rest)):
            exec(compile(source, f"<exercise {exercise}: {part}>", "exec"), self._namespace)
        self._unresolved.pop(exercise, None)

    def reference(self, name: str):
        """A reference function the instructor's check cell defines out of the learner's sight
        (between ``### BEGIN HIDDEN TESTS`` and ``### END HIDDEN TESTS``), where the expected value is
        the answer itself; loaded from the instructor's notebook in a handout."""
        if name in self._namespace:
            return self._namespace[name]
        from .handouts import hidden_definition

        scope = dict(self._namespace)  # the notebook's names, but its namespace stays as it was
        exec(
            compile(hidden_definition(paths.NOTEBOOKS / f"{self.notebook}.ipynb", name), f"<reference {name}>", "exec"),
            scope,
        )
        return scope[name]


def _unwritten(x) -> None:
    """A check of an exercise not written yet fails with the exercise's own message."""
    if isinstance(x, Pending):
        x._raise()


def _plain(x):
    """A JSON value for ``x``: NumPy and JAX scalars and arrays become Python ones."""
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_plain(v) for v in x]
    if hasattr(x, "tolist") and not isinstance(x, str):
        return np.asarray(x).tolist()
    if isinstance(x, np.dtype) or type(x).__name__ in ("dtype", "DType"):
        return str(x)
    return x


def _short(x) -> bool:
    return len(json.dumps(x, default=str)) <= 80


__all__ = ["start", "Lab", "CheckFailed", "Pending", "pending"]
