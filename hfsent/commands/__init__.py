"""The ``hfsent`` CLI's commands, one module each, each with ``main(argv) -> int``.

Options shared by the inference commands (``predict``, ``serve``, ``export``) are defined here once. A command
imports torch, transformers and the like only once its arguments are parsed, so that its ``--help`` is quick.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from ..datasource import is_missing_local_path
from ..errors import first_line
from ..inference.defaults import BACKENDS

if TYPE_CHECKING:
    from ..inference import InferenceBackend


def positive_int(value: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value!r}")
    return number


def threshold(value: str) -> float:
    """argparse type: a decision threshold strictly between 0 and 1."""
    from ..inference.labels import validate_threshold

    try:
        return validate_threshold(float(value))
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """MODEL, --backend, --threshold, --max-length, --batch-size and --threads."""
    parser.add_argument(
        "model",
        metavar="MODEL",
        help="an hfsent checkpoint (folder or Hub id), or a folder written by `hfsent export --onnx`",
    )
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default=None,
        help="torch, or onnx: ONNX Runtime on an exported folder (its int8 model when there is one); default: "
        "onnx for a folder holding model.onnx and no torch weights, else torch",
    )
    parser.add_argument(
        "--threshold",
        type=threshold,
        default=None,
        help="decision threshold on P(pos) (default: the model's); a multi-label model's for every label",
    )
    parser.add_argument(
        "--max-length",
        type=positive_int,
        default=None,
        help="truncate texts to this many tokens (default and cap: what the model accepts, usually 512)",
    )
    parser.add_argument(
        "--batch-size",
        type=positive_int,
        default=64,
        help="at most this many texts, and 16 tokens per text, per forward pass (default 64)",
    )
    parser.add_argument(
        "--threads",
        type=positive_int,
        default=None,
        help="CPU cores the model runs on, one batch on each at once (default: every available core)",
    )


def load_backend_or_exit(
    parser: argparse.ArgumentParser, model: str, backend: str | None = None, threads: int | None = None
) -> InferenceBackend:
    """Load ``model`` with ``backend`` (None: `~hfsent.inference.detect_backend`); a model that cannot be
    loaded is a usage error (exit 2)."""
    from transformers.utils import logging as hf_logging

    from ..inference.backends import detect_backend, load_backend

    if is_missing_local_path(model):
        parser.error(f"model not found: {model!r}")  # a path, not a Hub id: say so plainly
    backend = backend or detect_backend(model)
    hf_logging.disable_progress_bar()
    try:
        return load_backend(model, backend, threads)
    except (OSError, ValueError) as err:  # not an hfsent model, no tokenizer, unreachable Hub id
        parser.error(f"cannot load model {model!r} with the {backend} backend: {first_line(err)}")
