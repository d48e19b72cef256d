"""Classify a whole file: CSV, TSV, JSONL, Parquet or plain text in; CSV or JSONL out, streamed in chunks.

Rows are read ``chunk_rows`` at a time (Parquet through ``pyarrow`` ``iter_batches``, the text formats
line by line), so files larger than memory work. Each chunk is scored in length-sorted batches by an
`~hfsent.inference.backends.InferenceBackend` and written in input order with every input column plus
``pred_label``, ``pred_score`` (the probability of that label), ``pred_positive_probability`` and
``pred_error``. Rows whose text is missing, empty or not a string (or that cannot be parsed) are not
classified: their ``pred_error`` says why, and the run goes on.
"""

from __future__ import annotations

import csv
import difflib
import itertools
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from ..configuration_hfsent import MULTI_LABEL
from ..datasource import allow_long_csv_fields
from ..endpoint_handler import text_problem
from .backends import InferenceBackend
from .defaults import CHUNK_ROWS, DEFAULT_PREFIX, INPUT_FORMATS, OUTPUT_FORMATS, TEXT_COLUMN_CANDIDATES
from .labels import label_result, validate_threshold

PLAIN_TEXT_COLUMN = "text"
OUTPUT_FIELDS = ("label", "score", "positive_probability", "error")


class InputError(ValueError):
    """An unusable input/output file or option; the message names it (the CLI exits with code 2)."""


@dataclass
class Row:
    """One input record: its values by column, and why it could not be read (None when it could)."""

    values: dict[str, Any]
    problem: str | None = None


def _not_utf8(path: Path, err: UnicodeDecodeError) -> str:
    return f"{str(path)!r} is not UTF-8 text (byte 0x{err.object[err.start]:02x}: {err.reason}); save it as UTF-8"


def _suffix_format(path: Path, formats: dict[str, str], what: str) -> str:
    fmt = formats.get(path.suffix.lower())
    if fmt is None:
        accepted = ", ".join(formats)
        raise InputError(
            f"unsupported {what} format {path.suffix or '(no extension)'!r} for {str(path)!r}; accepted: {accepted}"
        )
    return fmt


