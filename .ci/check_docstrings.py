#!/usr/bin/env python3
"""Fail when a public function, class or method of hfsent/ has no docstring.

Public: a name without a leading underscore, at module level or in a public class (dunder methods are private
here). Usage: ``python .ci/check_docstrings.py [package_dir]``; exit 1 and the list when any lacks one.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def undocumented(path: Path) -> list[str]:
    """``path:line name`` of each public definition in ``path`` without a docstring."""
    missing: list[str] = []

    def walk(body: list[ast.stmt], prefix: str) -> None:
        for node in body:
            if isinstance(node, DEFINITIONS) and not node.name.startswith("_"):
                if ast.get_docstring(node) is None:
                    missing.append(f"{path}:{node.lineno} {prefix}{node.name}")
                if isinstance(node, ast.ClassDef):
                    walk(node.body, f"{prefix}{node.name}.")

    walk(ast.parse(path.read_text(encoding="utf-8"), str(path)).body, "")
    return missing


def main(argv: list[str]) -> int:
    """Check every module of the package (default ``hfsent``)."""
    root = Path(argv[0] if argv else Path(__file__).resolve().parents[1] / "hfsent")
    files = sorted(root.rglob("*.py"))
    missing = [line for path in files for line in undocumented(path)]
    for line in missing:
        print(f"no docstring: {line}")
    if missing:
        return 1
    print(f"every public function and class has a docstring ({len(files)} modules in {root.name}/)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
