"""Batch inference: probabilities and thresholded labels from an hfsent checkpoint.

This module is the one home for inference logic. Texts are tokenised once, grouped into
length-sorted, dynamically padded batches (`batched_positive_probabilities`) and scored by a
backend: `TorchBackend` here, `hfsent.onnx.OnnxBackend` for ONNX Runtime. Both implement
`InferenceBackend`, so `hfsent.predict`, ``hfsent predict`` and ``hfsent serve`` run on either.
`label_result` turns P(pos) into a thresholded label.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from transformers import (
    AutoModelForSequenceClassification,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from .endpoint_handler import encode_truncated
from .tokenizer import load_tokenizer

BACKENDS = ("torch", "onnx")
# A batch of ``batch_size`` texts holds at most ``batch_size * TOKENS_PER_TEXT`` padded tokens, so long texts
# run in smaller batches whose activations stay in cache. Measured on 2 CPU cores (BERT L4-H256, reviews):
# batches of 64 texts capped at 1,024 tokens ran 1.9x (torch) to 3.8x (ONNX int8) faster than uncapped ones.
TOKENS_PER_TEXT = 16

# (input_ids, attention_mask), int64 arrays of shape (batch, seq) -> the logit z of each row
LogitFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


@runtime_checkable
class InferenceBackend(Protocol):
    """Anything that turns texts into P(pos): a loaded model plus its tokenizer and config."""

    name: str
    config: PretrainedConfig
    tokenizer: PreTrainedTokenizerBase

    def positive_probabilities(
        self, texts: Sequence[str], batch_size: int = 64, max_length: int | None = None
    ) -> list[float]:
        """Return P(pos) for each text, in input order."""
        ...


def available_cpus() -> int:
    """The number of CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def load_model_and_tokenizer(
    name_or_path: str, device: str | torch.device | None = None, **kwargs: Any
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load an hfsent checkpoint (Hub id or local folder) and its tokenizer, in eval mode."""
    model = AutoModelForSequenceClassification.from_pretrained(name_or_path, **kwargs)
    model.eval()
    if device is not None:
        model.to(device)
    return model, load_tokenizer(name_or_path)


# Weight files of a torch checkpoint (transformers' names, sharded or not).
TORCH_WEIGHTS = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
ONNX_FILES = ("model.onnx", "model_int8.onnx")


def detect_backend(name_or_path: str) -> str:
    """The backend for ``name_or_path``: ``"onnx"`` for an ``.onnx`` file or a folder with an ONNX graph
    (written by ``hfsent export --onnx``) and no torch weights, else ``"torch"`` (checkpoints and Hub ids)."""
    path = Path(name_or_path)
    if path.is_file() and path.suffix == ".onnx":
        return "onnx"
    onnx_graph = path.is_dir() and any((path / f).is_file() for f in ONNX_FILES)
    if onnx_graph and not any((path / f).is_file() for f in TORCH_WEIGHTS):
        return "onnx"
    return "torch"


def load_backend(name_or_path: str, backend: str | None = None, threads: int | None = None) -> InferenceBackend:
    """Load a model for inference: ``backend="torch"`` (an hfsent checkpoint) or ``"onnx"``; None (the
    default) picks it with `detect_backend`.

    For ``"onnx"``, ``name_or_path`` is a folder written by ``hfsent export --onnx`` or one ``.onnx``
    file in it (see `hfsent.onnx.OnnxBackend`). ``threads``: intra-op threads (default: the library's
    choice, one per core); for torch this sets the process-wide ``torch.set_num_threads``.
    """
    if backend is None:
        backend = detect_backend(name_or_path)
    if backend == "torch":
        if threads:
            torch.set_num_threads(threads)
        return TorchBackend(*load_model_and_tokenizer(name_or_path))
    if backend == "onnx":
        from .onnx import OnnxBackend

        return OnnxBackend(name_or_path, threads=threads)
    raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")


def length_sorted_batches(
    lengths: Sequence[int], batch_size: int, max_tokens: int | None = None
) -> Iterator[list[int]]:
    """Yield index batches in order of decreasing length, so padding within a batch is minimal.

    With ``max_tokens``, a batch also stops growing before ``len(batch) * longest`` would exceed it, so
    long texts run in smaller batches (the activations of a batch stay in cache); a batch always holds
    at least one text.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    start = 0
    while start < len(order):
        size = batch_size
        if max_tokens is not None:
            size = max(1, min(batch_size, max_tokens // max(1, lengths[order[start]])))
        yield order[start : start + size]
        start += size


def max_input_length(
    tokenizer: PreTrainedTokenizerBase, config: PretrainedConfig, max_length: int | None = None
) -> int:
    """The longest token sequence the model accepts: ``max_length`` capped by the tokenizer's
    ``model_max_length`` and the model's ``max_position_embeddings``. Longer texts are truncated."""
    limits = [tokenizer.model_max_length, getattr(config, "max_position_embeddings", None), max_length]
    return min(int(limit) for limit in limits if limit)


def batched_positive_probabilities(
    texts: Sequence[str],
    tokenizer: PreTrainedTokenizerBase,
    logits_fn: LogitFn,
    batch_size: int = 64,
    max_length: int | None = None,
    max_tokens: int | None = None,
    pool: Executor | None = None,
    workers: int = 1,
) -> list[float]:
    """Tokenise ``texts`` (truncating to ``max_length``, see `encode_truncated`), score them in length-sorted,
    padded batches with ``logits_fn`` and return P(pos) = sigmoid(z) for each text, in input order.

    A batch holds at most ``batch_size`` texts and ``max_tokens`` padded tokens (default
    ``batch_size * TOKENS_PER_TEXT``). With a ``pool`` of ``workers`` threads, batches run concurrently
    (``logits_fn`` must be thread-safe), and a call with fewer texts than ``workers * batch_size`` is cut
    into at least ``workers`` batches so that every worker gets one.
    """
    if not texts:
        return []
    if max_length is None:
        encodings = tokenizer(list(texts), return_attention_mask=False, return_token_type_ids=False)["input_ids"]
    else:  # memory bounded by max_length, not by the longest text
        encodings = encode_truncated(tokenizer, texts, max_length)
    max_tokens = batch_size * TOKENS_PER_TEXT if max_tokens is None else max_tokens
    if pool is not None and workers > 1:
        batch_size = max(1, min(batch_size, -(-len(encodings) // workers)))
    left = tokenizer.padding_side == "left"

    def score(idx: list[int]) -> np.ndarray:
        width = len(encodings[idx[0]])
        input_ids = np.full((len(idx), width), tokenizer.pad_token_id, dtype=np.int64)
        attention_mask = np.zeros((len(idx), width), dtype=np.int64)
        for row, i in enumerate(idx):
            span = slice(width - len(encodings[i]), width) if left else slice(0, len(encodings[i]))
            input_ids[row, span] = encodings[i]
            attention_mask[row, span] = 1
        return np.asarray(logits_fn(input_ids, attention_mask), dtype=np.float32)

    batches = list(length_sorted_batches([len(e) for e in encodings], batch_size, max_tokens))
    probs = [0.0] * len(encodings)
    for idx, z in zip(batches, (pool.map if pool is not None else map)(score, batches), strict=True):
        for i, p in zip(idx, torch.sigmoid(torch.from_numpy(z).double()).tolist(), strict=True):
            probs[i] = p
    return probs


class TorchBackend:
    """An `InferenceBackend` running a loaded hfsent `PreTrainedModel` with PyTorch."""

    name = "torch"

    def __init__(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.config = model.config

    @torch.inference_mode()
    def _logits(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        device = self.model.device
        batch = {"input_ids": torch.from_numpy(input_ids), "attention_mask": torch.from_numpy(attention_mask)}
        logits = self.model(**{k: v.to(device) for k, v in batch.items()}).logits
        return logits[:, 1].float().cpu().numpy()

    def positive_probabilities(
        self, texts: Sequence[str], batch_size: int = 64, max_length: int | None = None
    ) -> list[float]:
        """Return P(pos) for each text, in input order (texts longer than the model accepts are truncated)."""
        limit = max_input_length(self.tokenizer, self.config, max_length)
        return batched_positive_probabilities(texts, self.tokenizer, self._logits, batch_size, limit)


def positive_probabilities(
    texts: Sequence[str],
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    batch_size: int = 64,
    max_length: int | None = None,
) -> list[float]:
    """Return P(pos) for each text, in input order (length-sorted batches, dynamic padding)."""
    return TorchBackend(model, tokenizer).positive_probabilities(texts, batch_size, max_length)


def validate_threshold(threshold: float) -> float:
    """Return ``threshold`` as a float, or raise a ValueError unless it is strictly between 0 and 1."""
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be strictly between 0 and 1, got {threshold!r}")
    return float(threshold)


def label_result(positive_probability: float, threshold: float, id2label: dict[int, str]) -> dict[str, Any]:
    """The thresholded decision for one text: ``label``, ``score`` (the probability of that label)
    and ``positive_probability``. A text is positive when P(pos) >= ``threshold``."""
    positive = positive_probability >= threshold
    return {
        "label": id2label[1 if positive else 0],
        "score": positive_probability if positive else 1.0 - positive_probability,
        "positive_probability": positive_probability,
    }


def predict(
    texts: str | Sequence[str],
    model: PreTrainedModel | InferenceBackend | str,
    tokenizer: PreTrainedTokenizerBase | None = None,
    threshold: float | None = None,
    batch_size: int = 64,
    max_length: int | None = None,
) -> list[dict[str, Any]]:
    """Classify texts with an hfsent model, applying ``config.threshold`` (or ``threshold``).

    ``model`` is a loaded model, an `InferenceBackend` (e.g. from `load_backend`) or a checkpoint
    path / Hub id (its tokenizer is then loaded too). Returns one dict per text, in input order:
    ``label`` (``"neg"``/``"pos"``), ``score`` (the probability of that label) and
    ``positive_probability`` (P(pos)).
    """
    if isinstance(texts, str):
        texts = [texts]
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
    if bad:
        raise TypeError(f"predict expects strings; item {bad[0]} is {type(texts[bad[0]]).__name__}")
    if isinstance(model, str):
        loaded, loaded_tokenizer = load_model_and_tokenizer(model)
        backend: InferenceBackend = TorchBackend(loaded, tokenizer or loaded_tokenizer)
    elif isinstance(model, PreTrainedModel):
        if tokenizer is None:
            raise ValueError("predict needs a tokenizer when `model` is a model object")
        backend = TorchBackend(model, tokenizer)
    else:
        backend = model
    threshold = validate_threshold(backend.config.threshold if threshold is None else threshold)
    id2label = backend.config.id2label
    probs = backend.positive_probabilities(texts, batch_size, max_length)
    return [label_result(p, threshold, id2label) for p in probs]
