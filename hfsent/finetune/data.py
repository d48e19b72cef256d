"""Labelled review data for fine-tuning: loading (through `hfsent.datasource`), cleaning, splitting, tokenizing."""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

import numpy as np
from datasets import Dataset, DatasetDict, Value

from ..datasource import DataError, column_values, load_splits, require_columns
from ..tokenizer import encode_pairs

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
    """Raise if a split lacks the text, text pair or a label column (naming it and listing the columns it has), if
    the text column is also a label column, or if a text column does not hold strings (numbers, lists, mappings)."""
    for key, column in (("text_column", args.text_column), ("text_pair_column", args.text_pair_column)):
        if column in args.label_columns:
            raise DataError(
                f"{key} and label_column are both {column!r}: name the column of texts and the column of 0/1 labels"
            )
    pair = [args.text_pair_column] if args.text_pair_column else []
    for split, ds in raw.items():
        require_columns(ds, [args.text_column, *pair, *args.label_columns], f"{args.dataset_name} (split {split})")
        for key, column in (("text_column", args.text_column), ("text_pair_column", args.text_pair_column)):
            feature = ds.features[column] if column else None
            if feature is not None and not (isinstance(feature, Value) and feature.dtype in ("string", "large_string")):
                kind = feature.dtype if isinstance(feature, Value) else type(feature).__name__
                raise DataError(
                    f"column {column!r} of {args.dataset_name!r} (split {split}) holds {kind} values, not text: "
                    f"{key} must name a column of strings"
                )


def _names_in(value: Any) -> list[str] | None:
    """The label names of a list-of-names cell (a list, or a string of names separated by ``|``/``,``/``;``)."""
    if isinstance(value, (list, tuple)):
        return [str(v).strip() for v in value]
    if isinstance(value, str):
        return [n.strip() for n in re.split(r"[|,;]", value) if n.strip()]
    return None


def resolve_label_names(raw: DatasetDict, args: DataArguments) -> list[str] | None:
    """The labels of a multi-label recipe in logit order, or None for a binary one.

    A list of label columns: the column names. One column holding lists of label names: ``label_list``, else every
    name found in the train split (sorted).
    """
    if isinstance(args.label_column, list):
        names, where = list(args.label_column), "label_column"
    elif args.label_list is not None:
        names, where = list(args.label_list), "label_list"
    else:
        if "train" not in raw or args.label_column not in raw["train"].column_names:
            return None
        values = column_values(raw["train"], args.label_column)
        if not any(isinstance(v, (list, tuple)) for v in values):
            return None
        names = sorted({n for v in values for n in (_names_in(v) or [])})
        where = f"column {args.label_column!r} of {args.dataset_name!r}"
        if not names:
            raise DataError(f"{where} holds lists but no label names")
        if len(names) == 1:
            raise DataError(
                f"{where} names one label ({names[0]!r}) in its train split: a multi-label model needs at least two "
                "(name them in label_list); one yes/no label is a column of 0/1"
            )
    joined = next((name for name in names if "|" in str(name)), None)
    if joined is not None:  # hfsent predict joins a row's labels with "|" (pred_labels), as data cells may
        raise DataError(
            f"label name {joined!r} ({where}) holds '|', which joins the labels of a row (in a data cell, and in "
            "hfsent predict's pred_labels): rename the label"
        )
    return names


def _multi_label_rows(ds: Dataset, args: DataArguments, names: list[str]) -> tuple[list, list[tuple[str, Any]]]:
    """One 0/1 float vector per row (None where a value is invalid) and, per invalid row, (column, value)."""
    rows: list[list[float] | None] = []
    bad: list[tuple[str, Any]] = []
    if isinstance(args.label_column, list):
        columns = [column_values(ds, c) for c in args.label_column]
        for cells in zip(*columns, strict=True):
            values = [normalize_label(v) for v in cells]
            wrong = next((i for i, v in enumerate(values) if v is None), None)
            rows.append(None if wrong is not None else [float(v) for v in values])
            if wrong is not None:
                bad.append((args.label_column[wrong], cells[wrong]))
        return rows, bad
    known = set(names)
    for cell in column_values(ds, args.label_column):
        found = _names_in(cell)
        unknown = None if found is None else next((n for n in found if n not in known), None)
        if found is None or unknown is not None:
            rows.append(None)
            bad.append((args.label_column, cell if found is None else unknown))
        else:
            rows.append([1.0 if n in found else 0.0 for n in names])
    return rows, bad


