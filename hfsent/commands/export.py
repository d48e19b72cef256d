"""``hfsent export MODEL OUT --onnx [--quantize int8]``: ONNX export with a parity check against torch."""

from __future__ import annotations

import argparse

from ..errors import report_error
from . import load_backend_or_exit, positive_int

DESCRIPTION = """Export an hfsent checkpoint to ONNX in OUT (model.onnx, plus model_int8.onnx with --quantize int8,
and the tokenizer and config, so `--backend onnx` needs only OUT). Then compare the exported models with
torch on sample texts and print the largest difference in P(pos) and the label agreement (a multi-label model: in
every label's probability, and the agreement of each label's decision at its threshold; a text-pair model: on text
pairs, from --text-pair-column of --parity-file or random ones)."""

# An fp32 export further than this from torch is broken (exit 1); int8 is only reported.
FP32_TOLERANCE = 1e-3


def build_parser() -> argparse.ArgumentParser:
    """The ``hfsent export`` argument parser."""
    from ..inference.defaults import QUANTIZATIONS

    parser = argparse.ArgumentParser(prog="hfsent export", description=DESCRIPTION)
    parser.add_argument("model", metavar="MODEL", help="an hfsent checkpoint (folder or Hub id)")
    parser.add_argument("out", metavar="OUT", help="output folder (created; existing ONNX files are replaced)")
    parser.add_argument("--onnx", action="store_true", help="export to ONNX (the only format so far; required)")
    parser.add_argument("--quantize", choices=QUANTIZATIONS, default=None, help="also write a dynamic int8 model")
    parser.add_argument(
        "--parity-file",
        default=None,
        help="check parity on the texts of this file (any `hfsent predict` input; default: random vocabulary texts)",
    )
    parser.add_argument("--text-column", default=None, help="text column of --parity-file (as `hfsent predict`)")
    parser.add_argument(
        "--text-pair-column",
        default=None,
        help="for a text-pair model, the column of --parity-file holding each row's second text (default: random "
        "vocabulary pairs)",
    )
    parser.add_argument(
        "--parity-samples", type=positive_int, default=256, help="texts to check parity on (default 256)"
    )
    parser.add_argument(
        "--threads", type=positive_int, default=None, help="CPU threads for the parity check (default: one per core)"
    )
    return parser


def _parity_texts(
    parser: argparse.ArgumentParser, args: argparse.Namespace, tokenizer, text_pairs: bool
) -> tuple[list[str], list[str] | None]:
    """The texts (and, for a text-pair model, their second texts) to check parity on."""
    from ..inference.export import random_texts
    from ..inference.files import InputError, TableReader, text_problem

    if args.parity_file is None:
        if not text_pairs:
            return random_texts(tokenizer, args.parity_samples), None
        # short first texts (an aspect), second texts of every length (a review)
        firsts = random_texts(tokenizer, args.parity_samples, seed=1, max_tokens=8)
        return firsts, random_texts(tokenizer, args.parity_samples)
    try:
        reader = TableReader(args.parity_file)
        columns = [reader.resolve_text_column(args.text_column)]
        if args.text_pair_column is not None:
            columns.append(reader.resolve_text_pair_column(args.text_pair_column, columns[0]))
        rows: list[list[str]] = []
        for chunk in reader.chunks():
            rows += [
                [r.values[c] for c in columns]
                for r in chunk
                if not r.problem and not any(text_problem(r.values.get(c)) for c in columns)
            ]
            if len(rows) >= args.parity_samples:
                break
        reader.close()
    except InputError as err:
        parser.error(str(err))
    if not rows:
        parser.error(f"no usable text in column {' and '.join(map(repr, columns))} of {args.parity_file!r}")
    rows = rows[: args.parity_samples]
    return [r[0] for r in rows], ([r[1] for r in rows] if len(columns) == 2 else None)


def main(argv: list[str]) -> int:
    """Run ``hfsent export``; exit 2 for unusable arguments, 1 when the fp32 export does not match torch."""
    from pathlib import Path

    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.onnx:
        parser.error("choose an export format: --onnx")
    if args.text_column and not args.parity_file:
        parser.error("--text-column needs --parity-file")
    if args.text_pair_column and not args.parity_file:
        parser.error("--text-pair-column needs --parity-file")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        parser.error(f"OUT exists and is not a folder: {args.out!r}")

    from ..configuration_hfsent import MULTI_LABEL
    from ..inference import load_backend
    from ..inference.export import export_onnx, parity

    reference = load_backend_or_exit(parser, args.model, "torch", threads=args.threads)
    config = reference.config
    text_pairs = bool(getattr(config, "text_pairs", False))
    if args.text_pair_column and not text_pairs:
        parser.error(f"{args.model!r} classifies single texts: leave --text-pair-column out")
    if text_pairs and args.parity_file and not args.text_pair_column:
        parser.error(f"{args.model!r} classifies text pairs: give --text-pair-column with --parity-file")
    texts, pairs = _parity_texts(parser, args, reference.tokenizer, text_pairs)

    files = export_onnx(args.model, out, quantize=args.quantize)
    for file in files:
        print(f"wrote {file}", flush=True)
    if getattr(config, "problem_type", None) == MULTI_LABEL:
        threshold = config.label_thresholds()
        print(f"parity with torch on {len(texts)} texts, {len(threshold)} labels (each at its threshold):")
    else:
        threshold = config.threshold
        kind = "text pairs" if text_pairs else "texts"
        print(f"parity with torch on {len(texts)} {kind} (threshold {threshold:g}):")
    status = 0
    for file in files:
        candidate = load_backend(str(file), "onnx", args.threads)
        report = parity(reference, candidate, texts, threshold, file.name, pairs=pairs)
        print(f"  {report}", flush=True)
        if file.name == files[0].name and report.max_abs_diff > FP32_TOLERANCE:
            report_error("hfsent export", f"the fp32 export differs from torch by more than {FP32_TOLERANCE:g}")
            status = 1
    return status
