"""Batch inference: probabilities and thresholded labels from an hfsent checkpoint."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
from transformers import AutoModelForSequenceClassification, PreTrainedModel, PreTrainedTokenizerBase

from .tokenizer import load_tokenizer


def load_model_and_tokenizer(
    name_or_path: str, device: str | torch.device | None = None, **kwargs: Any
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load an hfsent checkpoint (Hub id or local folder) and its tokenizer, in eval mode."""
    model = AutoModelForSequenceClassification.from_pretrained(name_or_path, **kwargs)
    model.eval()
    if device is not None:
        model.to(device)
    return model, load_tokenizer(name_or_path)


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> Iterator[list[int]]:
    """Yield index batches in order of decreasing length, so padding within a batch is minimal."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]


@torch.inference_mode()
def positive_probabilities(
    texts: Sequence[str],
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    batch_size: int = 64,
    max_length: int | None = None,
) -> list[float]:
    """Return P(pos) for each text, in input order (length-sorted batches, dynamic padding)."""
    max_length = max_length or tokenizer.model_max_length
    encodings = tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]
    device = model.device
    probs = [0.0] * len(texts)
    for idx in length_sorted_batches([len(e) for e in encodings], batch_size):
        batch = tokenizer.pad({"input_ids": [encodings[i] for i in idx]}, return_tensors="pt")
        batch = {k: v.to(device) for k, v in batch.items()}
        z = model(**batch).logits[:, 1].float()
        for i, p in zip(idx, torch.sigmoid(z).tolist(), strict=True):
            probs[i] = p
    return probs


def predict(
    texts: str | Sequence[str],
    model: PreTrainedModel | str,
    tokenizer: PreTrainedTokenizerBase | None = None,
    threshold: float | None = None,
    batch_size: int = 64,
    max_length: int | None = None,
) -> list[dict[str, Any]]:
    """Classify texts with an hfsent model, applying ``config.threshold`` (or ``threshold``).

    ``model`` is a loaded model or a checkpoint path / Hub id (its tokenizer is then loaded too).
    Returns one dict per text, in input order: ``label`` (``"neg"``/``"pos"``), ``score`` (the
    probability of that label) and ``positive_probability`` (P(pos)).
    """
    if isinstance(texts, str):
        texts = [texts]
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
    if bad:
        raise TypeError(f"predict expects strings; item {bad[0]} is {type(texts[bad[0]]).__name__}")
    if isinstance(model, str):
        model, loaded_tokenizer = load_model_and_tokenizer(model)
        tokenizer = tokenizer or loaded_tokenizer
    if tokenizer is None:
        raise ValueError("predict needs a tokenizer when `model` is a model object")
    threshold = model.config.threshold if threshold is None else threshold
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be strictly between 0 and 1, got {threshold!r}")
    id2label = model.config.id2label
    results = []
    for p in positive_probabilities(texts, model, tokenizer, batch_size, max_length):
        positive = p >= threshold
        results.append(
            {
                "label": id2label[1 if positive else 0],
                "score": p if positive else 1.0 - p,
                "positive_probability": p,
            }
        )
    return results
