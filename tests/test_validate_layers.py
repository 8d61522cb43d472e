"""The modules of ``spa_vl.validate`` import downward only: no cycle, counting imports inside
functions, and no module imports the package itself (whose ``__init__`` imports them all)."""

from __future__ import annotations

import ast
from pathlib import Path

import spa_vl.validate

PACKAGE = Path(spa_vl.validate.__file__).parent


def module_name(path: Path) -> str:
    return "spa_vl.validate" if path.stem == "__init__" else f"spa_vl.validate.{path.stem}"


def imports(path: Path) -> set[str]:
    """Every module of the package that ``path`` imports, at any depth of its code."""
    ours = {module_name(p) for p in PACKAGE.glob("*.py")}
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        found |= {n for n in names if n in ours}
    return found - {module_name(path)}


def test_no_import_cycle() -> None:
    graph = {module_name(p): imports(p) for p in PACKAGE.glob("*.py")}
    assert len(graph) > 5
    for name, deps in graph.items():
        if name != "spa_vl.validate":
            assert "spa_vl.validate" not in deps, name
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, " -> ".join((*path, name))
        if name not in done:
            for dep in graph[name]:
                visit(dep, (*path, name))
            done.add(name)

    for name in graph:
        visit(name, ())
