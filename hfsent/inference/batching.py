"""Batched scoring shared by every backend: texts tokenised once, grouped into length-sorted, dynamically padded
batches within a token budget, scored by a backend's logit function, turned into P(pos) (or the logits of a
multi-label model; text pairs with their ``token_type_ids``)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor

import numpy as np
import torch
from transformers import PretrainedConfig, PreTrainedTokenizerBase

from ..endpoint_handler import encode_truncated
from ..tokenizer import encode_pairs

# A batch of ``batch_size`` texts holds at most ``batch_size * TOKENS_PER_TEXT`` padded tokens, so long texts
# run in smaller batches whose activations stay in cache. Measured on 2 CPU cores (BERT L4-H256, reviews):
# batches of 64 texts capped at 1,024 tokens ran 1.9x (torch) to 3.8x (ONNX int8) faster than uncapped ones.
TOKENS_PER_TEXT = 16

# (input_ids, attention_mask[, token_type_ids]), int64 arrays of shape (batch, seq) -> the logits, one row each
LogitFn = Callable[..., np.ndarray]


def available_cpus() -> int:
    """The number of CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


# What one more batch costs, in padded tokens: a forward pass's fixed work (Python and op dispatch). Measured on
# one core (BERT L4-H256, torch): 5 ms a forward beside 0.11 ms a token, so one batch costs about 48 tokens.
# `length_sorted_batches` weighs padding against it.
BATCH_COST_TOKENS = 48
# Up to this many texts `length_sorted_batches` finds the split with the least padding (a server's call, a
# small file); beyond it, length-sorted batches filled in turn already pad little.
OPTIMAL_SPLIT_MAX_TEXTS = 4096


def length_sorted_batches(
    lengths: Sequence[int], batch_size: int, max_tokens: int | None = None
) -> Iterator[list[int]]:
    """Yield index batches in order of decreasing length, so padding within a batch is minimal.

    A batch holds at most ``batch_size`` texts and, with ``max_tokens``, at most ``max_tokens`` padded tokens
    (``len(batch) * longest``; long texts run in smaller batches whose activations stay in cache); it always
    holds at least one text. Up to `OPTIMAL_SPLIT_MAX_TEXTS` texts, the sorted texts are cut where the padded
    tokens plus `BATCH_COST_TOKENS` per batch are fewest (a few dozen texts of mixed lengths, as a server's
    call holds, otherwise pad to 1.4-1.6 times their tokens); beyond that, batches are filled in turn.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    widths = [max(1, lengths[i]) for i in order]
    if len(order) <= OPTIMAL_SPLIT_MAX_TEXTS:
        sizes = _least_padding_sizes(widths, batch_size, max_tokens)
    else:
        sizes = _filled_sizes(widths, batch_size, max_tokens)
    start = 0
    for size in sizes:
        yield order[start : start + size]
        start += size


def _filled_sizes(widths: Sequence[int], batch_size: int, max_tokens: int | None) -> list[int]:
    """Batch sizes for ``widths`` (decreasing): each batch as full as the limits allow, in turn."""
    sizes, start = [], 0
    while start < len(widths):
        size = batch_size if max_tokens is None else max(1, min(batch_size, max_tokens // widths[start]))
        size = min(size, len(widths) - start)
        sizes.append(size)
        start += size
    return sizes


def _least_padding_sizes(widths: Sequence[int], batch_size: int, max_tokens: int | None) -> list[int]:
    """Batch sizes for ``widths`` (decreasing) with the fewest padded tokens + `BATCH_COST_TOKENS` per batch
    (dynamic programming over where the batches end)."""
    n = len(widths)
    best = [0] + [None] * n  # best[j]: least cost of the first j texts
    cut = [0] * (n + 1)
    for j in range(1, n + 1):
        # batch = texts i..j-1, padded to widths[i]; going back, it only grows, so stop at the first over budget
        for i in range(j - 1, max(0, j - batch_size) - 1, -1):
            padded = widths[i] * (j - i)
            if max_tokens is not None and padded > max_tokens and j - i > 1:
                break
            cost = best[i] + padded + BATCH_COST_TOKENS
            if best[j] is None or cost <= best[j]:  # on a tie, the longer batch (as the forward scan chose)
                best[j], cut[j] = cost, i
    sizes, j = [], n
    while j:
        sizes.append(j - cut[j])
        j = cut[j]
    return sizes[::-1]


def max_input_length(
    tokenizer: PreTrainedTokenizerBase, config: PretrainedConfig, max_length: int | None = None
) -> int:
    """The longest token sequence the model accepts: ``max_length`` capped by the tokenizer's
    ``model_max_length`` and the model's ``max_position_embeddings``. Longer texts are truncated."""
    limits = [tokenizer.model_max_length, getattr(config, "max_position_embeddings", None), max_length]
    return min(int(limit) for limit in limits if limit)


