"""JAX Lab's shared package: the backend registry, parameter checks, the notebook runner,
result recording, and the assertions and tolerances that notebooks and tests share.

The names below are loaded on first use: every notebook's worker and kernel imports this
package, and most of them need only a part of it (a worker needs no NumPy, a kernel no papermill).
"""

from __future__ import annotations

import importlib
import sys

# jsonschema, when rfc3987-syntax is installed (JupyterLab's dependencies install it), builds that
# package's grammar on import to check "iri" strings: 1.5 to 2 s in every process that reads a
# notebook (each notebook's worker, through papermill and nbformat), and nbformat never checks an
# "iri". Marked absent, it is skipped: jsonschema then leaves that one format unchecked.
sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]

__version__ = "0.1.0"

_HOMES = {
    "BACKENDS": "backends",
    "get_backend": "backends",
    "assert_close": "closeness",
    "LabError": "errors",
    "UsageError": "errors",
    "setup": "jaxsetup",
    "Recorder": "results",
    "start": "notebook",
    "pending": "notebook",
}


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module 'labkit' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])


__all__ = list(_HOMES)