def clean_split(ds: Dataset, args: DataArguments, split: str, label_names: list[str] | None = None) -> Dataset:
    """Drop rows with missing/blank text (or text pair) and (by policy) invalid labels; add the ``labels`` column.

    Binary: labels outside {0, 1}. Multi-label (``label_names``): a label column's value outside {0, 1}, or a label
    name outside ``label_names``; ``labels`` then holds one 0/1 float per label.
    """
    texts = column_values(ds, args.text_column)
    pairs = column_values(ds, args.text_pair_column) if args.text_pair_column else None
    if label_names is None:
        raw_labels = column_values(ds, args.label_column)
        labels: list[Any] = [normalize_label(v) for v in raw_labels]
        bad = [i for i, y in enumerate(labels) if y is None]
        bad_cells = {i: (args.label_column, raw_labels[i]) for i in bad}
        accepted = "0 or 1"
    else:
        labels, invalid = _multi_label_rows(ds, args, label_names)
        bad = [i for i, y in enumerate(labels) if y is None]
        bad_cells = dict(zip(bad, invalid, strict=True))
        accepted = (
            "0 or 1"
            if isinstance(args.label_column, list)
            else f"one of the labels {label_names} (a cell holds a list of them, or them joined by '|')"
        )
    if bad and (args.invalid_labels == "error" or len(bad) == len(texts)):  # every row invalid: nothing to drop to
        i = bad[0]
        column, value = bad_cells[i]
        if args.invalid_labels == "error":
            remedy = "fix the data or set invalid_labels: drop"
        elif label_names is None and any(isinstance(v, str) and re.search(r"[|,;]", v) for _, v in bad_cells.values()):
            remedy = "every row's is invalid; a column of label names per row is a multi-label one: set label_list"
        else:
            remedy = "every row's is invalid; fix the data or the label_column"
        raise DataError(
            f"label {value!r} in column {column!r}, row {i} of split {split!r} of "
            f"{args.dataset_name!r} is not {accepted} ({len(bad)} such rows); {remedy}"
        )

    def usable(i: int) -> bool:
        return (
            isinstance(texts[i], str)
            and bool(texts[i].strip())
            and (pairs is None or (isinstance(pairs[i], str) and bool(pairs[i].strip())))
        )

    keep = [i for i in range(len(texts)) if labels[i] is not None and usable(i)]
    blank = sum(1 for i in range(len(texts)) if not usable(i))
    if blank or bad:
        if label_names is None or isinstance(args.label_column, list):
            expected = accepted
        else:  # the names: too many to list in a warning
            origin = (
                "label_list"
                if args.label_list is not None
                else f"the train split's {len(label_names)} labels (label_list sets them)"
            )
            expected = f"one of {origin}"
        first = f"; the first: {bad_cells[bad[0]][1]!r} in column {bad_cells[bad[0]][0]!r}" if bad else ""
        logger.warning(
            "split %r: dropped %d row(s) with missing/blank text and %d row(s) with a label that is not %s%s",
            split,
            blank,
            len(bad),
            expected,
            first,
        )
    cleaned = ds.select(keep)
    if LABELS_COLUMN in cleaned.column_names:
        cleaned = cleaned.remove_columns(LABELS_COLUMN)
    return cleaned.add_column(LABELS_COLUMN, [labels[i] for i in keep])


def row_texts(ds: Dataset, args: DataArguments) -> list[str]:
    """Each row's text, joined with its text pair (when the recipe has one): what de-duplication compares."""
    texts = column_values(ds, args.text_column)
    if not args.text_pair_column:
        return texts
    return [f"{t}\x1f{p}" for t, p in zip(texts, column_values(ds, args.text_pair_column), strict=True)]


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
    keep = deduplicate_indices(row_texts(ds, args), column_values(ds, LABELS_COLUMN))
    if len(keep) < len(ds):
        logger.info("split %r: de-duplication dropped %d of %d rows", split, len(ds) - len(keep), len(ds))
    return ds.select(keep)


# -------------------------------------------------------------------------------------------- splitting


