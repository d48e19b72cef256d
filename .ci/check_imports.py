#!/usr/bin/env python3
"""Fail when hfsent/ has an import cycle among its modules.

The graph holds every import a module makes: module-level ``import`` / ``from ... import`` statements (also inside
``if``/``try`` blocks) and those inside functions and classes, which run later but still tie the two modules
together (a cycle through a function-level import is a cycle that was only hidden); not those under
``if TYPE_CHECKING:``, which never run. Importing ``hfsent.a.b`` also runs the package ``hfsent.a`` (its
``__init__``), so that counts as an edge too, except where the importer is inside that package already (the root
package ``hfsent``, and a subpackage for its own modules).

Usage: ``python .ci/check_imports.py [package_dir]``; exit 1 and the cycles when there are any.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path


def module_names(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` file of the package at ``root``."""
    names = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.Module):
    """Every import node of the module, in functions and classes too, except those under ``if TYPE_CHECKING:``."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
        else:
            stack.extend(ast.iter_child_nodes(node))


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The modules of the package that ``name`` imports (anywhere in it, see `_imports`)."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in _imports(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
            continue
        if node.level:
            base = package.split(".")
            base = base[: len(base) - (node.level - 1)]
            source = ".".join(base + ([node.module] if node.module else []))
        else:
            source = node.module or ""
        for alias in node.names:  # `from pkg import submodule` imports the submodule; `from mod import name`, mod
            submodule = f"{source}.{alias.name}"
            targets.add(submodule if submodule in modules else source)
    root = next(iter(modules)).split(".")[0]
    edges: set[str] = set()
    for target in targets:
        while target and target not in modules:  # `from .a import function` -> module .a
            target = target.rpartition(".")[0]
        if target and target != name:
            edges.add(target)
        # importing a.b.c also runs the packages a.b and a, unless the importer is inside them already
        parent = target.rpartition(".")[0]
        while parent and parent not in (root, name) and not name.startswith(parent + "."):
            edges.add(parent)
            parent = parent.rpartition(".")[0]
    return edges


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (or a self-import), by Tarjan's algorithm."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph[node]):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph[node]:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def main(argv: list[str]) -> int:
    """Check the package (default ``hfsent``); print the graph's size and any cycle."""
    root = Path(argv[0] if argv else Path(__file__).resolve().parents[1] / "hfsent")
    modules = module_names(root)
    graph = {name: imports_of(name, path, modules) for name, path in modules.items()}
    cycles = find_cycles(graph)
    edges = sum(len(v) for v in graph.values())
    if cycles:
        for cycle in cycles:
            print("import cycle: " + " <-> ".join(cycle))
        return 1
    print(
        f"no import cycles: {len(modules)} modules, {edges} imports inside {root.name}/ (function-level ones included)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
