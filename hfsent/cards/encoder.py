"""The card of an MLM-pretrained BERT encoder (`render_pretrained_encoder_card`), written by ``hfsent pretrain``."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCardData

from ..datasource import BUILTIN_PREFIX
from ..recipe import TRAINER_STATE_FILE
from . import common

ENCODER_TEMPLATE = common.TEMPLATES_DIR / "pretrained_encoder_card.md"
ENCODER_HYPERPARAMETERS = (
    "max_length", "mlm_probability", "whole_word_mask", "line_by_line", "learning_rate", "num_train_epochs",
    "max_steps", "per_device_train_batch_size", "gradient_accumulation_steps", "warmup_steps", "weight_decay",
    "lr_scheduler_type", "seed",
)  # fmt: skip
ENCODER_METRICS = {"loss": "Loss (masked tokens)", "perplexity": "Perplexity", "accuracy": "Masked-token accuracy"}


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
    eval_results = [
        EvalResult(
            task_type="fill-mask",
            task_name="Masked language modelling",
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
        tags=["hfsent", "bert", "fill-mask", "masked-language-modeling"],
        datasets=dataset_ids or None,
        base_model=base_model,
        pipeline_tag="fill-mask",
        eval_results=eval_results or None,
        model_name=title if eval_results else None,
    )
    metric_rows = [
        [title_, common.metric_cell(results.get(f"init_eval_{key}")), common.metric_cell(results.get(f"eval_{key}"))]
        for key, title_ in ENCODER_METRICS.items()
        if f"eval_{key}" in results
    ]
    context = {
        "title": title,
        "repo_id": model_id or f"your-username/{name}",
        "base_model_text": common.describe_source(recipe.get("model_name_or_path"), base_model, "checkpoint")
        if recipe.get("model_name_or_path")
        else "a BERT encoder initialised from scratch",
        "dataset_texts": [
            common.describe_source(d, d if common.is_hub_id(d) else None, "dataset")
            if not str(d).startswith(BUILTIN_PREFIX)
            else d
            for d in datasets
        ],
        "summary": [[k, common.cell(v)] for k, v in common.model_summary(output_dir).items()],
        "hyperparameters": [
            [k, common.cell(common.public_value(recipe[k]))] for k in ENCODER_HYPERPARAMETERS if k in recipe
        ],
        "all_hyperparameters": [
            [k, common.cell(common.public_value(v))]
            for k, v in sorted(recipe.items())
            if not common.is_publishing_key(k)
        ],
        "metric_rows": metric_rows,
        "has_init_eval": any(f"init_eval_{key}" in results for key in ENCODER_METRICS),
        "train_samples": results.get("train_samples"),
        "train_tokens": results.get("train_tokens"),
        "training_rows": common.training_log_rows(log_history, metrics=("perplexity", "accuracy")),
        "plots": [[common.PLOT_TITLES[name], name] for name in common.PLOT_TITLES if (output_dir / name).is_file()],
        "framework_versions": list(common.framework_versions().items()),
    }
    return common.render_card(ENCODER_TEMPLATE, card_data, context)


__all__ = ["ENCODER_TEMPLATE", "render_pretrained_encoder_card"]
