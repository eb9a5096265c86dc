"""The package's shape: no import circle among labkit's modules, and the container engine run
from one module only (labkit.engine), so docker's and podman's dialects live in one place."""

from __future__ import annotations

import ast
from pathlib import Path

from labkit import paths

PACKAGE = paths.NOTEBOOKS / "labkit"


def module_name(file: Path) -> str:
    parts = list(file.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports() -> dict[str, set[str]]:
    """Each labkit module and the labkit modules it imports (at the top or inside a function)."""
    files = {module_name(f): f for f in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in files}
    for name, file in files.items():
        package = name if file.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(file.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom):
                base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
                module = ".".join(base + ([node.module] if node.module else []))
                targets = [module, *(f"{module}.{alias.name}" for alias in node.names)]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            graph[name] |= {t for t in targets if t in files and t != name and t != "labkit"}
    return graph


def cycle_from(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle, as the path around it, or None."""
    state: dict[str, str] = {}

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt, [*path, nxt])):
                return found
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start, [start])):
            return found
    return None


def test_labkit_has_no_import_circle():
    assert cycle_from(imports()) is None, " -> ".join(cycle_from(imports()) or [])


def test_the_cycle_finder_finds_a_circle():
    assert cycle_from({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle_from({"a": {"b"}, "b": set()}) is None


def test_only_labkit_engine_builds_engine_commands():
    """A command line that starts with the engine's program is built in labkit/engine.py only."""
    builders = []
    for file in PACKAGE.rglob("*.py"):
        if file.name == "engine.py":
            continue
        for node in ast.walk(ast.parse(file.read_text())):
            if isinstance(node, ast.List) and node.elts and isinstance(node.elts[0], ast.Attribute):
                if node.elts[0].attr == "command":
                    builders.append(f"{file.relative_to(PACKAGE)}:{node.lineno}")
    assert builders == []
