"""Fine-tuning: turn a BERT checkpoint and labelled reviews into a measured, publishable hfsent model.

`finetune(model_args, data_args, training_args)` is the library function behind ``hfsent train`` and
``recipes/finetune.py``; both run under ``accelerate launch`` (one CPU, DDP, multi-GPU, DeepSpeed).
"""

from __future__ import annotations

import logging
import shutil
import unicodedata
from pathlib import Path
from typing import Any

from transformers import (
    EarlyStoppingCallback,
    TrainerCallback,
    set_seed,
)

from ..cards import ModelCardCallback
from ..distributed import configure_logging, release_distributed
from ..errors import RecipeError
from ..hub import copy_endpoint_handler, take_push_settings
from ..outputs import METRICS, RESULTS_FILE, TOKENIZER_DIR, TRAINER_STATE_FILE, staged_output, write_json
from ..recipe import save_recipe
from ..runs import InterruptCallback, RecipeCheckpointCallback, claim_run
from ..tokenizer import fit_tokenizer_to_model, joins_pairs_without_a_mark, mark_text_pairs
from ..training_args import accelerator_available
from .arguments import DataArguments, HfSentTrainingArguments, ModelArguments
from .baseline import BASELINE_TITLES, baseline_results
from .collator import PaddingCollator, pad_multiple_for
from .data import load_raw_dataset, prepare_splits, resolve_label_names, tokenize_splits
from .metrics import (
    binary_metrics,
    compute_metrics,
    label_probabilities,
    multilabel_compute_metrics,
    multilabel_metrics,
    prefixed,
    probabilities_from_logits,
    tune_label_thresholds,
    tune_threshold,
)
from .plots import save_evaluation_plots, save_multilabel_plots, save_training_curves
from .trainer import HfSentTrainer, apply_lora, build_model, build_tokenizer, publishable_model

logger = logging.getLogger("hfsent")
# Recipe keys that do not change what a run trains: a resume may change them.
NON_IDENTITY_KEYS = ("trust_remote_code", "preprocessing_num_workers", "max_eval_samples", "max_test_samples")


