"""The pretraining corpus: several text sources, excluded texts left out, held-out documents, one ``text`` column."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from datasets import Dataset, DatasetDict, Value, concatenate_datasets, interleave_datasets

from ..datasource import load_source, require_columns
from ..errors import RecipeError
from .arguments import PretrainDataArguments

logger = logging.getLogger(__name__)


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


def normalize_text(text: str) -> str:
    """The form in which texts are compared for exclusion: without byte-order marks or any whitespace (spaces
    carry no meaning in Chinese text; for other text this errs on the side of leaving a document out)."""
    return "".join(text.replace("\ufeff", "").split())


class TextMatcher:
    """Finds documents equal to one of a set of texts, or containing one of ``min_chars`` characters or more.

    Texts and documents are compared after `normalize_text`. Containment is found in one pass over each document
    (a lookup of every ``min_chars``-character window among the texts' beginnings), so a corpus of millions of
    characters is checked in seconds.
    """

    def __init__(self, texts: Iterable[str], min_chars: int = 10) -> None:
        self.texts = {t for t in map(normalize_text, texts) if t}
        self.min_chars = min_chars
        self._by_start: dict[str, list[str]] = {}
        for text in self.texts:
            if len(text) >= min_chars:
                self._by_start.setdefault(text[:min_chars], []).append(text)

    def match(self, document: str) -> str | None:
        """``"equal"``, ``"contains"`` or None for one document."""
        document = normalize_text(document)
        if document in self.texts:
            return "equal"
        k, by_start = self.min_chars, self._by_start
        for i in range(len(document) - k + 1):
            candidates = by_start.get(document[i : i + k])
            if candidates and any(document.startswith(text, i) for text in candidates):
                return "contains"
        return None


def load_excluded_texts(data_args: PretrainDataArguments, cache_dir: str | None = None) -> list[str]:
    """The texts of ``exclude_texts`` (column ``exclude_text_column``; a text file's lines)."""
    texts: list[str] = []
    for source in data_args.exclude_texts:
        dataset = load_source(source, None, split=data_args.dataset_split, cache_dir=cache_dir)
        column = data_args.exclude_text_column
        if column not in dataset.column_names and dataset.column_names == ["text"]:
            column = "text"  # a text file
        require_columns(dataset, [column], source)
        texts += [t for t in dataset[column] if isinstance(t, str)]
    return texts


def drop_excluded(dataset: Dataset, matcher: TextMatcher) -> tuple[Dataset, dict[str, int]]:
    """``dataset`` (a ``text`` column) without the documents ``matcher`` matches, and how many of each kind."""
    kinds = [matcher.match(text) for text in dataset["text"]]
    counts = {"equal": kinds.count("equal"), "containing": kinds.count("contains")}
    if counts["equal"] or counts["containing"]:
        dataset = dataset.select([i for i, kind in enumerate(kinds) if kind is None])
    return dataset, counts


def _exclude(
    texts: list[Dataset], data_args: PretrainDataArguments, cache_dir: str | None
) -> tuple[list[Dataset], dict[str, int]]:
    """Every source of ``texts`` without the documents that match ``exclude_texts``; the counts, logged per source."""
    matcher = TextMatcher(load_excluded_texts(data_args, cache_dir), data_args.exclude_min_chars)
    totals = {"excluded_texts": len(matcher.texts), "excluded_documents_equal": 0, "excluded_documents_containing": 0}
    kept = []
    for source, dataset in zip(data_args.dataset_name, texts, strict=True):
        dataset, counts = drop_excluded(dataset, matcher)
        totals["excluded_documents_equal"] += counts["equal"]
        totals["excluded_documents_containing"] += counts["containing"]
        logger.info(
            "%s: %d document(s) equal to an excluded text and %d containing one dropped; %d left",
            source,
            counts["equal"],
            counts["containing"],
            len(dataset),
        )
        if len(dataset) == 0:
            raise RecipeError(f"empty corpus: every document of {source!r} is one of the exclude_texts")
        kept.append(dataset)
    return kept, totals


def load_corpus(
    data_args: PretrainDataArguments,
    seed: int = 42,
    cache_dir: str | None = None,
    stats: dict[str, int] | None = None,
) -> DatasetDict:
    """Load, split and mix the recipe's sources into ``train`` (and ``validation``) ``text`` datasets.

    With ``exclude_texts``, every document equal to one of those texts or containing one (`TextMatcher`) is
    dropped from every source first, and ``stats`` (if given) gets ``excluded_texts``,
    ``excluded_documents_equal`` and ``excluded_documents_containing``. Each source gives
    ``validation_split_percentage`` % of its documents (at least one) to ``validation``, so no document is in
    both. Training parts are concatenated (the Trainer shuffles), or interleaved with ``source_probabilities``
    (smaller sources are then repeated until every source has been seen once: ``all_exhausted``). Validation
    parts are concatenated.
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
    if data_args.exclude_texts:
        texts, totals = _exclude(texts, data_args, cache_dir)
        if stats is not None:
            stats.update(totals)
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


__all__ = ["TextMatcher", "drop_excluded", "load_corpus", "load_excluded_texts", "load_text_source", "normalize_text"]
