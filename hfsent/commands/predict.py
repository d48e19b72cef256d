"""``hfsent predict MODEL --input FILE --output FILE``: classify every row of a file."""

from __future__ import annotations

import argparse

from . import add_model_arguments, load_backend_or_exit, positive_int

DESCRIPTION = """Classify a CSV, TSV, JSONL, Parquet or plain-text file (one text per line) and write CSV or JSONL
with every input column, in input order, plus pred_label, pred_score (the probability of that label),
pred_positive_probability and pred_error; for a multi-label model pred_labels (those over their thresholds, joined
by |), one pred_prob_<label> per label and pred_error. A text-pair model reads --text-pair-column too.
Rows with missing, empty or non-text input are not classified:
pred_error says why, the summary counts them, and the run goes on. The file is streamed in chunks."""


def build_parser() -> argparse.ArgumentParser:
    """The ``hfsent predict`` argument parser."""
    from ..inference.defaults import CHUNK_ROWS, DEFAULT_PREFIX, INPUT_FORMATS, OUTPUT_FORMATS, TEXT_COLUMN_CANDIDATES

    parser = argparse.ArgumentParser(prog="hfsent predict", description=DESCRIPTION)
    add_model_arguments(parser)
    parser.add_argument("--input", "-i", required=True, help=f"input file ({', '.join(INPUT_FORMATS)})")
    parser.add_argument("--output", "-o", required=True, help=f"output file ({', '.join(OUTPUT_FORMATS)})")
    parser.add_argument(
        "--text-column",
        default=None,
        help=f"column to classify (default: the first of {', '.join(TEXT_COLUMN_CANDIDATES)} present, "
        "else the only column; plain-text input has one column, 'text')",
    )
    parser.add_argument(
        "--text-pair-column",
        default=None,
        help="column holding each row's second text, for a text-pair model (trained with text_pair_column)",
    )
    parser.add_argument(
        "--prefix", default=DEFAULT_PREFIX, help=f"prefix of the added columns (default {DEFAULT_PREFIX!r})"
    )
    parser.add_argument(
        "--chunk-rows",
        type=positive_int,
        default=CHUNK_ROWS,
        help=f"rows read, length-sorted and scored at a time (default {CHUNK_ROWS})",
    )
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show a progress bar on stderr (default: when stderr is a terminal)",
    )
    return parser


def main(argv: list[str]) -> int:
    """Run ``hfsent predict``; exit code 2 for unusable arguments or files."""
    parser = build_parser()
    args = parser.parse_args(argv)
    from ..inference.files import InputError, TableReader, check_output_path, predict_file

    try:  # every check on the files before the model is loaded
        reader = TableReader(args.input)
        text_column = reader.resolve_text_column(args.text_column)
        if args.text_pair_column is not None:
            reader.resolve_text_pair_column(args.text_pair_column, text_column)
        check_output_path(reader, args.output, args.prefix)
    except InputError as err:
        parser.error(str(err))
    backend = load_backend_or_exit(parser, args.model, args.backend, args.threads)
    pairs_model = bool(getattr(backend.config, "text_pairs", False))
    if pairs_model != (args.text_pair_column is not None):
        parser.error(
            f"{args.model!r} classifies text pairs: give --text-pair-column"
            if pairs_model
            else f"{args.model!r} classifies single texts: leave --text-pair-column out"
        )
    try:  # a multi-label model adds other columns
        label_names = backend.config.label_names if not backend.config.is_binary else None
        check_output_path(reader, args.output, args.prefix, label_names)
    except InputError as err:
        parser.error(str(err))
    try:
        summary = predict_file(
            backend,
            reader,
            args.output,
            text_column,
            threshold=args.threshold,
            batch_size=args.batch_size,
            max_length=args.max_length,
            chunk_rows=args.chunk_rows,
            prefix=args.prefix,
            progress=args.progress,
            text_pair_column=args.text_pair_column,
        )
    except InputError as err:
        parser.error(str(err))
    print(summary.format(args.prefix), flush=True)
    return 0