def _save_plots(log_history, test_probs, test_labels, threshold, directory: Path, label_names=None) -> None:
    """Training curves and test plots; a plot that cannot be drawn is a warning, never a lost model."""
    try:
        save_training_curves(log_history, directory)
        if test_probs is not None and label_names is not None:
            save_multilabel_plots(test_probs, test_labels, label_names, threshold, directory)
        elif test_probs is not None:
            save_evaluation_plots(test_probs, test_labels, threshold, directory)
    except Exception as err:  # plots are extras: the trained model and its results are saved regardless
        logger.warning("could not draw the plots: %s: %s", type(err).__name__, err)


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
    Returns the results dict. Bad data or settings raise `DataError`/`RecipeError` before any training;
    no Hub token with ``push_to_hub`` raises `HubError` before any training.
    """
    # Settings that cannot work fail first, before the output folder is looked at or anything loads.
    model_args.check_sources(max_length=data_args.max_length)
    configure_logging(training_args)
    set_seed(training_args.seed)
    # push_to_hub: hfsent pushes once at the end, with its card (the Trainer's pushing is off); no token fails here
    publish = take_push_settings(training_args)
    output_dir = Path(training_args.output_dir)
    # One run per output folder: another run there (or other files) needs overwrite_output_dir.
    resume = claim_run(
        model_args, data_args, training_args, exclude=NON_IDENTITY_KEYS, data_sources=[data_args.dataset_name]
    )

    # Everything that can be wrong with the data or settings fails here, before the model is built.
    raw = load_raw_dataset(data_args)
    label_names = resolve_label_names(raw, data_args)  # None: binary (neg/pos)
    if label_names is not None and training_args.compare_baseline != "none":
        raise RecipeError(f"compare_baseline: {training_args.compare_baseline} is for binary models (one label column)")
    splits = prepare_splits(raw, data_args, label_names)
    tokenizer = build_tokenizer(model_args, splits["train"][data_args.text_column], training_args, resume)
    tokenizer.model_max_length = max(data_args.max_length, min(tokenizer.model_max_length, 512))
    if data_args.text_pair_column and joins_pairs_without_a_mark(tokenizer):
        mark = mark_text_pairs(tokenizer)  # saved with the tokenizer: inference marks pairs alike
        if mark is not None:
            logger.info("text_pair_column: the tokenizer now puts %r between a text and its pair", mark)
        else:
            logger.warning(
                "text_pair_column: the tokenizer joins a text and its pair with no token between them and has no "
                "separator or end-of-text token to put there, so the model cannot tell where %r ends and %r begins; "
                "a tokenizer with a separator (BERT's [SEP]) reads pairs",
                data_args.text_column,
                data_args.text_pair_column,
            )
    tokenized = tokenize_splits(
        splits,
        tokenizer,
        data_args.text_column,
        data_args.max_length,
        data_args.preprocessing_num_workers,
        training_args.main_process_first,
        text_pair_column=data_args.text_pair_column,
        truncation=data_args.truncation_strategy if data_args.truncation or data_args.text_pair_column else True,
    )
    pairs = bool(data_args.text_pair_column)
    model = build_model(model_args, tokenizer, splits["train"]["labels"], data_args.max_length, label_names, pairs)
    # The checkpoints (checkpoint-*, the output) carry a tokenizer that truncates to what the model takes.
    fit_tokenizer_to_model(tokenizer, model.config)

    has_validation = "validation" in tokenized
    if not has_validation and training_args.eval_strategy != "no":
        logger.warning("No validation split: evaluation, best-model selection and threshold tuning are off")
        training_args.eval_strategy = "no"
        training_args.load_best_model_at_end = False
        training_args.metric_for_best_model = None
    if training_args.eval_strategy == "no":  # no evaluations: no best model to reload, no early stopping
        training_args.load_best_model_at_end = False
    card = ModelCardCallback.for_finetuning(model_args, data_args, training_args, splits)
    callbacks = [
        *(callbacks or []),
        card,
        RecipeCheckpointCallback(model_args, data_args, training_args),
        InterruptCallback(),
    ]
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
        data_collator=PaddingCollator(
            tokenizer,
            pad_to_multiple_of=pad_multiple_for(
                not training_args.use_cpu and accelerator_available(), training_args.pad_to_multiple_of
            ),
        ),
        compute_metrics=compute_metrics if label_names is None else multilabel_compute_metrics(label_names),
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

    if label_names is not None:
        threshold, test_probs, test_labels = _evaluate_multilabel(
            trainer, tokenized, label_names, training_args, results
        )
    else:
        threshold, test_probs, test_labels = _evaluate_binary(trainer, tokenized, training_args, results)
        if data_args.text_pair_column and test_probs is not None:
            results.update(_per_first_text(splits["test"][data_args.text_column], test_probs, test_labels, threshold))
    if trainer.is_world_process_zero() and label_names is None:
        results.update(baseline_results(splits, data_args.text_column, training_args.compare_baseline))

    # One publishable output directory, written by the main process only, moved into place at the end.
    model = publishable_model(trainer)
    model.config.threshold = threshold
    training_args.push_to_hub = publish is not None  # the recipe records what was asked
    if trainer.is_world_process_zero():
        with staged_output(output_dir) as staging:  # a full disk, Ctrl-C: no half-written output is left behind
            model.save_pretrained(staging)
            tokenizer.save_pretrained(staging)
            write_json(staging / RESULTS_FILE, results)
            save_recipe(staging, model_args, data_args, training_args)
            trainer.state.save_to_json(str(staging / TRAINER_STATE_FILE))
            _save_plots(trainer.state.log_history, test_probs, test_labels, threshold, staging, label_names)
            copy_endpoint_handler(staging)
            card.save(staging, results)  # README.md: rendered offline, never raises
        shutil.rmtree(output_dir / TOKENIZER_DIR, ignore_errors=True)  # the ranks' copy; the output holds it
        logger.info("Saved the model and results to %s", output_dir)
    trainer.accelerator.wait_for_everyone()
    release_distributed(trainer)
    if publish is not None and trainer.is_world_process_zero():
        publish.push(output_dir)
    return results


def _evaluate_binary(trainer, tokenized, training_args, results: dict[str, Any]):
    """Threshold tuned on validation; test metrics at 0.5 and at the tuned threshold (into ``results``).
    Returns ``(threshold, test probabilities, test labels)``."""
    threshold = 0.5
    has_validation = "validation" in tokenized
    if has_validation:
        val = trainer.predict(tokenized["validation"], metric_key_prefix="eval")
        val_probs = probabilities_from_logits(val.predictions)
        threshold, _ = tune_threshold(
            val_probs,
            val.label_ids,
            training_args.threshold_objective,
            method=training_args.threshold_tuning,
            seed=training_args.seed,
        )
        results.update(prefixed(binary_metrics(val_probs, val.label_ids), "eval"))
        results["eval_loss"] = val.metrics["eval_loss"]
        results.update(prefixed(binary_metrics(val_probs, val.label_ids, threshold), "eval_tuned"))
    results["threshold"] = threshold
    results["threshold_objective"] = training_args.threshold_objective
    results["threshold_tuning"] = training_args.threshold_tuning
    test_probs = test_labels = None
    if "test" in tokenized:
        test = trainer.predict(tokenized["test"], metric_key_prefix="test")
        test_probs, test_labels = probabilities_from_logits(test.predictions), test.label_ids
        results["test_loss"] = test.metrics["test_loss"]
        results.update(prefixed(binary_metrics(test_probs, test_labels), "test"))
        results.update(prefixed(binary_metrics(test_probs, test_labels, threshold), "test_tuned"))
    return threshold, test_probs, test_labels


def _per_first_text(first_texts: list[str], probabilities, labels, threshold: float) -> dict[str, Any]:
    """A text-pair model's test metrics for each first text (e.g. each aspect): ``pair_groups`` (the first texts,
    sorted), ``test_rows/<text>`` and ``test_<metric>/<text>`` at ``threshold``."""
    import numpy as np

    first_texts = np.asarray(first_texts, dtype=object)
    groups = sorted(set(first_texts.tolist()))
    out: dict[str, Any] = {"pair_groups": groups}
    for group in groups:
        rows = first_texts == group
        out[f"test_rows/{group}"] = int(rows.sum())
        for name, value in binary_metrics(np.asarray(probabilities)[rows], np.asarray(labels)[rows], threshold).items():
            out[f"test_{name}/{group}"] = value
    return out


def _evaluate_multilabel(trainer, tokenized, label_names: list[str], training_args, results: dict[str, Any]):
    """`_evaluate_binary` for a multi-label model: one threshold per label (0.5, or tuned on validation by
    ``threshold_tuning``), per-label and averaged metrics. Returns ``(thresholds, test probabilities, labels)``:
    the thresholds as one number when they are all equal."""
    thresholds = [0.5] * len(label_names)
    if "validation" in tokenized:
        val = trainer.predict(tokenized["validation"], metric_key_prefix="eval")
        val_probs = label_probabilities(val.predictions)
        thresholds = tune_label_thresholds(
            val_probs,
            val.label_ids,
            training_args.threshold_objective,
            method=training_args.threshold_tuning,
            seed=training_args.seed,
        )
        results.update(prefixed(multilabel_metrics(val_probs, val.label_ids, label_names), "eval"))
        results["eval_loss"] = val.metrics["eval_loss"]
        results.update(prefixed(multilabel_metrics(val_probs, val.label_ids, label_names, thresholds), "eval_tuned"))
    threshold = thresholds[0] if len(set(thresholds)) == 1 else thresholds
    results["threshold"] = threshold
    results["threshold_objective"] = training_args.threshold_objective
    results["threshold_tuning"] = training_args.threshold_tuning
    results["labels"] = list(label_names)
    test_probs = test_labels = None
    if "test" in tokenized:
        test = trainer.predict(tokenized["test"], metric_key_prefix="test")
        test_probs, test_labels = label_probabilities(test.predictions), test.label_ids
        results["test_loss"] = test.metrics["test_loss"]
        results.update(prefixed(multilabel_metrics(test_probs, test_labels, label_names), "test"))
        results.update(prefixed(multilabel_metrics(test_probs, test_labels, label_names, thresholds), "test_tuned"))
    return threshold, test_probs, test_labels


def format_results(results: dict[str, Any]) -> str:
    """A short human-readable table of the test metrics (at 0.5, at the tuned threshold, and any baseline's);
    for a multi-label model the averages, then one row per label."""
    if "labels" in results:
        return _format_multilabel(results)
    baselines = sorted({k.split("_")[1] for k in results if k.startswith("baseline_") and k.endswith("_test_accuracy")})
    tuned = results["threshold"] != 0.5  # else the tuned column repeats the first
    header = f"{'test metric':<12} {'@0.5':>8}" + (f" {'@' + format(results['threshold'], '.3f'):>8}" if tuned else "")
    lines = [header + "".join(f" {BASELINE_TITLES.get(b, b):>10}" for b in baselines)]
    for name in METRICS:
        if f"test_{name}" in results:
            row = f"{name:<12} {results[f'test_{name}']:>8.4f}"
            row += f" {results[f'test_tuned_{name}']:>8.4f}" if tuned else ""
            row += "".join(f" {results.get(f'baseline_{b}_test_{name}', float('nan')):>10.4f}" for b in baselines)
            lines.append(row)
    if results.get("pair_groups"):  # a text-pair model: each first text (aspect) on its own
        width = max(12, *(display_width(g) for g in results["pair_groups"]))
        lines += ["", f"{pad('first text', width)} {'rows':>5} {'accuracy':>9} {'f1':>9} {'roc_auc':>9}"]
        for group in results["pair_groups"]:
            cells = " ".join(f"{results[f'test_{m}/{group}']:>9.4f}" for m in ("accuracy", "f1", "roc_auc"))
            lines.append(f"{pad(group, width)} {results[f'test_rows/{group}']:>5} {cells}")
    return "\n".join(lines)


def display_width(text: str) -> int:
    """Terminal columns ``text`` takes: two for a wide (CJK) character, one for any other."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def pad(text: str, width: int) -> str:
    """``text`` left-aligned in ``width`` terminal columns (`display_width`)."""
    return text + " " * max(0, width - display_width(text))


MULTILABEL_AVERAGES = ("accuracy", "exact_match", "f1_micro", "f1_macro", "roc_auc_micro", "roc_auc_macro")
PER_LABEL_METRICS = ("f1", "precision", "recall", "roc_auc")


def _format_multilabel(results: dict[str, Any]) -> str:
    labels, threshold = results["labels"], results["threshold"]
    thresholds = threshold if isinstance(threshold, list) else [threshold] * len(labels)
    tuned = any(t != 0.5 for t in thresholds)
    lines = [f"{'test metric':<14} {'@0.5':>8}" + (f" {'@tuned':>8}" if tuned else "")]
    for name in MULTILABEL_AVERAGES:
        if f"test_{name}" in results:
            row = f"{name:<14} {results[f'test_{name}']:>8.4f}"
            lines.append(row + (f" {results[f'test_tuned_{name}']:>8.4f}" if tuned else ""))
    if "test_f1_micro" not in results:
        return "\n".join(lines)
    width = max(12, *(display_width(n) for n in labels))
    lines += ["", f"{pad('label', width)} " + " ".join(f"{m:>9}" for m in PER_LABEL_METRICS) + f" {'threshold':>9}"]
    prefix = "test_tuned" if tuned else "test"
    for name, cut in zip(labels, thresholds, strict=True):
        cells = " ".join(f"{results.get(f'{prefix}_{m}/{name}', float('nan')):>9.4f}" for m in PER_LABEL_METRICS)
        lines.append(f"{pad(name, width)} {cells} {cut:>9.3f}")
    return "\n".join(lines)


__all__ = ["finetune", "format_results"]