class TableReader:
    """An input file opened for streaming: its format, its ``columns`` and ``total_rows`` when known
    (Parquet), and `chunks` of `Row` in file order.

    Raises `InputError` for a missing file, an unsupported extension or a CSV without a usable header.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.format = _suffix_format(self.path, INPUT_FORMATS, "input")
        if not self.path.is_file():
            raise InputError(f"input file not found: {str(self.path)!r}")
        self.total_rows: int | None = None
        self._rows: Iterator[Row]
        self.columns: list[str]
        try:
            getattr(self, f"_open_{self.format}")()
        except UnicodeDecodeError as err:  # in the header or the first lines
            raise InputError(_not_utf8(self.path, err)) from None
        except csv.Error as err:
            raise InputError(f"{str(self.path)!r} is not valid CSV: {err}") from None

    def _text_file(self) -> TextIO:
        # utf-8-sig drops a byte-order mark; newline="" lets the csv module handle quoted newlines
        return self.path.open(encoding="utf-8-sig", newline="" if self.format in ("csv", "tsv") else None)

    def _open_csv(self, delimiter: str = ",") -> None:
        allow_long_csv_fields()
        file = self._text_file()
        reader = csv.reader(file, delimiter=delimiter)
        header = next(reader, None)
        if not header:
            file.close()
            raise InputError(f"{str(self.path)!r} has no header row (a CSV input needs column names)")
        duplicated = sorted({c for c in header if header.count(c) > 1})
        if duplicated:
            file.close()
            raise InputError(f"{str(self.path)!r} has duplicated column names: {', '.join(map(repr, duplicated))}")
        self.columns = header

        def rows() -> Iterator[Row]:
            with file:
                for fields in reader:
                    if not fields:  # a blank line, as pandas' skip_blank_lines
                        continue
                    problem = None
                    if len(fields) != len(header):
                        problem = f"malformed row ({len(fields)} fields, the header has {len(header)})"
                    yield Row(dict(zip(header, fields, strict=False)), problem)

        self._rows = rows()

    def _open_tsv(self) -> None:
        self._open_csv(delimiter="\t")

    def _open_jsonl(self) -> None:
        file = self._text_file()
        head: list[str] = []
        self.columns = []
        for line in file:  # the columns are the keys of the first JSON object (within 1,000 lines)
            head.append(line)
            obj = _json_object(line)
            if isinstance(obj, dict) or len(head) >= 1000:
                self.columns = list(obj) if isinstance(obj, dict) else []
                break

        def rows() -> Iterator[Row]:
            with file:
                for line in itertools.chain(head, file):
                    if not line.strip():
                        continue
                    obj = _json_object(line)
                    if isinstance(obj, dict):
                        yield Row(obj)
                    else:
                        yield Row({}, obj)

        self._rows = rows()

    def _open_parquet(self) -> None:
        import pyarrow.parquet as pq

        try:
            parquet = pq.ParquetFile(self.path)
        except Exception as err:  # pyarrow raises ArrowInvalid and others for a damaged file
            raise InputError(f"cannot read {str(self.path)!r} as Parquet: {err}") from None
        self.columns = list(parquet.schema_arrow.names)
        self.total_rows = parquet.metadata.num_rows

        def rows() -> Iterator[Row]:
            with parquet:
                for batch in parquet.iter_batches(batch_size=CHUNK_ROWS):
                    for values in batch.to_pylist():
                        yield Row(values)

        self._rows = rows()

    def _open_text(self) -> None:
        file = self._text_file()
        self.columns = [PLAIN_TEXT_COLUMN]

        def rows() -> Iterator[Row]:
            with file:
                for line in file:
                    yield Row({PLAIN_TEXT_COLUMN: line.rstrip("\n")})

        self._rows = rows()

    def chunks(self, size: int = CHUNK_ROWS) -> Iterator[list[Row]]:
        """Yield the rows in file order, ``size`` at a time."""
        try:
            while chunk := list(itertools.islice(self._rows, size)):
                yield chunk
        except UnicodeDecodeError as err:
            raise InputError(_not_utf8(self.path, err)) from None
        except csv.Error as err:
            raise InputError(f"{str(self.path)!r} is not valid CSV: {err}") from None

    def close(self) -> None:
        """Release the file (reading stops)."""
        self._rows.close()  # type: ignore[attr-defined]

    def resolve_text_column(self, requested: str | None = None) -> str:
        """The column to classify: ``requested``, else the first of `TEXT_COLUMN_CANDIDATES` present,
        else the only column. Raises `InputError` naming the available columns."""
        available = ", ".join(map(repr, self.columns)) or "(none)"
        if requested is not None:
            if requested in self.columns:
                return requested
            close = difflib.get_close_matches(requested, self.columns, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise InputError(
                f"text column {requested!r} not found in {str(self.path)!r}{hint}; available columns: {available}"
            )
        for name in TEXT_COLUMN_CANDIDATES:
            if name in self.columns:
                return name
        if len(self.columns) == 1:
            return self.columns[0]
        raise InputError(
            f"no text column in {str(self.path)!r} (looked for {', '.join(TEXT_COLUMN_CANDIDATES)}); "
            f"pass --text-column, available columns: {available}"
        )

    def resolve_text_pair_column(self, requested: str, text_column: str) -> str:
        """The column of each row's second text (``--text-pair-column``): ``requested``, which must exist and not be
        ``text_column`` (each text would be paired with itself). Raises `InputError` naming the columns."""
        column = self.resolve_text_column(requested)
        if column == text_column:
            others = ", ".join(repr(c) for c in self.columns if c != column) or "(none)"
            raise InputError(
                f"text pair column {column!r} is the text column of {str(self.path)!r}: name the column holding each "
                f"row's second text (other columns: {others})"
            )
        return column


def _json_object(line: str) -> dict[str, Any] | str:
    """The JSON object on ``line``, or a description of why the line is not one."""
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as err:
        return f"invalid JSON: {err.msg} at column {err.colno}"
    return obj if isinstance(obj, dict) else f"not a JSON object (a {type(obj).__name__})"


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return value


class TableWriter:
    """An output file (CSV or JSONL by extension) written to ``PATH.partial`` and renamed on `close`."""

    def __init__(self, path: str | os.PathLike, columns: list[str]) -> None:
        self.path = Path(path)
        self.format = _suffix_format(self.path, OUTPUT_FORMATS, "output")
        self.columns = columns
        self.rows_missing_columns = 0  # JSONL rows with keys the CSV header (the first row's) lacks
        self._partial = self.path.with_name(self.path.name + ".partial")
        self._file = self._partial.open("w", encoding="utf-8", newline="")
        if self.format == "csv":
            self._csv = csv.writer(self._file)
            self._csv.writerow(columns)
            self._known = set(columns)

    def write(self, rows: list[dict[str, Any]]) -> None:
        """Append rows (dicts by column)."""
        if self.format == "jsonl":
            self._file.writelines(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in rows)
            return
        for r in rows:
            if not self._known.issuperset(r):
                self.rows_missing_columns += 1
            self._csv.writerow([_csv_cell(r.get(c)) for c in self.columns])

    def close(self, keep: bool = True) -> None:
        """Finish the file: move it into place (``keep``) or delete the partial output."""
        self._file.close()
        if keep:
            os.replace(self._partial, self.path)
        else:
            self._partial.unlink(missing_ok=True)


@dataclass
class PredictSummary:
    """What a `predict_file` run did."""

    output: Path
    text_column: str
    threshold: float | list[float]
    rows: int = 0
    labels: Counter = field(default_factory=Counter)
    problems: Counter = field(default_factory=Counter)
    first_problems: list[tuple[int, str]] = field(default_factory=list)
    rows_missing_columns: int = 0
    seconds: float = 0.0
    text_pair_column: str | None = None

    @property
    def columns(self) -> str:
        """The column(s) read, for people: ``column 'review'``, or ``columns 'aspect' and 'review'`` (text pairs)."""
        if self.text_pair_column is None:
            return f"column {self.text_column!r}"
        return f"columns {self.text_column!r} and {self.text_pair_column!r}"

    @property
    def flagged(self) -> int:
        """Rows not classified (see ``pred_error``)."""
        return sum(self.problems.values())

    def format(self, prefix: str = DEFAULT_PREFIX) -> str:
        """A few lines for people: counts, labels, flagged rows and their reasons."""
        rate = self.rows / self.seconds if self.seconds else 0.0
        lines = [
            f"wrote {self.rows} rows to {str(self.output)!r} in {self.seconds:.1f} s ({rate:.0f} rows/s)",
            f"classified {self.rows - self.flagged} ({self.columns}, {_cuts(self.threshold)}): "
            + (", ".join(f"{label} {n}" for label, n in sorted(self.labels.items())) or "none"),
        ]
        if self.flagged:
            reasons = "; ".join(f"{n} × {reason}" for reason, n in self.problems.most_common())
            first = "; ".join(f"row {i}: {reason}" for i, reason in self.first_problems)
            lines.append(f"flagged {self.flagged} rows, not classified (see column {prefix}error): {reasons}")
            lines.append(f"first flagged: {first}")
        if self.rows_missing_columns:
            lines.append(
                f"warning: {self.rows_missing_columns} rows had keys absent from the first row; the CSV output "
                "holds only the first row's columns (write .jsonl to keep them)"
            )
        return "\n".join(lines)


def _cuts(threshold: float | list[float]) -> str:
    """The threshold for people: one number, or a multi-label model's in a few words (not one number per label)."""
    if not isinstance(threshold, list):
        return f"threshold {threshold:g}"
    if len(set(threshold)) == 1:
        return f"threshold {threshold[0]:g} for each of {len(threshold)} labels"
    return f"thresholds {min(threshold):g} to {max(threshold):g} over {len(threshold)} labels"


