"""Load one dataset source, local or on the Hub, with errors that name the culprit.

A *source* is a string, as recipes write it:

- a local file: ``.txt``/``.text`` (one example per line, column ``text``), ``.csv``, ``.tsv``,
  ``.json``/``.jsonl``, ``.parquet`` (optionally compressed: ``.gz``, ``.bz2``, ``.xz``, ``.zst``);
- a local folder: every file of one supported format below it;
- a glob pattern (``corpus/*.txt``);
- otherwise a Hub dataset id (``owner/name``), loaded with `datasets.load_dataset`.

Shared by the pretraining and fine-tuning recipes.
"""

from __future__ import annotations

import codecs
import glob
import os
from collections.abc import Sequence
from pathlib import Path

from datasets import Dataset, load_dataset

from .recipe import RecipeError

# file suffix -> (datasets builder, extra builder kwargs)
FILE_FORMATS: dict[str, tuple[str, dict[str, str]]] = {
    ".txt": ("text", {}),
    ".text": ("text", {}),
    ".csv": ("csv", {}),
    ".tsv": ("csv", {"sep": "\t"}),
    ".json": ("json", {}),
    ".jsonl": ("json", {}),
    ".parquet": ("parquet", {}),
}
COMPRESSION_SUFFIXES = (".gz", ".bz2", ".xz", ".zst")


def file_format(path: str | os.PathLike) -> tuple[str, dict[str, str]] | None:
    """Return ``(builder, kwargs)`` for a data file from its suffix, or None if unsupported."""
    name = Path(path).name.lower()
    for compression in COMPRESSION_SUFFIXES:
        name = name.removesuffix(compression)
    return FILE_FORMATS.get(Path(name).suffix)


def _looks_like_path(source: str) -> bool:
    """True for strings that can only mean a local path (a Hub id is ``name`` or ``owner/name``)."""
    return (
        source.startswith((".", "/", "~", os.sep))
        or source.count("/") > 1
        or "\\" in source
        or file_format(source) is not None
    )


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
    elif _looks_like_path(source):
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
    """Load one split of a source (local file/folder/glob or Hub id) as a `datasets.Dataset`.

    Local files have a single split holding every row. Any failure to load becomes a
    `RecipeError` naming the source.
    """
    files = local_data_files(source)
    try:
        if files is not None:
            builder, kwargs = file_format(files[0])
            loaded = load_dataset(builder, data_files=files, split="train", cache_dir=cache_dir, **kwargs)
        else:
            loaded = load_dataset(source, config_name or None, split=split, cache_dir=cache_dir)
    except Exception as err:  # datasets raises many types; all mean "this source cannot be loaded"
        raise RecipeError(f"could not load dataset {source!r}: {type(err).__name__}: {err}") from err
    return loaded


def require_columns(dataset: Dataset, columns: Sequence[str], source: str) -> None:
    """Raise `RecipeError` naming the first of ``columns`` missing from ``dataset`` and listing its columns."""
    for column in columns:
        if column not in dataset.column_names:
            raise RecipeError(
                f"dataset {source!r} has no column {column!r}; its columns are: {', '.join(dataset.column_names)}"
            )


__all__ = ["FILE_FORMATS", "check_utf8", "file_format", "load_source", "local_data_files", "require_columns"]