def batched_logits(
    texts: Sequence[str],
    tokenizer: PreTrainedTokenizerBase,
    logits_fn: LogitFn,
    batch_size: int = 64,
    max_length: int | None = None,
    max_tokens: int | None = None,
    pool: Executor | None = None,
    workers: int = 1,
    pairs: Sequence[str] | None = None,
) -> np.ndarray:
    """Tokenise ``texts`` (truncating to ``max_length``, see `encode_truncated`; with ``pairs``, text pairs: see
    `encode_pairs`), score them in length-sorted, padded batches with ``logits_fn`` and return the model's logits,
    one float32 row per text, in input order (shape ``(0, 0)`` for no texts).

    A batch holds at most ``batch_size`` texts and ``max_tokens`` padded tokens (default
    ``batch_size * TOKENS_PER_TEXT``). With a ``pool`` of ``workers`` threads, batches run concurrently
    (``logits_fn`` must be thread-safe), and a call with fewer texts than ``workers * batch_size`` is cut
    into at least ``workers`` batches so that every worker gets one.
    """
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    token_types = None
    if pairs is not None:
        encodings, token_types = encode_pairs(tokenizer, texts, pairs, max_length)
    elif max_length is None:
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
        token_type_ids = None if token_types is None else np.zeros((len(idx), width), dtype=np.int64)
        for row, i in enumerate(idx):
            span = slice(width - len(encodings[i]), width) if left else slice(0, len(encodings[i]))
            input_ids[row, span] = encodings[i]
            attention_mask[row, span] = 1
            if token_type_ids is not None:
                token_type_ids[row, span] = token_types[i]
        if token_type_ids is None:
            return np.asarray(logits_fn(input_ids, attention_mask), dtype=np.float32)
        return np.asarray(logits_fn(input_ids, attention_mask, token_type_ids), dtype=np.float32)

    batches = list(length_sorted_batches([len(e) for e in encodings], batch_size, max_tokens))
    logits: np.ndarray | None = None
    for idx, rows in zip(batches, (pool.map if pool is not None else map)(score, batches), strict=True):
        if logits is None:
            logits = np.zeros((len(encodings), rows.shape[1]), dtype=np.float32)
        logits[idx] = rows
    return logits


def batched_positive_probabilities(
    texts: Sequence[str],
    tokenizer: PreTrainedTokenizerBase,
    logits_fn: LogitFn,
    batch_size: int = 64,
    max_length: int | None = None,
    max_tokens: int | None = None,
    pool: Executor | None = None,
    workers: int = 1,
    pairs: Sequence[str] | None = None,
) -> list[float]:
    """P(pos) = sigmoid(z) of each text (or text pair) of a neg/pos model, in input order: the last column ``z`` of
    its logits ``[0, z]`` from `batched_logits` (same arguments)."""
    if not texts:
        return []
    logits = batched_logits(texts, tokenizer, logits_fn, batch_size, max_length, max_tokens, pool, workers, pairs)
    return torch.sigmoid(torch.from_numpy(np.ascontiguousarray(logits[:, -1])).double()).tolist()


__all__ = [
    "BATCH_COST_TOKENS",
    "TOKENS_PER_TEXT",
    "available_cpus",
    "batched_logits",
    "batched_positive_probabilities",
    "encode_pairs",
    "length_sorted_batches",
    "max_input_length",
]
