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


def imported_by(code: str) -> list[str]:
    """The modules among the notebook readers that ``code`` leaves imported, in a fresh Python."""
    import subprocess
    import sys

    readers = ("nbformat", "papermill", "jsonschema", "rfc3987_syntax")
    probe = f"{code}\nimport sys\nprint(' '.join(m for m in {readers!r} if sys.modules.get(m) is not None))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_a_kernel_starts_jax_without_reading_notebooks():
    """Every notebook's kernel runs labkit.start: nbformat and jsonschema would add over a second to
    each of them, and a kernel reads a notebook only for lab.solution()."""
    assert imported_by("import labkit, labkit.notebook, labkit.timing; labkit.setup('cpu')") == []


def test_a_worker_reads_notebooks_without_building_an_iri_grammar():
    """Each notebook's worker imports papermill; jsonschema would build rfc3987-syntax's grammar
    for it (1.5 to 2 s), for a format that no notebook uses."""
    assert "rfc3987_syntax" not in imported_by("import labkit.execute")
