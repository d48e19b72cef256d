"""The ``hfsent`` command line: ``hfsent <command> [args...]``.

Each command lives in its own module and exposes ``main(argv: list[str]) -> int``; it is imported
only when run, so ``hfsent --help`` stays fast.
"""

from __future__ import annotations

import importlib
import sys

# command -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "pretrain": ("hfsent.commands.pretrain", "MLM-pretrain or continue pretraining a BERT encoder"),
    "train": ("hfsent.commands.train", "fine-tune a sentiment model from a recipe YAML"),
    "push": ("hfsent.commands.push", "publish an output directory to the Hugging Face Hub (one commit)"),
    "predict": ("hfsent.commands.predict", "classify every row of a CSV/JSONL/Parquet/text file"),
    "export": ("hfsent.commands.export", "export a model to ONNX (optionally int8-quantized), with a parity check"),
    "serve": ("hfsent.commands.serve", "serve a model over HTTP (Inference Endpoints text-classification API)"),
}


def _usage() -> str:
    lines = ["usage: hfsent <command> [args...]", "", "commands:"]
    lines += [f"  {name:<10} {help_}" for name, (_, help_) in sorted(COMMANDS.items())]
    lines += ["", "Run `hfsent <command> --help` for a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``hfsent`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    if argv[0] == "--version":
        from . import __version__

        print(f"hfsent {__version__}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"hfsent: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
