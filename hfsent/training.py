"""Fine-tuning: turn a BERT checkpoint and labelled reviews into a measured, publishable hfsent model.

`finetune(model_args, data_args, training_args)` is the library function behind ``hfsent train`` and
``recipes/finetune.py``; both run under ``accelerate launch`` (one CPU, DDP, multi-GPU, DeepSpeed).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import (
    DataCollatorWithPadding,
    EarlyStoppingCallback,
    PreTrainedTokenizerBase,
    Trainer,
    TrainerCallback,
    TrainingArguments,
    set_seed,
)
from transformers.trainer_utils import get_last_checkpoint, has_length

from .cards import ModelCardCallback
from .configuration_hfsent import POOLING_CHOICES, HfSentConfig
from .data import (
    LABELS_COLUMN,
    DataArguments,
    DataError,
    load_raw_dataset,
    prepare_splits,
    tokenize_splits,
    training_texts,
)
from .distributed import configure_logging, release_distributed
from .hub import copy_endpoint_handler, take_push_settings
from .metrics import (
    THRESHOLD_OBJECTIVES,
    binary_metrics,
    compute_metrics,
    prefixed,
    probabilities_from_logits,
    tune_threshold,
)
from .modelargs import build_config
from .modeling_hfsent import HfSentModel
from .plots import save_evaluation_plots, save_training_curves
from .recipe import RecipeError, save_recipe
from .sampling import GROUP_BY_LENGTH_STRATIFIED, LengthGroupedStepSampler
from .tokenizer import fit_tokenizer_to_model, load_recipe_tokenizer, train_wordpiece_tokenizer

logger = logging.getLogger("hfsent")

RESULTS_FILE = "all_results.json"
RECIPE_FILE = "recipe.yaml"


class ModelError(RecipeError):
    """A model/tokenizer setting that cannot work; the message names the key at fault."""


@dataclass
class ModelArguments:
    """Which model and tokenizer to start from (keys follow `run_classification.py` / `run_mlm.py`)."""

    model_name_or_path: str | None = field(
        default="google-bert/bert-base-chinese",
        metadata={"help": "BERT or hfsent checkpoint (Hub id or local folder). Set to null to start from a config."},
    )
    config_name: str | None = field(
        default=None, metadata={"help": "Config to start from (Hub id / folder) when model_name_or_path is null."}
    )
    config_overrides: str | None = field(
        default=None, metadata={"help": "Config overrides, e.g. 'num_hidden_layers=4,hidden_size=256'."}
    )
    tokenizer_name: str | None = field(
        default=None, metadata={"help": "Tokenizer (Hub id / folder); defaults to model_name_or_path or config_name."}
    )
    tokenizer_vocab_size: int | None = field(
        default=None,
        metadata={
            "help": "Instead of loading a tokenizer, train a WordPiece tokenizer of this size on the train split."
        },
    )
    pooling: str = field(
        default="cls", metadata={"help": "Head input: raw [CLS] or BERT's pooler.", "choices": list(POOLING_CHOICES)}
    )
    classifier_dropout: float | None = field(default=None, metadata={"help": "Dropout before the head."})
    pos_weight: str | None = field(
        default=None, metadata={"help": "BCE weight of positives: a number, or 'auto' (n_negative / n_positive)."}
    )
    use_lora: bool = field(default=False, metadata={"help": "Train LoRA adapters on the encoder (head fully trained)."})
    lora_r: int = field(default=8, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=16, metadata={"help": "LoRA alpha."})
    lora_dropout: float = field(default=0.1, metadata={"help": "LoRA dropout."})
    lora_target_modules: list[str] = field(
        default_factory=lambda: ["query", "key", "value", "dense"], metadata={"help": "Encoder modules given adapters."}
    )
    trust_remote_code: bool = field(default=False, metadata={"help": "Allow code from the checkpoint's repo."})

    def __post_init__(self) -> None:
        if str(self.model_name_or_path).lower() in ("", "none", "null"):
            self.model_name_or_path = None  # `--model_name_or_path null` on the command line
        if self.model_name_or_path and (self.config_name or self.config_overrides):
            raise ValueError(
                "config_name/config_overrides start a model from scratch: set model_name_or_path to null to use them"
            )


@dataclass
class HfSentTrainingArguments(TrainingArguments):
    """`TrainingArguments` with defaults for sentiment fine-tuning, plus hfsent's own options."""

    output_dir: str | None = field(default="outputs/hfsent", metadata={"help": "Where the model and results go."})
    eval_strategy: str = field(default="epoch", metadata={"help": "When to evaluate on validation data."})
    save_strategy: str = field(default="epoch", metadata={"help": "When to save checkpoints."})
    save_total_limit: int | None = field(default=2, metadata={"help": "Keep at most this many checkpoints."})
    load_best_model_at_end: bool = field(default=True, metadata={"help": "Reload the best checkpoint at the end."})
    metric_for_best_model: str | None = field(default="roc_auc", metadata={"help": "Validation metric for 'best'."})
    train_sampling_strategy: str = field(
        default=GROUP_BY_LENGTH_STRATIFIED,
        metadata={
            "help": (
                "'group_by_length_stratified': optimizer steps grouped by length within each label, so every "
                "step keeps the label mix (see hfsent.sampling); or transformers' 'random', 'sequential', "
                "'group_by_length', 'batch_rebalance'."
            ),
            "choices": [GROUP_BY_LENGTH_STRATIFIED, "random", "sequential", "group_by_length", "batch_rebalance"],
        },
    )
    length_group_steps: int = field(
        default=50,
        metadata={
            "help": (
                "group_by_length_stratified: optimizer steps per length group (1: every step a random sample, "
                "only sorted into its micro-batches)."
            )
        },
    )
    logging_steps: float = field(default=50, metadata={"help": "Log every N steps."})
    report_to: None | str | list[str] = field(  # noqa: RUF036 (same annotation as TrainingArguments)
        default="none", metadata={"help": "none, tensorboard, trackio, ..."}
    )
    early_stopping_patience: int | None = field(
        default=3, metadata={"help": "Stop after N evaluations without improvement (null: never)."}
    )
    threshold_objective: str = field(
        default="f1",
        metadata={"help": "Validation objective of the decision threshold.", "choices": list(THRESHOLD_OBJECTIVES)},
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.length_group_steps < 1:
            raise ValueError(f"length_group_steps must be >= 1 (1: random steps), got {self.length_group_steps}")


# ------------------------------------------------------------------------------------------- building


def build_tokenizer(model_args: ModelArguments, data_args: DataArguments, splits) -> PreTrainedTokenizerBase:
    """Load the tokenizer, or train one on the training split when ``tokenizer_vocab_size`` is set."""
    if model_args.tokenizer_vocab_size:
        logger.info("Training a WordPiece tokenizer (vocab %d) on the train split", model_args.tokenizer_vocab_size)
        return train_wordpiece_tokenizer(training_texts(splits, data_args), vocab_size=model_args.tokenizer_vocab_size)
    name = model_args.tokenizer_name or model_args.model_name_or_path or model_args.config_name
    return load_recipe_tokenizer(name, trust_remote_code=model_args.trust_remote_code)


def _pos_weight(model_args: ModelArguments, train_labels: list[int]) -> float | None:
    if model_args.pos_weight in (None, "", "none", "null"):
        return None
    if model_args.pos_weight == "auto":
        positives = int(np.sum(train_labels))
        return (len(train_labels) - positives) / max(positives, 1)
    try:
        return float(model_args.pos_weight)
    except ValueError:
        raise ModelError(f"pos_weight must be a number or 'auto', got {model_args.pos_weight!r}") from None


def build_model(
    model_args: ModelArguments, tokenizer: PreTrainedTokenizerBase, train_labels: list[int], max_length: int
) -> HfSentModel:
    """An `HfSentModel` from a checkpoint (encoder loaded, head new) or from a config (random init)."""
    head = {
        "pooling": model_args.pooling,
        "classifier_dropout": model_args.classifier_dropout,
        "pos_weight": _pos_weight(model_args, train_labels),
    }
    if model_args.model_name_or_path:
        try:
            model = HfSentModel.from_pretrained(
                model_args.model_name_or_path, trust_remote_code=model_args.trust_remote_code, **head
            )
        except (OSError, ValueError) as err:
            raise ModelError(f"could not load model_name_or_path {model_args.model_name_or_path!r}: {err}") from err
    else:
        base = build_config(None, model_args.config_name, model_args.config_overrides, model_type="hfsent")
        config = HfSentConfig(**base.to_dict())  # any BERT config becomes an hfsent config
        config.vocab_size = len(tokenizer)
        config.pad_token_id = tokenizer.pad_token_id
        for key, value in head.items():
            setattr(config, key, value)
        model = HfSentModel(config)
        logger.info("New model from config: %.1fM parameters", model.num_parameters() / 1e6)
    if len(tokenizer) > model.config.vocab_size:
        raise ModelError(
            f"the tokenizer has {len(tokenizer)} tokens but the model's vocab_size is {model.config.vocab_size}; "
            "use the tokenizer the encoder was trained with"
        )
    if max_length > model.config.max_position_embeddings:
        raise ModelError(
            f"max_length {max_length} exceeds the model's max_position_embeddings "
            f"{model.config.max_position_embeddings}"
        )
    return model


def apply_lora(model: HfSentModel, model_args: ModelArguments):
    """Wrap the encoder with LoRA adapters (peft); the classifier head stays fully trainable."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=model_args.lora_r,
        lora_alpha=model_args.lora_alpha,
        lora_dropout=model_args.lora_dropout,
        target_modules=model_args.lora_target_modules,
        modules_to_save=["classifier"],
    )
    peft_model = get_peft_model(model, config)
    trainable, total = peft_model.get_nb_trainable_parameters()
    logger.info("LoRA: trainable params %d of %d (%.2f%%)", trainable, total, 100 * trainable / total)
    return peft_model


# ------------------------------------------------------------------------------------------- training


def resolve_resume_checkpoint(training_args: TrainingArguments) -> str | None:
    """``resume_from_checkpoint``: a path, or ``last``/``true`` for the last checkpoint in ``output_dir``."""
    value = training_args.resume_from_checkpoint
    if value is None or str(value).lower() in ("", "false", "none"):
        return None
    if str(value).lower() in ("last", "true"):
        last = get_last_checkpoint(training_args.output_dir) if os.path.isdir(training_args.output_dir) else None
        if last is None:
            logger.warning(
                "resume_from_checkpoint=%s: no checkpoint in %s, starting afresh", value, training_args.output_dir
            )
        return last
    if not os.path.isdir(value):
        raise ModelError(f"resume_from_checkpoint {value!r} is not a checkpoint folder")
    return value


def _publishable_model(trainer: Trainer):
    """The trained model as a plain `HfSentModel` (LoRA adapters merged)."""
    model = trainer.accelerator.unwrap_model(trainer.model)
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    return model


def _finalize_output(staging: Path, output_dir: Path) -> None:
    """Move every file of ``staging`` into ``output_dir`` (each by an atomic rename), then drop staging."""
    for path in sorted(staging.iterdir()):
        os.replace(path, output_dir / path.name)
    staging.rmdir()


class HfSentTrainer(Trainer):
    """`Trainer` that also knows ``train_sampling_strategy: group_by_length_stratified`` (`hfsent.sampling`)."""

    def _get_train_sampler(self, train_dataset=None) -> torch.utils.data.Sampler | None:
        dataset = self.train_dataset if train_dataset is None else train_dataset
        if (
            self.args.train_sampling_strategy != GROUP_BY_LENGTH_STRATIFIED
            or dataset is None
            or not has_length(dataset)
        ):
            return super()._get_train_sampler(train_dataset)
        if self.args.length_column_name in dataset.column_names:
            lengths = list(dataset[self.args.length_column_name])
        else:
            lengths = [len(ids) for ids in dataset["input_ids"]]
        labels = [int(y) for y in dataset[LABELS_COLUMN]] if LABELS_COLUMN in dataset.column_names else None
        step = self.args.train_batch_size * self.args.gradient_accumulation_steps * max(1, self.args.world_size)
        return LengthGroupedStepSampler(
            lengths, step, labels, group_steps=self.args.length_group_steps, seed=self.args.seed
        )


def finetune(
    model_args: ModelArguments,
    data_args: DataArguments,
    training_args: HfSentTrainingArguments,
    callbacks: list[TrainerCallback] | None = None,
) -> dict[str, Any]:
    """Train, tune the threshold on validation, evaluate on test, and save a publishable output directory.

    The output directory receives the checkpoint (config with the tuned threshold, weights, model code,
    tokenizer), ``all_results.json``, the resolved ``recipe.yaml``, ``trainer_state.json`` (logs), PNG
    plots, the model card ``README.md`` (also written into every checkpoint) and ``handler.py``
    (Inference Endpoints). With ``push_to_hub`` it is then pushed with `hfsent.hub.push_to_hub`.
    Returns the results dict. Bad data or settings raise `DataError`/`ModelError` before any training;
    no Hub token with ``push_to_hub`` raises `HubError` before any training.
    """
    configure_logging(training_args)
    set_seed(training_args.seed)
    # push_to_hub: hfsent pushes once at the end, with its card (the Trainer's pushing is off); no token fails here
    publish = take_push_settings(training_args)
    output_dir = Path(training_args.output_dir)

    # Everything that can be wrong with the data or settings fails here, before the model is built.
    splits = prepare_splits(load_raw_dataset(data_args), data_args)
    tokenizer = build_tokenizer(model_args, data_args, splits)
    tokenizer.model_max_length = max(data_args.max_length, min(tokenizer.model_max_length, 512))
    tokenized = tokenize_splits(splits, tokenizer, data_args, training_args.main_process_first)
    model = build_model(model_args, tokenizer, splits["train"]["labels"], data_args.max_length)
    # The checkpoints (checkpoint-*, the output) carry a tokenizer that truncates to what the model takes.
    fit_tokenizer_to_model(tokenizer, model.config)
    resume = resolve_resume_checkpoint(training_args)

    has_validation = "validation" in tokenized
    if not has_validation and training_args.eval_strategy != "no":
        logger.warning("No validation split: evaluation, best-model selection and threshold tuning are off")
        training_args.eval_strategy = "no"
        training_args.load_best_model_at_end = False
        training_args.metric_for_best_model = None
    card = ModelCardCallback.for_finetuning(model_args, data_args, training_args, splits)
    callbacks = [*(callbacks or []), card]
    if has_validation and training_args.load_best_model_at_end and training_args.early_stopping_patience:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=training_args.early_stopping_patience))

    trainable_share = None
    if model_args.use_lora:
        model = apply_lora(model, model_args)
        trainable, total = model.get_nb_trainable_parameters()
        trainable_share = trainable / total

    trainer = HfSentTrainer(
        model=model,
        args=training_args,
        train_dataset=tokenized["train"],
        eval_dataset=tokenized.get("validation"),
        processing_class=tokenizer,
        data_collator=DataCollatorWithPadding(
            tokenizer, pad_to_multiple_of=8 if training_args.use_cpu is False else None
        ),
        compute_metrics=compute_metrics,
        callbacks=callbacks,
    )
    logger.info(
        "Training on %d process(es) (%s), global batch %d",
        training_args.world_size,
        training_args.parallel_mode.value,
        training_args.train_batch_size * training_args.gradient_accumulation_steps * training_args.world_size,
    )
    train_result = trainer.train(resume_from_checkpoint=resume)
    results: dict[str, Any] = {
        f"train_{k}" if not k.startswith("train_") else k: v for k, v in train_result.metrics.items()
    }
    results.update({f"{name}_samples": len(ds) for name, ds in splits.items()})
    results["world_size"] = training_args.world_size
    if trainable_share is not None:
        results["trainable_parameters_share"] = trainable_share

    # Threshold tuned on validation; test metrics at 0.5 and at the tuned threshold.
    threshold = 0.5
    if has_validation:
        val = trainer.predict(tokenized["validation"], metric_key_prefix="eval")
        val_probs = probabilities_from_logits(val.predictions)
        threshold, _ = tune_threshold(val_probs, val.label_ids, training_args.threshold_objective)
        results.update(prefixed(binary_metrics(val_probs, val.label_ids), "eval"))
        results["eval_loss"] = val.metrics["eval_loss"]
        results.update(prefixed(binary_metrics(val_probs, val.label_ids, threshold), "eval_tuned"))
    results["threshold"] = threshold
    results["threshold_objective"] = training_args.threshold_objective
    test_probs = test_labels = None
    if "test" in tokenized:
        test = trainer.predict(tokenized["test"], metric_key_prefix="test")
        test_probs, test_labels = probabilities_from_logits(test.predictions), test.label_ids
        results["test_loss"] = test.metrics["test_loss"]
        results.update(prefixed(binary_metrics(test_probs, test_labels), "test"))
        results.update(prefixed(binary_metrics(test_probs, test_labels, threshold), "test_tuned"))

    # One publishable output directory, written by the main process only, moved into place at the end.
    model = _publishable_model(trainer)
    model.config.threshold = threshold
    training_args.push_to_hub = publish is not None  # the recipe records what was asked
    staging = output_dir / ".staging"
    if trainer.is_world_process_zero():
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (staging / RESULTS_FILE).write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
        save_recipe(staging, model_args, data_args, training_args, filename=RECIPE_FILE)
        trainer.state.save_to_json(str(staging / "trainer_state.json"))
        save_training_curves(trainer.state.log_history, staging)
        if test_probs is not None:
            save_evaluation_plots(test_probs, test_labels, threshold, staging)
        copy_endpoint_handler(staging)
        card.save(staging, results)  # README.md: rendered offline, never raises
        _finalize_output(staging, output_dir)
        logger.info("Saved the model and results to %s", output_dir)
    trainer.accelerator.wait_for_everyone()
    release_distributed(trainer)
    if publish is not None and trainer.is_world_process_zero():
        publish.push(output_dir)
    return results


def format_results(results: dict[str, Any]) -> str:
    """A short human-readable table of the test metrics (at 0.5 and at the tuned threshold)."""
    names = ("accuracy", "f1", "precision", "recall", "roc_auc")
    lines = [f"{'test metric':<12} {'@0.5':>8} {'@' + format(results['threshold'], '.3f'):>8}"]
    for name in names:
        if f"test_{name}" in results:
            lines.append(f"{name:<12} {results[f'test_{name}']:>8.4f} {results[f'test_tuned_{name}']:>8.4f}")
    return "\n".join(lines)


__all__ = [
    "DataArguments",
    "DataError",
    "HfSentTrainingArguments",
    "ModelArguments",
    "ModelError",
    "build_model",
    "build_tokenizer",
    "finetune",
    "format_results",
]
