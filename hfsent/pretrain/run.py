"""Run MLM (or causal-LM) pretraining with the Trainer: build the model and data, train, evaluate, save."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import torch
from datasets import Dataset
from transformers import (
    AutoModelForCausalLM,
    DataCollatorForLanguageModeling,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    Trainer,
    TrainerCallback,
    TrainingArguments,
    set_seed,
)

from ..arguments import build_model as build_recipe_model
from ..cards import write_encoder_card
from ..distributed import configure_logging, release_distributed
from ..errors import RecipeError
from ..outputs import RESULTS_FILE, TRAINER_STATE_FILE, split_results_file, staged_output, write_json
from ..recipe import save_recipe
from ..runs import InterruptCallback, RecipeCheckpointCallback, claim_run
from ..tokenizer import fit_tokenizer_to_model, load_recipe_tokenizer
from .arguments import PretrainDataArguments, PretrainModelArguments, check_objective
from .causal import causal_lm_tokenizer, check_tokenizer_reloads, evaluate_causal_lm, special_token_ids
from .corpus import load_corpus
from .masking import IGNORE_INDEX, MLMCollator, premask
from .modeling import MaskedOnlyBertForMaskedLM
from .packing import chars_per_piece, encode_corpus_batch, split_long_documents

logger = logging.getLogger(__name__)
# Recipe keys that do not change what a run trains: a resume may change them.
NON_IDENTITY_KEYS = ("cache_dir", "preprocessing_num_workers", "overwrite_cache", "max_eval_samples")


def count_tokens(dataset: Dataset) -> int:
    """Number of tokens in a dataset's ``input_ids`` (no padding is stored)."""
    if len(dataset) == 0:
        return 0
    return int(pc.sum(pc.list_value_length(dataset.with_format("arrow")[:]["input_ids"])).as_py())


@torch.no_grad()
def evaluate_mlm(trainer: Trainer, dataset: Dataset, metric_key_prefix: str = "eval") -> dict[str, float]:
    """Held-out MLM metrics over every masked token of a pre-masked ``dataset`` (see `premask`).

    Returns ``{prefix}_loss`` (mean cross-entropy per masked token), ``{prefix}_perplexity``
    (``exp`` of it), ``{prefix}_accuracy`` (share of masked tokens predicted exactly),
    ``{prefix}_masked_tokens`` and ``{prefix}_samples``. Token-weighted and exact across processes
    (per-sequence sums gathered with ``gather_for_metrics``).
    """
    model = trainer.accelerator.unwrap_model(trainer.model)
    was_training = model.training
    model.eval()
    totals = torch.zeros(3, dtype=torch.float64)
    for batch in trainer.get_eval_dataloader(dataset):
        batch = {k: v.to(trainer.args.device) for k, v in batch.items()}
        with trainer.accelerator.autocast():
            logits = model(**batch).logits.float()
        labels = batch["labels"]
        selected = labels != IGNORE_INDEX
        targets = labels[selected]
        rows = selected.nonzero()[:, 0]
        per_row = torch.zeros(labels.shape[0], 3, device=labels.device)
        per_row[:, 0].index_add_(0, rows, torch.nn.functional.cross_entropy(logits, targets, reduction="none"))
        per_row[:, 1].index_add_(0, rows, (logits.argmax(-1) == targets).float())
        per_row[:, 2] = selected.sum(1)
        totals += trainer.accelerator.gather_for_metrics(per_row).double().sum(0).cpu()
    model.train(was_training)
    nll, correct, count = totals.tolist()
    loss = nll / count if count else float("nan")
    return {
        f"{metric_key_prefix}_loss": loss,
        f"{metric_key_prefix}_perplexity": math.exp(min(loss, 700.0)) if count else float("nan"),
        f"{metric_key_prefix}_accuracy": correct / count if count else float("nan"),
        f"{metric_key_prefix}_masked_tokens": int(count),
        f"{metric_key_prefix}_samples": len(dataset),
    }


def load_pretraining_tokenizer(model_args: PretrainModelArguments) -> PreTrainedTokenizerBase:
    """The recipe's tokenizer (``tokenizer_name``, else the checkpoint's, else the config's); a decoder's with
    ``objective: causal_lm`` (`causal_lm_tokenizer`)."""
    name = model_args.tokenizer_source()
    tokenizer = load_recipe_tokenizer(name, cache_dir=model_args.cache_dir, require_pad_token=not model_args.causal)
    if model_args.causal:
        return causal_lm_tokenizer(tokenizer)
    missing = [t for t in ("mask_token", "cls_token", "sep_token") if getattr(tokenizer, t) is None]
    if missing:
        raise RecipeError(f"the tokenizer at {name!r} has no {', '.join(missing)}: MLM pretraining needs BERT's")
    return tokenizer


