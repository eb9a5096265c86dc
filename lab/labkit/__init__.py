"""JAX Lab's shared package: the backend registry, parameter checks, the notebook runner,
result recording, and the assertions and tolerances that notebooks and tests share."""

__version__ = "0.1.0"

from .backends import BACKENDS, get_backend
from .checks import assert_close
from .errors import LabError, UsageError
from .jaxsetup import setup
from .results import Recorder


def start(notebook: str, namespace: dict):
    """``jax, lab = labkit.start("01_jax_vs_numpy", globals())``: see :mod:`labkit.notebook`."""
    from .notebook import start as _start

    return _start(notebook, namespace)


def pending(exercise: int, message: str):
    """What a handout binds an exercise's answer to until it is written (see labkit.notebook)."""
    from .notebook import pending as _pending

    return _pending(exercise, message)


__all__ = ["BACKENDS", "get_backend", "assert_close", "LabError", "UsageError", "setup", "start", "pending", "Recorder"]
