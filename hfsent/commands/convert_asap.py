"""``hfsent convert-asap IN_DIR OUT_DIR --mode labels|pairs``: ASAP's aspect CSVs as hfsent training data."""

from __future__ import annotations

import argparse

from ..datasets_asap import MODES, AsapFormatError, convert_asap
from ..errors import RecipeError

PROG = "hfsent convert-asap"


def main(argv: list[str] | None = None) -> int:
    """Convert ASAP's train/dev/test CSVs into JSON Lines splits; bad input exits 2 with one line."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Convert ASAP (Dianping reviews, 18 aspect categories) into multi-label rows (--mode labels) "
        "or (aspect, review) -> pos/neg pair rows (--mode pairs), one JSON Lines file per split.",
    )
    parser.add_argument("in_dir", help="folder with ASAP's train/dev/test CSVs (or *_sample.csv)")
    parser.add_argument("out_dir", help="folder to write train.jsonl, validation.jsonl and test.jsonl into")
    parser.add_argument("--mode", choices=MODES, default="labels", help="labels (default) or pairs")
    args = parser.parse_args(argv)
    try:
        summary = convert_asap(args.in_dir, args.out_dir, args.mode)
    except (AsapFormatError, FileNotFoundError, NotADirectoryError) as err:
        raise RecipeError(str(err)) from err
    rows = ", ".join(f"{split} {n}" for split, n in summary["rows"].items())
    print(f"wrote {rows} rows to {args.out_dir}")
    if args.mode == "labels":
        print(f"{len(summary['labels'])} labels: {', '.join(summary['labels'])}")
    else:
        left = sum(summary["neutral_left_out"].values())
        print(f"left out {left} neutral aspect mentions (a pair model answers neg/pos)")
    return 0