def build_model(
    model_args: PretrainModelArguments, tokenizer: PreTrainedTokenizerBase, max_length: int
) -> PreTrainedModel:
    """A new model from the config (from scratch) or the checkpoint to continue, its embeddings fitted to the
    tokenizer (`hfsent.arguments.build_model`): a `MaskedOnlyBertForMaskedLM`, or with ``objective: causal_lm``
    an ``AutoModelForCausalLM`` whose config and generation config carry the tokenizer's BOS/EOS/pad ids."""
    ids = special_token_ids(tokenizer) if model_args.causal else {}
    model = build_recipe_model(
        model_args,
        AutoModelForCausalLM if model_args.causal else MaskedOnlyBertForMaskedLM,
        tokenizer,
        max_length,
        resize_embeddings=True,
        cache_dir=model_args.cache_dir,
        **ids,
    )
    for key, value in ids.items():
        setattr(model.generation_config, key, value)
    return model


def prepare_datasets(
    data_args: PretrainDataArguments,
    tokenizer: PreTrainedTokenizerBase,
    training_args: TrainingArguments,
    collator: MLMCollator | None,
    cache_dir: str | None = None,
    stats: dict[str, int] | None = None,
) -> tuple[Dataset, Dataset | None]:
    """Load the corpus, tokenize and pack it (cached, main process first), pre-mask the eval split (MLM: a
    ``collator``; None for causal LM, whose blocks are used as they are).

    ``stats`` (if given) gets the counts of documents left out for ``exclude_texts`` (see `load_corpus`).
    """
    corpus = load_corpus(data_args, seed=training_args.seed, cache_dir=cache_dir, stats=stats)
    with training_args.main_process_first(desc="corpus tokenization"):
        # Long documents in pieces first: no document is ever tokenized whole (memory bounded by the piece)
        corpus = corpus.map(
            split_long_documents,
            batched=True,
            fn_kwargs={"max_chars": chars_per_piece(data_args.max_length), "keep_rest": not data_args.line_by_line},
            load_from_cache_file=not data_args.overwrite_cache,
            desc="Cutting long documents",
        )
        encoded = corpus.map(
            encode_corpus_batch,
            batched=True,
            fn_kwargs={
                "tokenizer": tokenizer,
                "max_length": data_args.max_length,
                "line_by_line": data_args.line_by_line,
                "whole_word_mask": data_args.whole_word_mask,
                "causal": collator is None,
            },
            remove_columns=["text", "continues"],
            num_proc=data_args.preprocessing_num_workers,
            load_from_cache_file=not data_args.overwrite_cache,
            desc="Tokenizing" + (" lines" if data_args.line_by_line else " and packing"),
        )
    train = encoded["train"]
    if data_args.max_train_samples is not None:
        train = train.select(range(min(data_args.max_train_samples, len(train))))
    eval_set = encoded.get("validation")
    if eval_set is not None:
        if data_args.max_eval_samples is not None:
            eval_set = eval_set.select(range(min(data_args.max_eval_samples, len(eval_set))))
        if collator is not None:
            with training_args.main_process_first(desc="eval masking"):
                eval_set = premask(eval_set, collator, seed=training_args.seed)
    if len(train) == 0 and collator is None:  # causal LM keeps full blocks only
        raise RecipeError(
            f"empty corpus: {', '.join(map(repr, data_args.dataset_name))} holds fewer tokens than one block of "
            f"max_length {data_args.max_length} (objective 'causal_lm' trains on full blocks only): lower max_length "
            "or add text"
        )
    if len(train) == 0:
        raise RecipeError("empty corpus: no training sequence left after tokenization")
    return train, eval_set


