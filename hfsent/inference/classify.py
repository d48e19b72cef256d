"""`hfsent.predict`: classify texts (or text pairs) with an hfsent model at its tuned threshold(s)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ..configuration_hfsent import MULTI_LABEL
from .backends import InferenceBackend, TorchBackend, load_model_and_tokenizer
from .labels import label_result, validate_threshold


def predict(
    texts: str | Sequence[str],
    model: PreTrainedModel | InferenceBackend | str,
    tokenizer: PreTrainedTokenizerBase | None = None,
    threshold: float | Sequence[float] | None = None,
    batch_size: int = 64,
    max_length: int | None = None,
    text_pairs: str | Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """Classify texts with an hfsent model, applying ``config.threshold`` (or ``threshold``).

    ``model`` is a loaded model, an `InferenceBackend` (e.g. from `load_backend`) or a checkpoint
    path / Hub id (its tokenizer is then loaded too). Returns one dict per text, in input order.

    A binary model: ``label`` (``"neg"``/``"pos"``), ``score`` (the probability of that label) and
    ``positive_probability`` (P(pos)). A multi-label model: ``labels`` (the labels whose probability is at least
    their threshold, in label order) and ``scores`` (every label's probability). A text-pair model (trained with
    ``text_pair_column``) takes ``text_pairs``, one second text per text, and nothing else does.
    """
    if isinstance(texts, str):
        texts = [texts]
    if isinstance(text_pairs, str):
        text_pairs = [text_pairs]
    _check_strings(texts, "predict expects strings")
    if isinstance(model, str):
        loaded, loaded_tokenizer = load_model_and_tokenizer(model)
        backend: InferenceBackend = TorchBackend(loaded, tokenizer or loaded_tokenizer)
    elif isinstance(model, PreTrainedModel):
        if tokenizer is None:
            raise ValueError("predict needs a tokenizer when `model` is a model object")
        backend = TorchBackend(model, tokenizer)
    else:
        backend = model
    config = backend.config
    multi_label = getattr(config, "problem_type", None) == MULTI_LABEL
    if text_pairs is not None:
        _check_strings(text_pairs, "text_pairs must be strings")
        if len(text_pairs) != len(texts):
            raise ValueError(f"text_pairs has {len(text_pairs)} items for {len(texts)} texts; give one per text")
    if bool(getattr(config, "text_pairs", False)) != (text_pairs is not None):
        raise ValueError(
            "this model classifies text pairs: pass text_pairs=[...], one per text"
            if text_pairs is None
            else "this model classifies single texts: leave text_pairs out"
        )
    if not multi_label and text_pairs is None:
        threshold = validate_threshold(config.threshold if threshold is None else threshold)
        probs = backend.positive_probabilities(texts, batch_size, max_length)
        return [label_result(p, threshold, config.id2label) for p in probs]
    if not multi_label:  # a text-pair neg/pos model
        threshold = validate_threshold(config.threshold if threshold is None else threshold)
        probs = backend.positive_probabilities(texts, batch_size, max_length, pairs=text_pairs)
        return [label_result(p, threshold, config.id2label) for p in probs]
    logits = torch.from_numpy(backend.logits(texts, batch_size, max_length, pairs=text_pairs)).double()
    names = config.label_names
    if threshold is None:
        cuts = config.label_thresholds()
    else:
        cuts = list(threshold) if isinstance(threshold, Sequence) else [threshold] * len(names)
        if len(cuts) != len(names):
            raise ValueError(f"threshold has {len(cuts)} values for {len(names)} labels; give one, or one per label")
        cuts = [validate_threshold(t) for t in cuts]
    return [
        {
            "labels": [n for n, p, t in zip(names, row, cuts, strict=True) if p >= t],
            "scores": dict(zip(names, row, strict=True)),
        }
        for row in torch.sigmoid(logits).tolist()
    ]


def _check_strings(values: Sequence[Any], message: str) -> None:
    bad = [i for i, t in enumerate(values) if not isinstance(t, str)]
    if bad:
        raise TypeError(f"{message}; item {bad[0]} is {type(values[bad[0]]).__name__}")


__all__ = ["predict"]
