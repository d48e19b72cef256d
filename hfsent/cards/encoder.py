"""The card of an MLM-pretrained BERT encoder (or a causal-LM-pretrained decoder, ``objective: causal_lm``):
`render_pretrained_encoder_card` renders it, `write_encoder_card` writes
it into ``hfsent pretrain``'s output (with ``model_card_data.json``, so that ``hfsent push`` renders it again with the
repo id, see `hfsent.cards.card_for_push`)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCardData

from ..datasource import BUILTIN_PREFIX
from ..outputs import CARD_DATA_FILE, CARD_FILE, RECIPE_FILE, RESULTS_FILE, TRAINER_STATE_FILE
from ..recipe import safe_yaml_load
from . import common

logger = logging.getLogger("hfsent")

ENCODER_TEMPLATE = common.TEMPLATES_DIR / "pretrained_encoder_card.md"
ENCODER_HYPERPARAMETERS = (
    "max_length", "mlm_probability", "whole_word_mask", "line_by_line", "learning_rate", "num_train_epochs",
    "max_steps", "per_device_train_batch_size", "gradient_accumulation_steps", "warmup_steps", "weight_decay",
    "lr_scheduler_type", "seed",
)  # fmt: skip
ENCODER_METRICS = {"loss": "Loss (masked tokens)", "perplexity": "Perplexity", "accuracy": "Masked-token accuracy"}
DECODER_METRICS = {"loss": "Loss (next token)", "perplexity": "Perplexity"}
DECODER_HYPERPARAMETERS = (
    "objective",
    *(k for k in ENCODER_HYPERPARAMETERS if k not in ("mlm_probability", "whole_word_mask", "line_by_line")),
)
# model_card_data.json's "kind" for an encoder's card (a fine-tuned model's card data has no "kind")
ENCODER_CARD_KIND = "pretrained_encoder"


def render_pretrained_encoder_card(
    output_dir: str | os.PathLike,
    results: Mapping[str, Any],
    recipe: Mapping[str, Any],
    *,
    model_id: str | None = None,
    name: str | None = None,
    language: list[str] | None = None,
    license: str | None = "apache-2.0",
) -> str:
    """The model card of an MLM-pretrained BERT encoder saved in ``output_dir``; returns it (does not write it).
    With ``recipe["objective"] == "causal_lm"``, that of a decoder (``pipeline_tag: text-generation``).

    ``results`` are the run's metrics (``eval_loss``/``eval_perplexity``/``eval_accuracy``, optional
    ``init_eval_*`` and ``train_*``), ``recipe`` the resolved recipe dict (``model_name_or_path``,
    ``dataset_name`` (a list or a string), ``max_length``, ``mlm_probability``, ...). The training curve
    comes from ``output_dir/trainer_state.json`` if present. ``name`` names the model where there is no
    ``model_id`` (default: the folder's name). Offline; write the result with `write_card` (``output_dir/README.md``).
    """
    output_dir = Path(output_dir)
    datasets = recipe.get("dataset_name") or []
    datasets = [datasets] if isinstance(datasets, str) else list(datasets)
    dataset_ids = [d for d in datasets if common.is_hub_id(d)]
    base_model = common.resolve_base_model(recipe.get("model_name_or_path"))
    log_history = []
    if (output_dir / TRAINER_STATE_FILE).is_file():
        log_history = json.loads((output_dir / TRAINER_STATE_FILE).read_text()).get("log_history", [])
    name = name or output_dir.name
    title = model_id.split("/")[-1] if model_id else name
    decoder = recipe.get("objective") == "causal_lm"
    task, task_name = (
        ("text-generation", "Causal language modelling") if decoder else ("fill-mask", "Masked language modelling")
    )
    metrics = DECODER_METRICS if decoder else ENCODER_METRICS
    eval_results = [
        EvalResult(
            task_type=task,
            task_name=task_name,
            dataset_type=common.dataset_type(datasets[0]) if len(datasets) == 1 else (dataset_ids or ["local"])[0],
            dataset_name=", ".join(Path(str(d)).name if not common.is_hub_id(d) else d for d in datasets) or "unknown",
            dataset_split="validation",
            metric_type=name,
            metric_value=results[f"eval_{name}"],
        )
        for name in ("perplexity", "accuracy")
        if f"eval_{name}" in results
    ]
    card_data = ModelCardData(
        language=language,
        license=license,
        library_name="transformers",
        tags=["hfsent", "text-generation", "causal-language-modeling"]
        if decoder
        else ["hfsent", "bert", "fill-mask", "masked-language-modeling"],
        datasets=dataset_ids or None,
        base_model=base_model,
        pipeline_tag=task,
        eval_results=eval_results or None,
        model_name=title if eval_results else None,
    )
    metric_rows = [
        [title_, common.metric_cell(results.get(f"init_eval_{key}")), common.metric_cell(results.get(f"eval_{key}"))]
        for key, title_ in metrics.items()
        if f"eval_{key}" in results
    ]
    context = {
        "title": title,
        "repo_id": model_id or f"your-username/{name}",
        "base_model_text": common.describe_source(recipe.get("model_name_or_path"), base_model, "checkpoint")
        if recipe.get("model_name_or_path")
        else f"a {'decoder' if decoder else 'BERT encoder'} initialised from scratch",
        "decoder": _model_type(output_dir) if decoder else None,
        "dataset_texts": [
            common.describe_source(d, d if common.is_hub_id(d) else None, "dataset")
            if not str(d).startswith(BUILTIN_PREFIX)
            else d
            for d in datasets
        ],
        "summary": [[k, common.cell(v)] for k, v in common.model_summary(output_dir).items()],
        "hyperparameters": [
            [k, common.cell(common.public_value(recipe[k]))]
            for k in (DECODER_HYPERPARAMETERS if decoder else ENCODER_HYPERPARAMETERS)
            if k in recipe
        ],
        "all_hyperparameters": [
            [k, common.cell(common.public_value(v))]
            for k, v in sorted(recipe.items())
            if not common.is_publishing_key(k)
        ],
        "metric_rows": metric_rows,
        "has_init_eval": any(f"init_eval_{key}" in results for key in metrics),
        "train_samples": results.get("train_samples"),
        "train_tokens": results.get("train_tokens"),  # in the training split; `train_epochs` says how much was seen
        "train_epochs": format(results["epoch"], ".3g") if isinstance(results.get("epoch"), (int, float)) else None,
        "training_rows": common.training_log_rows(log_history, metrics=() if decoder else ("perplexity", "accuracy")),
        "plots": [[common.PLOT_TITLES[name], name] for name in common.PLOT_TITLES if (output_dir / name).is_file()],
        "framework_versions": list(common.framework_versions().items()),
    }
    return common.render_card(ENCODER_TEMPLATE, card_data, context)


def _model_type(directory: Path) -> str:
    """The saved checkpoint's ``model_type`` (``gpt2``, ``qwen2``, ...), or ``causal`` where there is no config."""
    config = directory / "config.json"
    return json.loads(config.read_text()).get("model_type", "causal") if config.is_file() else "causal"


def render_saved_encoder_card(
    directory: str | os.PathLike, model_id: str | None = None, name: str | None = None
) -> str:
    """The encoder card of a saved ``hfsent pretrain`` output, from its ``all_results.json`` and ``recipe.yaml``."""
    directory = Path(directory)
    results = json.loads((directory / RESULTS_FILE).read_text(encoding="utf-8"))
    recipe = safe_yaml_load((directory / RECIPE_FILE).read_text(encoding="utf-8")) or {}
    return render_pretrained_encoder_card(directory, results, recipe, model_id=model_id, name=name)


def write_encoder_card(directory: str | os.PathLike, name: str | None = None) -> Path | None:
    """Write the encoder card (``README.md``) and ``model_card_data.json`` into a pretraining output ``directory``
    that already holds its results and recipe; a card that cannot be rendered is a warning, never an error."""
    directory = Path(directory)
    try:
        card = render_saved_encoder_card(directory, name=name)
        data = {"kind": ENCODER_CARD_KIND, "name": name, "card_sha256": card_sha256(card)}
        (directory / CARD_DATA_FILE).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        return common.write_card(directory, card)
    except Exception as err:  # the card must never cost the user a finished pretraining run
        logger.warning("could not write the model card: %s: %s", type(err).__name__, err)
        return None


def card_sha256(text: str) -> str:
    """The SHA-256 of a card's text: tells a card hfsent wrote from one the user edited."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def encoder_card_for_push(directory: Path, data: dict[str, Any], current: str | None, repo_id: str) -> str | None:
    """The encoder's README.md to publish: re-rendered with ``repo_id`` unless the user edited it."""
    if current is None or card_sha256(current) == data.get("card_sha256"):
        return render_saved_encoder_card(directory, model_id=repo_id, name=data.get("name"))
    logger.info("%s was edited after pretraining: publishing it as is", CARD_FILE)
    return current


__all__ = [
    "ENCODER_CARD_KIND",
    "ENCODER_TEMPLATE",
    "card_sha256",
    "encoder_card_for_push",
    "render_pretrained_encoder_card",
    "render_saved_encoder_card",
    "write_encoder_card",
]