def run_pretraining(
    model_args: PretrainModelArguments,
    data_args: PretrainDataArguments,
    training_args: TrainingArguments,
    callbacks: list[TrainerCallback] | None = None,
) -> dict[str, Any]:
    """Pretrain (or continue pretraining) a BERT with MLM; save a standard BertForMaskedLM checkpoint. With
    ``objective: causal_lm``, a decoder with next-token loss; a standard ``*ForCausalLM`` checkpoint
    (``pipeline("text-generation")`` loads it; held-out ``eval_loss``/``eval_perplexity``).

    Writes to ``output_dir``: the model (``AutoModelForMaskedLM``, ``pipeline("fill-mask")`` and the
    fine-tuning recipe's ``model_name_or_path`` load it), the tokenizer (``model_max_length`` set),
    ``all_results.json`` (train metrics and held-out ``eval_loss``/``eval_perplexity``/
    ``eval_accuracy``; ``init_eval_*`` with ``evaluate_before_training``) and ``recipe.yaml`` (every
    argument's final value). ``callbacks`` are added to the Trainer's. Returns the metrics.
    """
    if training_args.eval_strategy != "no" and data_args.validation_split_percentage == 0:
        raise RecipeError(f"eval_strategy {training_args.eval_strategy.value!r} needs validation_split_percentage > 0")
    check_objective(model_args, data_args)
    model_args.check_sources(max_length=data_args.max_length, cache_dir=model_args.cache_dir)
    configure_logging(training_args)
    set_seed(training_args.seed)
    # One run per output folder: another run there (or other files) needs overwrite_output_dir.
    sources = [*data_args.dataset_name, *data_args.exclude_texts]
    resume = claim_run(model_args, data_args, training_args, exclude=NON_IDENTITY_KEYS, data_sources=sources)
    tokenizer = load_pretraining_tokenizer(model_args)
    model = build_model(model_args, tokenizer, data_args.max_length)
    if model_args.causal:  # before any data loads: the output's tokenizer must reload as this one
        check_tokenizer_reloads(tokenizer, model.config)
    # Positions a from-scratch model never saw in training are untrained: do not let tokenizers use them.
    trained_length = model.config.max_position_embeddings if model_args.model_name_or_path else data_args.max_length
    fit_tokenizer_to_model(tokenizer, limit=trained_length)

    collator: MLMCollator | DataCollatorForLanguageModeling | None = None
    if model_args.causal:  # labels = input_ids (shifted inside the model); blocks are full: nothing padded
        collator = DataCollatorForLanguageModeling(tokenizer, mlm=False)
    else:
        collator = MLMCollator(
            tokenizer=tokenizer,
            mlm_probability=data_args.mlm_probability,
            mask_replace_prob=data_args.mask_replace_prob,
            random_replace_prob=data_args.random_replace_prob,
            whole_word_mask=data_args.whole_word_mask,
            pad_to_multiple_of=data_args.max_length if data_args.pad_to_max_length else None,
            return_masked_positions=True,  # the model gathers them without a host sync per step
        )
    exclusion: dict[str, int] = {}
    train_set, eval_set = prepare_datasets(
        data_args,
        tokenizer,
        training_args,
        None if model_args.causal else collator,
        model_args.cache_dir,
        stats=exclusion,
    )
    evaluate = evaluate_causal_lm if model_args.causal else evaluate_mlm

    # word_starts is not a forward() argument but the collator needs it; evaluation gathers only
    # the loss (masked-only logits differ in shape between batches).
    training_args.remove_unused_columns = False
    training_args.prediction_loss_only = True
    trainer = Trainer(
        model=model,
        args=training_args,
        data_collator=collator,
        train_dataset=train_set,
        eval_dataset=eval_set,
        processing_class=tokenizer,
        callbacks=[
            *(callbacks or []),
            RecipeCheckpointCallback(model_args, data_args, training_args),
            InterruptCallback(),
        ],
    )
    results: dict[str, dict[str, Any]] = {}  # by split: what {split}_results.json holds, saved with the model
    if model_args.evaluate_before_training and eval_set is not None:
        results["init_eval"] = evaluate(trainer, eval_set, metric_key_prefix="init_eval")
        trainer.log_metrics("init_eval", results["init_eval"])

    result = trainer.train(resume_from_checkpoint=resume)
    results["train"] = dict(result.metrics)
    results["train"]["train_samples"] = len(train_set)
    results["train"]["train_tokens"] = count_tokens(train_set)
    results["train"].update(exclusion)
    trainer.log_metrics("train", results["train"])
    if eval_set is not None:
        results["eval"] = evaluate(trainer, eval_set)
        trainer.log_metrics("eval", results["eval"])
    metrics = {key: value for values in results.values() for key, value in values.items()}
    if trainer.is_world_process_zero():
        output_dir = Path(training_args.output_dir)
        with staged_output(output_dir) as staging:  # a full disk, Ctrl-C: no half-written output is left behind
            trainer.save_model(str(staging))
            for split, values in results.items():
                write_json(staging / split_results_file(split), values)
            write_json(staging / RESULTS_FILE, metrics)
            trainer.state.save_to_json(str(staging / TRAINER_STATE_FILE))
            save_recipe(staging, model_args, data_args, training_args)
            write_encoder_card(staging, name=output_dir.name)  # from the results and recipe just written
    release_distributed(trainer)
    return metrics


__all__ = ["build_model", "count_tokens", "evaluate_mlm", "load_pretraining_tokenizer", "run_pretraining"]
