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
from .common import (
    PLOT_TITLES,
    TEMPLATES_DIR,
    cell,
    dataset_type,
    describe_source,
    framework_versions,
    is_hub_id,
    is_publishing_key,
    metric_cell,
    model_summary,
    public_value,
    render_card,
    resolve_base_model,
    training_log_rows,
)

ENCODER_TEMPLATE = TEMPLATES_DIR / "pretrained_encoder_card.md"
ENCODER_HYPERPARAMETERS = (
    "max_seq_length", "mlm_probability", "whole_word_mask", "line_by_line", "learning_rate", "num_train_epochs",
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
    language: list[str] | None = None,
    license: str | None = "apache-2.0",
) -> str:
    """The model card of an MLM-pretrained BERT encoder saved in ``output_dir``; returns it (does not write it).

    ``results`` are the run's metrics (``eval_loss``/``eval_perplexity``/``eval_accuracy``, optional
    ``init_eval_*`` and ``train_*``), ``recipe`` the resolved recipe dict (``model_name_or_path``,
    ``dataset_name`` (a list or a string), ``max_seq_length``, ``mlm_probability``, ...). The training curve
    comes from ``output_dir/trainer_state.json`` if present. Offline; write the result with
    `write_card` (``output_dir/README.md``).
    """
    output_dir = Path(output_dir)
    datasets = recipe.get("dataset_name") or []
    datasets = [datasets] if isinstance(datasets, str) else list(datasets)
    dataset_ids = [d for d in datasets if is_hub_id(d)]
    base_model = resolve_base_model(recipe.get("model_name_or_path"))
    log_history = []
    if (output_dir / TRAINER_STATE_FILE).is_file():
        log_history = json.loads((output_dir / TRAINER_STATE_FILE).read_text()).get("log_history", [])
    title = model_id.split("/")[-1] if model_id else output_dir.name
    eval_results = [
        EvalResult(
            task_type="fill-mask",
            task_name="Masked language modelling",
            dataset_type=dataset_type(datasets[0]) if len(datasets) == 1 else (dataset_ids or ["local"])[0],
            dataset_name=", ".join(Path(str(d)).name if not is_hub_id(d) else d for d in datasets) or "unknown",
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
        [title_, metric_cell(results.get(f"init_eval_{key}")), metric_cell(results.get(f"eval_{key}"))]
        for key, title_ in ENCODER_METRICS.items()
        if f"eval_{key}" in results
    ]
    context = {
        "title": title,
        "repo_id": model_id or f"your-username/{output_dir.name}",
        "base_model_text": describe_source(recipe.get("model_name_or_path"), base_model, "checkpoint")
        if recipe.get("model_name_or_path")
        else "a BERT encoder initialised from scratch",
        "dataset_texts": [
            describe_source(d, d if is_hub_id(d) else None, "dataset") if not str(d).startswith(BUILTIN_PREFIX) else d
            for d in datasets
        ],
        "summary": [[k, cell(v)] for k, v in model_summary(output_dir).items()],
        "hyperparameters": [[k, cell(public_value(recipe[k]))] for k in ENCODER_HYPERPARAMETERS if k in recipe],
        "all_hyperparameters": [
            [k, cell(public_value(v))] for k, v in sorted(recipe.items()) if not is_publishing_key(k)
        ],
        "metric_rows": metric_rows,
        "has_init_eval": any(f"init_eval_{key}" in results for key in ENCODER_METRICS),
        "train_samples": results.get("train_samples"),
        "train_tokens": results.get("train_tokens"),
        "training_rows": training_log_rows(log_history, metrics=("perplexity", "accuracy")),
        "plots": [[PLOT_TITLES[name], name] for name in PLOT_TITLES if (output_dir / name).is_file()],
        "framework_versions": list(framework_versions().items()),
    }
    return render_card(ENCODER_TEMPLATE, card_data, context)


__all__ = ["ENCODER_TEMPLATE", "render_pretrained_encoder_card"]
