"""`hfsent.predict`: classify texts with an hfsent model at its tuned threshold."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from .backends import InferenceBackend, TorchBackend, load_model_and_tokenizer
from .labels import label_result, validate_threshold


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


__all__ = ["predict"]
