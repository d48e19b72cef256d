"""Labelled review data for fine-tuning: loading (through `hfsent.datasource`), cleaning, splitting, tokenizing."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np
from datasets import Dataset, DatasetDict, Value

from ..datasource import DataError, column_values, load_splits, require_columns

if TYPE_CHECKING:
    from .arguments import DataArguments

logger = logging.getLogger(__name__)

LABELS_COLUMN = "labels"


# ---------------------------------------------------------------------------------------------- loading


def load_raw_dataset(args: DataArguments) -> DatasetDict:
    """Load the dataset named by ``args.dataset_name`` as a DatasetDict (no cleaning yet; see `load_splits`)."""
    return load_splits(args.dataset_name, args.dataset_config_name)


# --------------------------------------------------------------------------------------------- cleaning


def normalize_label(value: Any) -> int | None:
    """0/1 from an int, float, bool or numeric string label; None for anything else."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, np.integer)) and value in (0, 1):
        return int(value)
    if isinstance(value, (float, np.floating)) and value in (0.0, 1.0):
        return int(value)
    if isinstance(value, str) and value.strip() in ("0", "1"):
        return int(value.strip())
    return None


def check_columns(raw: DatasetDict, args: DataArguments) -> None:
    """Raise if a split lacks the text or label column (naming it and listing the columns it has), if both keys name
    one column, or if the text column does not hold strings (numbers, lists, mappings)."""
    if args.text_column == args.label_column:
        raise DataError(
            f"text_column and label_column are both {args.text_column!r}: name the column of texts and the column of "
            "0/1 labels"
        )
    for split, ds in raw.items():
        require_columns(ds, [args.text_column, args.label_column], f"{args.dataset_name} (split {split})")
        feature = ds.features[args.text_column]
        if not (isinstance(feature, Value) and feature.dtype in ("string", "large_string")):
            kind = feature.dtype if isinstance(feature, Value) else type(feature).__name__
            raise DataError(
                f"column {args.text_column!r} of {args.dataset_name!r} (split {split}) holds {kind} values, not text: "
                "text_column must name a column of strings"
            )


def clean_split(ds: Dataset, args: DataArguments, split: str) -> Dataset:
    """Drop rows with missing/blank text and (by policy) labels outside {0, 1}; add the ``labels`` column."""
    texts = column_values(ds, args.text_column)
    raw_labels = column_values(ds, args.label_column)
    labels = [normalize_label(v) for v in raw_labels]
    bad = [i for i, y in enumerate(labels) if y is None]
    if bad and args.invalid_labels == "error":
        i = bad[0]
        raise DataError(
            f"label {raw_labels[i]!r} in column {args.label_column!r}, row {i} of split {split!r} of "
            f"{args.dataset_name!r} is not 0 or 1 ({len(bad)} such rows); fix the data or set invalid_labels: drop"
        )
    keep = [
        i
        for i, (t, y) in enumerate(zip(texts, labels, strict=True))
        if y is not None and isinstance(t, str) and t.strip()
    ]
    blank = sum(1 for t in texts if not (isinstance(t, str) and t.strip()))
    if blank or bad:
        logger.warning(
            "split %r: dropped %d row(s) with missing/blank text and %d row(s) with a label outside {0, 1}",
            split,
            blank,
            len(bad),
        )
    cleaned = ds.select(keep)
    if LABELS_COLUMN in cleaned.column_names:
        cleaned = cleaned.remove_columns(LABELS_COLUMN)
    return cleaned.add_column(LABELS_COLUMN, [labels[i] for i in keep])


def deduplicate_indices(texts: list[str], labels: list[int]) -> list[int]:
    """Indices that keep the first occurrence of each text; texts seen with both labels are dropped."""
    seen: dict[str, int] = {}
    conflicting: set[str] = set()
    keep: list[int] = []
    for i, (t, y) in enumerate(zip(texts, labels, strict=True)):
        key = t.strip()
        if key in seen:
            if seen[key] != y:
                conflicting.add(key)
            continue
        seen[key] = y
        keep.append(i)
    return [i for i in keep if texts[i].strip() not in conflicting]


def _deduplicate(ds: Dataset, args: DataArguments, split: str) -> Dataset:
    keep = deduplicate_indices(column_values(ds, args.text_column), column_values(ds, LABELS_COLUMN))
    if len(keep) < len(ds):
        logger.info("split %r: de-duplication dropped %d of %d rows", split, len(ds) - len(keep), len(ds))
    return ds.select(keep)


# -------------------------------------------------------------------------------------------- splitting


def stratified_split(labels: list[int], test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's stratified ``train_test_split`` of row indices (same rows as splitting the frame)."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(labels))
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=2)
    stratify = labels if counts.min() >= 2 else None
    train_idx, test_idx = train_test_split(idx, test_size=test_size, stratify=stratify, random_state=seed)
    return train_idx, test_idx