def output_columns(prefix: str = DEFAULT_PREFIX, label_names: list[str] | None = None) -> list[str]:
    """The columns `predict_file` adds to every row: for a multi-label model (``label_names``) ``labels`` (those
    over their thresholds), one ``prob_<label>`` per label and ``error``."""
    if label_names is not None:
        return [prefix + "labels", *(f"{prefix}prob_{name}" for name in label_names), prefix + "error"]
    return [prefix + name for name in OUTPUT_FIELDS]


def check_output_path(
    reader: TableReader,
    output: str | os.PathLike,
    prefix: str = DEFAULT_PREFIX,
    label_names: list[str] | None = None,
) -> Path:
    """Validate the output path and the added columns before any work; raise `InputError`."""
    path = Path(output)
    if path.is_dir():
        accepted = ", ".join(OUTPUT_FORMATS)
        raise InputError(f"the output {str(path)!r} is a folder; give a file path ending in {accepted}")
    _suffix_format(path, OUTPUT_FORMATS, "output")
    if path.resolve() == reader.path.resolve():
        raise InputError(f"the output {str(path)!r} would overwrite the input")
    if not path.parent.is_dir():
        raise InputError(f"output folder not found: {str(path.parent)!r}")
    taken = [c for c in output_columns(prefix, label_names) if c in reader.columns]
    if taken:
        raise InputError(f"the input already has column {taken[0]!r}; choose another --prefix")
    return path


