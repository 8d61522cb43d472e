"""The package's import graph has no cycle, counting imports inside functions and under
``TYPE_CHECKING``: every module can be read, tested and changed from the bottom up."""

from __future__ import annotations

import ast
from pathlib import Path

import spa_vl

ROOT = Path(spa_vl.__file__).parent


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in ROOT.rglob("*.py")}


def _module_of(name: str) -> str | None:
    """The module ``name`` lives in (``spa_vl.a.b.NAME`` -> ``spa_vl.a.b``), or None if not ours."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports(path: Path) -> set[str]:
    """Every module of the package that ``path`` imports, anywhere in its code."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        found |= {m for m in map(_module_of, names) if m}
    return found - {module_name(path)}


def cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` as a path, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name: str, path: list[str]) -> list[str] | None:
        if state.get(name) == 1:
            return [*path[path.index(name) :], name]
        if state.get(name) == 2:
            return None
        state[name] = 1
        for dep in sorted(graph.get(name, ())):
            found = visit(dep, [*path, name])
            if found:
                return found
        state[name] = 2
        return None

    for name in sorted(graph):
        found = visit(name, [])
        if found:
            return found
    return None


def test_the_checker_finds_a_cycle() -> None:
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycle_in_the_package() -> None:
    graph = {name: imports(path) for name, path in MODULES.items()}
    assert len(graph) > 60 and graph["spa_vl.release.build"]  # the scan sees the package
    found = cycle(graph)
    assert found is None, "import cycle: " + " -> ".join(found or [])