def stratified_split(labels: list, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's stratified ``train_test_split`` of row indices (same rows as splitting the frame).

    Multi-label rows (lists) are stratified by their label combination when every combination occurs at least
    twice, else (or when a class has one row) the split is a plain random one.
    """
    from collections import Counter

    from sklearn.model_selection import train_test_split

    idx = np.arange(len(labels))
    keys = [",".join(str(int(v)) for v in y) if isinstance(y, list) else y for y in labels]
    counts = Counter(keys)
    stratify = keys if len(counts) >= 2 and min(counts.values()) >= 2 else None
    if stratify is None and any(isinstance(y, list) for y in labels):
        logger.info("multi-label split: some label combination occurs once, so the split is random, not stratified")
    train_idx, test_idx = train_test_split(idx, test_size=test_size, stratify=stratify, random_state=seed)
    return train_idx, test_idx


def prepare_splits(raw: DatasetDict, args: DataArguments, label_names: list[str] | None = None) -> DatasetDict:
    """Clean, de-duplicate, and split into train / validation / test (stratified, seeded).

    The dataset's own splits are used where present; otherwise ``test_split_size`` of the rows become
    the test set and ``validation_split_size`` of the remaining training rows the validation set.
    ``label_names`` (from `resolve_label_names`) makes the ``labels`` column a multi-label one.
    """
    check_columns(raw, args)
    if "train" not in raw:
        raise DataError(f"{args.dataset_name!r} has no 'train' split (splits: {', '.join(raw)})")
    splits = {
        name: clean_split(ds, args, name, label_names)
        for name, ds in raw.items()
        if name in ("train", "validation", "test")
    }
    if args.deduplicate:
        splits = {name: _deduplicate(ds, args, name) for name, ds in splits.items()}
        train_texts = {t.strip() for t in row_texts(splits["train"], args)}
        for name in ("validation", "test"):
            if name in splits:
                ds = splits[name]
                keep = [i for i, t in enumerate(row_texts(ds, args)) if t.strip() not in train_texts]
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
        if label_names is not None:
            _log_label_counts(name, ds, label_names)
            continue
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


def _log_label_counts(split: str, ds: Dataset, label_names: list[str]) -> None:
    """Log a multi-label split's rows and positives per label; warn about labels without positives."""
    counts = np.asarray(column_values(ds, LABELS_COLUMN), dtype=np.float64).sum(axis=0)
    logger.info(
        "%s: %d rows; positives per label: %s",
        split,
        len(ds),
        ", ".join(f"{n} {int(c)}" for n, c in zip(label_names, counts, strict=True)),
    )
    empty = [n for n, c in zip(label_names, counts, strict=True) if c == 0]
    if empty:
        logger.warning(
            "split %r has no positive row for %d label(s) (%s): their ROC-AUC is undefined there%s",
            split,
            len(empty),
            ", ".join(empty[:5]) + (", ..." if len(empty) > 5 else ""),
            "; the model cannot learn them" if split == "train" else "",
        )


# ------------------------------------------------------------------------------------------- tokenizing


def tokenize_splits(
    splits: DatasetDict,
    tokenizer,
    text_column: str,
    max_length: int,
    num_proc: int | None = None,
    main_process_first=None,
    text_pair_column: str | None = None,
    truncation: bool | str = True,
) -> DatasetDict:
    """Tokenize every split's ``text_column`` (truncation at ``max_length``, no padding), keeping ``labels`` and
    ``length``; ``num_proc`` processes map the splits.

    With ``text_pair_column`` each row is a BERT sentence pair (``[CLS] text [SEP] text_pair [SEP]``,
    ``token_type_ids`` 0 then 1), cut by ``truncation`` (e.g. ``"only_second"``: the text pair).
    ``main_process_first`` (e.g. ``TrainingArguments.main_process_first``) makes the main process tokenize
    first so that the other processes read its cached result.
    """
    from contextlib import nullcontext

    def tokenize(batch: dict[str, list]) -> dict[str, Any]:
        if not text_pair_column:
            encoded = dict(tokenizer(batch[text_column], truncation=truncation, max_length=max_length))
        else:  # a side too short to cut by `truncation` (a first text longer than max_length) is cut on both sides
            how = truncation if isinstance(truncation, str) else "longest_first"
            ids, types = encode_pairs(tokenizer, batch[text_column], batch[text_pair_column], max_length, how)
            encoded = {"input_ids": ids, "attention_mask": [[1] * len(row) for row in ids]}
            if types is not None:
                encoded["token_type_ids"] = types
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
