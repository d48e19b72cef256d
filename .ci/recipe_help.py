#!/usr/bin/env python3
"""Record the recipe commands' help (``hfsent train/pretrain --help``) in hfsent/recipe_help.json.

Run after changing a recipe key, its help or its default, or after upgrading transformers (``make recipe-help``);
tests/cli/test_help.py fails while the record differs from the live parsers. See `hfsent.recipe_help`.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hfsent.cli import COMMANDS
from hfsent.recipe_help import RECIPE_COMMANDS, write_record

if __name__ == "__main__":
    parsers = [importlib.import_module(COMMANDS[name][0]).build_parser() for name in RECIPE_COMMANDS]
    print(f"wrote {write_record(parsers)}")