def prepare_splits(raw: DatasetDict, args: DataArguments) -> DatasetDict:
    """Clean, de-duplicate, and split into train / validation / test (stratified, seeded).

    The dataset's own splits are used where present; otherwise ``test_split_size`` of the rows become
    the test set and ``validation_split_size`` of the remaining training rows the validation set.
    """
    check_columns(raw, args)
    if "train" not in raw:
        raise DataError(f"{args.dataset_name!r} has no 'train' split (splits: {', '.join(raw)})")
    splits = {name: clean_split(ds, args, name) for name, ds in raw.items() if name in ("train", "validation", "test")}
    if args.deduplicate:
        splits = {name: _deduplicate(ds, args, name) for name, ds in splits.items()}
        train_texts = {t.strip() for t in column_values(splits["train"], args.text_column)}
        for name in ("validation", "test"):
            if name in splits:
                ds = splits[name]
                keep = [i for i, t in enumerate(column_values(ds, args.text_column)) if t.strip() not in train_texts]
                if len(keep) < len(ds):
                    logger.info("split %r: dropped %d rows whose text is also in train", name, len(ds) - len(keep))
                splits[name] = ds.select(keep)
    if args.max_rows is not None:
        splits["train"] = splits["train"].select(range(min(args.max_rows, len(splits["train"]))))
    if len(splits["train"]) == 0:
        raise DataError(
            f"no usable rows in {args.dataset_name!r} after cleaning: every row has a blank "
            f"{args.text_column!r} or a {args.label_column!r} outside {{0, 1}}"
        )

    train = splits["train"]
    if "test" not in splits and args.test_split_size > 0:
        labels = column_values(train, LABELS_COLUMN)
        train_idx, test_idx = stratified_split(labels, args.test_split_size, args.split_seed)
        splits["test"] = train.select(test_idx)
        train = train.select(train_idx)
    if "validation" not in splits and args.validation_split_size > 0:
        labels = column_values(train, LABELS_COLUMN)
        train_idx, val_idx = stratified_split(labels, args.validation_split_size, args.split_seed)
        splits["validation"] = train.select(val_idx)
        train = train.select(train_idx)
    splits["train"] = train
    splits = {name: splits[name] for name in ("train", "validation", "test") if name in splits}

    limits = {"train": args.max_train_samples, "validation": args.max_eval_samples, "test": args.max_test_samples}
    for name, limit in limits.items():
        if name in splits and limit is not None:
            splits[name] = splits[name].select(range(min(limit, len(splits[name]))))
    for name, ds in splits.items():
        if len(ds) == 0:
            raise DataError(f"split {name!r} of {args.dataset_name!r} is empty after cleaning and splitting")
        positives = int(np.sum(column_values(ds, LABELS_COLUMN)))
        logger.info("%s: %d rows, %.1f%% positive", name, len(ds), 100 * positives / len(ds))
        if positives in (0, len(ds)):
            counts = f"{len(ds) - positives} with label 0, {positives} with label 1"
            if name == "train":  # nothing to tell apart: no classifier can be trained
                raise DataError(
                    f"the train split of {args.dataset_name!r} has one label only ({counts}, column "
                    f"{args.label_column!r}): a classifier needs examples of both 0 and 1"
                )
            logger.warning(
                "split %r has one label only (%s): ROC-AUC is undefined there, no ROC/PR curves are drawn%s",
                name,
                counts,
                " and best-model selection by roc_auc keeps the first checkpoint" if name == "validation" else "",
            )
    return DatasetDict(splits)


# ------------------------------------------------------------------------------------------- tokenizing


def tokenize_splits(
    splits: DatasetDict,
    tokenizer,
    text_column: str,
    max_length: int,
    num_proc: int | None = None,
    main_process_first=None,
) -> DatasetDict:
    """Tokenize every split's ``text_column`` (truncation at ``max_length``, no padding), keeping ``labels`` and
    ``length``; ``num_proc`` processes map the splits.

    ``main_process_first`` (e.g. ``TrainingArguments.main_process_first``) makes the main process tokenize
    first so that the other processes read its cached result.
    """
    from contextlib import nullcontext

    def tokenize(batch: dict[str, list]) -> dict[str, Any]:
        encoded = tokenizer(batch[text_column], truncation=True, max_length=max_length)
        encoded["length"] = [len(ids) for ids in encoded["input_ids"]]
        return encoded

    context = main_process_first(desc="tokenizing") if main_process_first else nullcontext()
    with context:
        return DatasetDict(
            {
                name: ds.map(
                    tokenize,
                    batched=True,
                    num_proc=num_proc,
                    remove_columns=[c for c in ds.column_names if c != LABELS_COLUMN],
                    desc=f"Tokenizing {name}",
                )
                for name, ds in splits.items()
            }
        )
