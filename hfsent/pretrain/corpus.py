"""The pretraining corpus: several text sources, held-out documents, mixed into one ``text`` column."""

from __future__ import annotations

from datasets import Dataset, DatasetDict, Value, concatenate_datasets, interleave_datasets

from ..datasource import load_source, require_columns
from ..recipe import RecipeError
from .arguments import PretrainDataArguments


def _non_empty_texts(batch: dict[str, list]) -> list[bool]:
    return [isinstance(t, str) and bool(t.strip()) for t in batch["text"]]


def load_text_source(
    source: str,
    text_column: str,
    config_name: str | None = None,
    split: str = "train",
    cache_dir: str | None = None,
) -> Dataset:
    """Load one source as a dataset with a single ``text`` column of non-empty strings.

    Raises `RecipeError` for a missing file, a missing or non-text column (naming the columns
    there are), or a source without any non-empty text.
    """
    dataset = load_source(source, config_name, split=split, cache_dir=cache_dir)
    require_columns(dataset, [text_column], source)
    feature = dataset.features[text_column]
    if not (isinstance(feature, Value) and feature.dtype in ("string", "large_string")):
        raise RecipeError(f"column {text_column!r} of dataset {source!r} holds {feature}, not text")
    dataset = dataset.select_columns([text_column])
    if text_column != "text":
        dataset = dataset.rename_column(text_column, "text")
    dataset = dataset.cast_column("text", Value("string"))
    dataset = dataset.filter(_non_empty_texts, batched=True, desc=f"Dropping empty texts of {source}")
    if len(dataset) == 0:
        raise RecipeError(f"empty corpus: dataset {source!r} has no non-empty text in column {text_column!r}")
    return dataset


def load_corpus(data_args: PretrainDataArguments, seed: int = 42, cache_dir: str | None = None) -> DatasetDict:
    """Load, split and mix the recipe's sources into ``train`` (and ``validation``) ``text`` datasets.

    Each source gives ``validation_split_percentage`` % of its documents (at least one) to
    ``validation``, so no document is in both. Training parts are concatenated (the Trainer
    shuffles), or interleaved with ``source_probabilities`` (smaller sources are then repeated until
    every source has been seen once: ``all_exhausted``). Validation parts are concatenated.
    """
    texts = [
        load_text_source(source, column, config, data_args.dataset_split, cache_dir)
        for source, column, config in zip(
            data_args.dataset_name,
            data_args.per_source("text_column"),
            data_args.per_source("dataset_config_name"),
            strict=True,
        )
    ]
    share = data_args.validation_split_percentage / 100.0
    train_parts, eval_parts = [], []
    for source, dataset in zip(data_args.dataset_name, texts, strict=True):
        if share == 0:
            train_parts.append(dataset)
            continue
        if len(dataset) < 2:
            raise RecipeError(
                f"dataset {source!r} has {len(dataset)} document(s): too few to hold some out for validation "
                "(set validation_split_percentage: 0)"
            )
        split = dataset.train_test_split(test_size=share, seed=seed, shuffle=True)
        train_parts.append(split["train"])
        eval_parts.append(split["test"])
    if data_args.source_mixing == "interleave" and len(train_parts) > 1:
        train = interleave_datasets(
            train_parts, probabilities=data_args.source_probabilities, seed=seed, stopping_strategy="all_exhausted"
        )
    else:
        train = concatenate_datasets(train_parts)
    corpus = DatasetDict(train=train)
    if eval_parts:
        corpus["validation"] = concatenate_datasets(eval_parts)
    return corpus


__all__ = ["load_corpus", "load_text_source"]
