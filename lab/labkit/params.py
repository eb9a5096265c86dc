"""Notebook parameters: parse ``-p name=value``, check names and types before anything runs.

Papermill only warns about a parameter the notebook does not declare, and passes any type
through. The lab refuses both up front, naming the notebook, the parameter and what is allowed.
Each notebook declares its parameters in a cell tagged ``parameters``, one per line, with a
type annotation and a ``# help`` comment; :func:`declared` reads them with papermill's own
inspection.
"""

from __future__ import annotations

import ast
import json
import math
from collections.abc import Callable
from pathlib import Path

from .errors import UsageError

# Every notebook declares these; the runner sets the first and last itself.
CORE = ("backend", "seed", "smoke", "results_dir")
RUNNER_SET = ("backend", "results_dir", "processes")
RUNNER_SET_BY = {
    "backend": "choose it with --backend",
    "results_dir": "results go to <out>/results; choose with --out",
    "processes": "choose it with --processes",
}
MULTI_PROCESS = "processes"  # the parameter a notebook declares when it can run as several processes

_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off"}


def _to_bool(text: str) -> bool:
    low = text.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ValueError(text)


CONVERTERS: dict[str, Callable[[str], object]] = {"int": int, "float": float, "bool": _to_bool, "str": str}


def declared(notebook: Path) -> dict[str, dict]:
    """name -> {type, default, help} from the notebook's ``parameters`` cell."""
    import papermill  # here, not at the top: a notebook's kernel reads its parameters with names() alone

    found = {}
    try:
        inspected = papermill.inspect_notebook(str(notebook))
    except Exception as err:  # nbformat's and JSON's own errors, an unreadable file: one line for all
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise UsageError(f"{notebook}: not a readable notebook ({first})") from None
    for name, p in inspected.items():
        kind = p["inferred_type_name"]
        if kind in (None, "None"):
            try:
                kind = type(ast.literal_eval(p["default"])).__name__
            except (ValueError, SyntaxError):
                kind = "str"
        found[name] = {"type": kind, "default": p["default"], "help": p["help"]}
    return found


def names(notebook: Path) -> list[str]:
    """The names the ``parameters`` cell assigns, read cheaply: what a notebook's kernel needs
    (labkit.start), without :func:`declared`'s papermill."""
    cells = json.loads(Path(notebook).read_text()).get("cells", [])
    cell = next((c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])), None)
    if cell is None:
        return []
    source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
    found = []
    for node in ast.parse(source).body:
        targets = (
            node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        )
        found += [t.id for t in targets if isinstance(t, ast.Name)]
    return found


def is_guest(notebook: Path) -> bool:
    """A notebook written elsewhere: its ``parameters`` cell, if it has one, lacks the lab's core
    parameters. It runs as a guest (labkit.guest), and takes none."""
    return not has_core(names(notebook))


def has_core(declared) -> bool:
    """Whether the parameter names ``declared`` hold the lab's core ones: a lab notebook's."""
    return all(name in declared for name in CORE)


def parse_assignments(items: list[str]) -> dict[str, str]:
    """``["name=value", ...]`` -> {name: raw text}; a malformed item is a usage error."""
    raw = {}
    for item in items:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name.isidentifier():
            raise UsageError(f"malformed parameter {item!r}: expected -p name=value, e.g. -p seed=1")
        raw[name] = value
    return raw


def convert(notebook: str, name: str, kind: str, text) -> object:
    if not isinstance(text, str):  # already typed (from Python callers)
        if kind == "float" and isinstance(text, int) and not isinstance(text, bool):
            return float(text)
        if type(text).__name__ == kind and not (kind == "float" and not math.isfinite(text)):
            return text
        raise UsageError(f"{notebook}: parameter {name!r} expects {kind}, got {text!r}")
    try:
        value = CONVERTERS[kind](text)
        if kind == "float" and isinstance(value, float) and not math.isfinite(value):
            raise ValueError(text)
        return value
    except KeyError:
        raise UsageError(f"{notebook}: parameter {name!r} has type {kind}, which -p cannot set") from None
    except ValueError:
        allowed = {"bool": "true or false", "int": "an int", "float": "a finite float"}.get(kind, f"a {kind}")
        raise UsageError(f"{notebook}: parameter {name!r} expects {allowed}, got {text!r}") from None


def resolve(notebooks: list[Path], given: dict[str, object]) -> dict[str, dict[str, object]]:
    """Per notebook, the typed values of the given parameters that it declares.

    A name no selected notebook declares is an error (listing what they do declare); so is a
    value that does not fit the declared type; so is a name the runner sets itself.
    """
    for name in RUNNER_SET:
        if name in given:
            raise UsageError(f"parameter {name!r} is set by the lab itself ({RUNNER_SET_BY[name]})")
    # A notebook without the lab's core parameters runs as a guest (labkit.guest): it takes none.
    decls = {}
    for nb in notebooks:
        decl = declared(nb)  # an unreadable notebook stops here, in one line
        decls[nb.stem] = decl if has_core(decl) else {}
    known = sorted({n for d in decls.values() for n in d} - set(RUNNER_SET))
    for name in given:
        if name not in known:
            raise UsageError(
                f"unknown parameter {name!r}: not declared by {', '.join(decls)}; allowed: {', '.join(known)}"
            )
    return {
        stem: {name: convert(stem, name, decl[name]["type"], value) for name, value in given.items() if name in decl}
        for stem, decl in decls.items()
    }
