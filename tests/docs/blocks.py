"""The code blocks of the documentation (README.md and docs/**/*.md) and the markers that say how each is tested.

Every fenced code block is one of:

- unmarked: run by ``tests/docs/test_docs.py`` as written (``python`` blocks in one namespace per page, in order;
  ``bash`` blocks as a script with ``set -euo pipefail``), in a folder holding ``outputs/quickstart`` (a tiny model
  trained by ``hfsent train``) and ``reviews.csv``;
- ``<!-- run in background: URL -->`` on the line before it: a ``bash`` block started in the background (a server);
  the page's later blocks run once URL answers, and it is stopped at the end of the page;
- ``<!-- tested by: tests/path.py::test_name -->``: what it does is run by that test (which must exist);
- ``<!-- not run: why -->``: not run, for the reason given (hours on a GPU, the real Hub, a benchmark, ...).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"^(?P<indent> *)(?P<fence>```+|~~~+)(?P<lang>[\w+-]*)\s*$")
MARKER = re.compile(r"^\s*<!-- (?P<kind>not run|tested by|run in background): (?P<text>.+?) -->\s*$")
RUNNABLE = ("python", "bash")


@dataclass(frozen=True)
class Block:
    """One fenced code block: where it is, its language and code, and its marker (kind, text) if any."""

    page: str
    line: int
    lang: str
    code: str
    marker: str | None = None
    marker_text: str = ""

    @property
    def where(self) -> str:
        """``page:line`` of the opening fence."""
        return f"{self.page}:{self.line}"


def pages() -> list[Path]:
    """README.md and every Markdown page of the site."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def page_blocks(path: Path) -> list[Block]:
    """The fenced code blocks of one Markdown file, in order."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks, i = [], 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        indent, fence = match["indent"], match["fence"]
        end = i + 1
        while end < len(lines) and lines[end].strip() != fence:
            end += 1
        code = "\n".join(line[len(indent) :] for line in lines[i + 1 : end]) + "\n"
        marker = MARKER.match(lines[i - 1]) if i > 0 else None
        blocks.append(
            Block(
                page=str(path.relative_to(ROOT)),
                line=i + 1,
                lang=match["lang"],
                code=code,
                marker=marker["kind"] if marker else None,
                marker_text=marker["text"] if marker else "",
            )
        )
        i = end + 1
    return blocks
