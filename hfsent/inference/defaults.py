"""The choices and defaults of the inference commands (``hfsent predict``, ``serve``, ``export``), which their
``--help`` prints: here, apart from the modules that use them, so that reading them imports neither torch nor
transformers."""

from __future__ import annotations

from ..datasource import FILE_FORMATS

BACKENDS = ("torch", "onnx")
QUANTIZATIONS = ("int8",)

# hfsent predict: the data files hfsent reads (hfsent.datasource.FILE_FORMATS) that can be streamed row by row
INPUT_FORMATS = {suffix: fmt.stream for suffix, fmt in FILE_FORMATS.items() if fmt.stream}
OUTPUT_FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
# The text column when --text-column is not given: the first of these present, else the only column.
TEXT_COLUMN_CANDIDATES = ("review", "text", "sentence", "content")
DEFAULT_PREFIX = "pred_"
CHUNK_ROWS = 2048

# hfsent serve
DEFAULT_MAX_BATCH_SIZE = 64
DEFAULT_MAX_WAIT_MS = 5.0
DEFAULT_MAX_BODY_BYTES = 1 << 20
# Texts per request; more get 413 (a request is scored in chunks, so this bounds memory, not latency).
DEFAULT_MAX_INPUTS = 10_000
