"""JAX Lab's shared package: the backend registry, parameter checks, the notebook runner,
result recording, and the assertions and tolerances that notebooks and tests share."""

__version__ = "0.1.0"

from .backends import BACKENDS, get_backend
from .checks import assert_close
from .errors import LabError, UsageError
from .jaxsetup import setup
from .results import Recorder

__all__ = ["BACKENDS", "get_backend", "assert_close", "LabError", "UsageError", "setup", "Recorder"]