def predict_file(
    backend: InferenceBackend,
    reader: TableReader,
    output: str | os.PathLike,
    text_column: str,
    threshold: float | None = None,
    batch_size: int = 64,
    max_length: int | None = None,
    chunk_rows: int = CHUNK_ROWS,
    prefix: str = DEFAULT_PREFIX,
    progress: bool | None = None,
    text_pair_column: str | None = None,
) -> PredictSummary:
    """Classify ``reader``'s ``text_column`` chunk by chunk and write every row, in input order, to ``output``.

    ``threshold`` defaults to the model's ``config.threshold``. ``progress``: show a progress bar on
    stderr (None: only when stderr is a terminal). A text-pair model reads its second text from
    ``text_pair_column``; a multi-label model writes `output_columns` with its labels. Returns a `PredictSummary`.
    """
    from tqdm.auto import tqdm

    from .classify import predict

    config = backend.config
    label_names = config.label_names if getattr(config, "problem_type", None) == MULTI_LABEL else None
    path = check_output_path(reader, output, prefix, label_names)
    if label_names is None:
        threshold = validate_threshold(config.threshold if threshold is None else threshold)
    else:
        threshold = (
            config.label_thresholds() if threshold is None else [validate_threshold(threshold)] * len(label_names)
        )
    id2label = config.id2label
    summary = PredictSummary(path, text_column, threshold, text_pair_column=text_pair_column)
    added = output_columns(prefix, label_names)
    writer = TableWriter(path, [*reader.columns, *added])
    bar = tqdm(
        total=reader.total_rows, unit=" rows", disable=(not sys.stderr.isatty()) if progress is None else not progress
    )
    start = time.perf_counter()
    done = False
    try:
        for chunk in reader.chunks(chunk_rows):
            problems = [row.problem or text_problem(row.values.get(text_column)) for row in chunk]
            if text_pair_column is not None:
                problems = [
                    p or (f"{text_pair_column}: {q}" if (q := text_problem(row.values.get(text_pair_column))) else None)
                    for p, row in zip(problems, chunk, strict=True)
                ]
            todo = [i for i, problem in enumerate(problems) if problem is None]
            texts = [chunk[i].values[text_column] for i in todo]
            if label_names is None and text_pair_column is None:
                probs = backend.positive_probabilities(texts, batch_size, max_length)
                scored = [label_result(p, threshold, id2label) for p in probs]
            else:
                pairs = [chunk[i].values[text_pair_column] for i in todo] if text_pair_column else None
                scored = predict(texts, backend, threshold=threshold, batch_size=batch_size, text_pairs=pairs)
            results = dict(zip(todo, scored, strict=True))
            out = []
            for i, (row, problem) in enumerate(zip(chunk, problems, strict=True)):
                values = dict(row.values)
                if problem is not None:
                    values.update(dict.fromkeys(added[:-1]))
                    values[added[-1]] = problem
                    summary.problems[problem] += 1
                    if len(summary.first_problems) < 5:
                        summary.first_problems.append((summary.rows + i + 1, problem))
                elif label_names is not None:
                    result = results[i]
                    values[added[0]] = "|".join(result["labels"])
                    values.update({f"{prefix}prob_{n}": result["scores"][n] for n in label_names})
                    values[added[-1]] = None
                    summary.labels.update(result["labels"])
                else:
                    result = results[i]
                    values.update(
                        dict(
                            zip(
                                added[:3],
                                (result["label"], result["score"], result["positive_probability"]),
                                strict=True,
                            )
                        )
                    )
                    values[added[-1]] = None
                    summary.labels[result["label"]] += 1
                out.append(values)
            writer.write(out)
            summary.rows += len(chunk)
            bar.update(len(chunk))
        done = True
    finally:
        bar.close()
        writer.close(keep=done)
    summary.rows_missing_columns = writer.rows_missing_columns
    summary.seconds = time.perf_counter() - start
    return summary
