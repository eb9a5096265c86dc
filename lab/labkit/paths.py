"""Where the lab's files are: the notebooks beside this package, tests and outputs at the root.

``JAXLAB_ROOT`` overrides the root, for an installed copy that is not a checkout.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(os.environ.get("JAXLAB_ROOT", Path(__file__).resolve().parents[2]))
NOTEBOOKS = ROOT / "lab"
OUT = ROOT / "out"
REFERENCE = NOTEBOOKS / "labkit" / "references"  # known-good runs, shipped in the package: the verdict's baselines


def reference(name: str = "cpu", smoke: bool = False) -> Path:
    """A checked-in reference run: ``<name>.json`` at full sizes, ``<name>-smoke.json`` in smoke mode."""
    return REFERENCE / f"{name}{'-smoke' if smoke else ''}.json"


def notebook_paths() -> list[Path]:
    """The lab's exercise notebooks, in their numbered order."""
    return sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
