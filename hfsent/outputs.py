"""What a run writes into its output folder, by name (the one table of them), and how it is written.

Fine-tuning and pretraining share these names; the model cards, ``hfsent push`` (what is uploaded) and
``--overwrite_output_dir`` (what hfsent may remove) read them from here. `write_json` is the one writer of results
files; `staged_output` assembles a run's final output out of sight and moves it into place only once whole.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import raise_pending_interrupt

RESULTS_FILE = "all_results.json"
RECIPE_FILE = "recipe.yaml"
TRAINER_STATE_FILE = "trainer_state.json"
CARD_FILE = "README.md"
CARD_DATA_FILE = "model_card_data.json"  # what the card was rendered from: `hfsent push` re-renders it
HANDLER_FILE = "handler.py"  # the Inference Endpoints handler (hfsent/endpoint_handler.py)
MODEL_CODE_FILES = ("configuration_hfsent.py", "modeling_hfsent.py")  # remote code beside the weights
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.txt",
)
PLOT_FILES = {
    "confusion_matrix": "confusion_matrix.png",
    "roc_curve": "roc_curve.png",
    "pr_curve": "pr_curve.png",
    "training_curves": "training_curves.png",
    "label_metrics": "label_metrics.png",  # a multi-label model's test F1 and ROC-AUC per label
}
# The test metrics of a fine-tuning run (``test_<name>`` and ``test_tuned_<name>`` in all_results.json), in the
# order the console and the model card show them.
METRICS = ("accuracy", "f1", "precision", "recall", "roc_auc")

STAGING_DIR = ".staging"  # the final output is assembled here, then moved into place
TOKENIZER_DIR = ".tokenizer"  # a tokenizer trained by the main process, read by the other ranks
CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")


def split_results_file(split: str) -> str:
    """``<split>_results.json``: one split's metrics (``train``, ``eval``, ``init_eval``)."""
    return f"{split}_results.json"


# What hfsent writes at the top of an output folder (fine-tuning and pretraining); `--overwrite_output_dir`
# removes these (and hfsent's checkpoints), never anything else.
OUTPUT_FILES = frozenset(
    {
        CARD_FILE,
        CARD_DATA_FILE,
        "config.json",
        "generation_config.json",
        "model.safetensors",
        "model.safetensors.index.json",
        *MODEL_CODE_FILES,
        HANDLER_FILE,
        *TOKENIZER_FILES,
        RESULTS_FILE,
        *(split_results_file(split) for split in ("train", "eval", "init_eval")),
        RECIPE_FILE,
        TRAINER_STATE_FILE,
        "training_args.bin",
        *PLOT_FILES.values(),
    }
)


def write_json(path: str | os.PathLike, values: Mapping[str, Any]) -> Path:
    """Write a results file: ``values`` as JSON, keys sorted, indented 2, ending with a newline."""
    path = Path(path)
    path.write_text(json.dumps(dict(values), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


@contextmanager
def staged_output(output_dir: str | os.PathLike) -> Iterator[Path]:
    """Assemble a run's final output in an empty ``output_dir/.staging`` (yielded), then move it into place.

    When the block ends, each file of the staging folder is moved into ``output_dir`` by an atomic rename and the
    folder is removed. When it fails (a full disk, Ctrl-C, a crash), the staging folder is removed and the
    exception goes on: ``output_dir`` is left as it was, with no half-written output. Main process only.
    """
    raise_pending_interrupt()  # a Ctrl-C swallowed since the Trainer's last event: nothing is written
    output_dir = Path(output_dir)
    staging = output_dir / STAGING_DIR
    shutil.rmtree(staging, ignore_errors=True)
    try:
        staging.mkdir(parents=True)
        yield staging
        for path in sorted(staging.iterdir()):
            os.replace(path, output_dir / path.name)
        staging.rmdir()
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


__all__ = [
    "CARD_DATA_FILE",
    "CARD_FILE",
    "CHECKPOINT_RE",
    "HANDLER_FILE",
    "METRICS",
    "MODEL_CODE_FILES",
    "OUTPUT_FILES",
    "PLOT_FILES",
    "RECIPE_FILE",
    "RESULTS_FILE",
    "STAGING_DIR",
    "TOKENIZER_DIR",
    "TOKENIZER_FILES",
    "TRAINER_STATE_FILE",
    "WEIGHT_FILES",
    "split_results_file",
    "staged_output",
    "write_json",
]
