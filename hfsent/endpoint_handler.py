"""Custom handler for Hugging Face Inference Endpoints (copied as ``handler.py`` next to every saved model).

The Inference Endpoints toolkit imports ``handler.py`` from the repository snapshot, builds
``EndpointHandler(path)`` once and calls it with the request's JSON body:

- ``{"inputs": "物流很快"}`` -> ``[{"label": "pos", "score": 0.97}]``
- ``{"inputs": ["物流很快", "坏了"]}`` -> ``[{"label": "pos", "score": 0.97}, {"label": "neg", "score": 0.91}]``
- ``{"inputs": "坏了", "parameters": {"top_k": null}}`` -> ``[{"label": "neg", "score": 0.91}, {"label": "pos", ...}]``
  (with ``top_k`` 2 or null, a batch gets one such list per input)

as the hosted ``text-classification`` task (and ``pipeline("text-classification")``) answers, except that the
label is decided at the model's tuned ``config.threshold`` on P(pos), not at 0.5; with both labels the decided
label comes first. Parameters: ``top_k`` (1, 2 or null), ``threshold`` (overrides ``config.threshold``),
``truncation`` (default true) and ``max_length``. A malformed payload raises a `ValueError` saying what is wrong
(the toolkit answers it as an HTTP 400 with that message).

This file must run where hfsent is not installed: it imports only the standard library, ``torch`` and
``transformers``, and loads the model with ``trust_remote_code=True`` (the code travels with the weights).
`parse_payload`, `format_predictions`, `ranked_labels` and `valid_threshold` are public so that other servers
(``hfsent serve``, `hfsent.predict`) speak the same format and decide the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

PARAMETERS = ("top_k", "threshold", "truncation", "max_length")
LABELS = ("neg", "pos")


@dataclass(frozen=True)
class Request:
    """A parsed request: the texts, whether the input was a list, and the options."""

    texts: list[str]
    batched: bool
    top_k: int = 1
    threshold: float | None = None
    truncation: bool = True
    max_length: int | None = None


def parse_payload(data: Any) -> Request:
    """Validate an Inference Endpoints payload ``{"inputs": str | [str], "parameters": {...}}``.

    Raises a `ValueError` naming the problem (missing ``inputs``, a non-string input, an unknown or
    ill-typed parameter).
    """
    if not isinstance(data, Mapping):
        raise ValueError(f'the payload must be a JSON object like {{"inputs": "text"}}, got {type(data).__name__}')
    if "inputs" not in data:
        raise ValueError(
            f'the payload has no "inputs" (keys: {sorted(data)}): send {{"inputs": "text"}} or '
            '{"inputs": ["text", ...]}'
        )
    unknown = sorted(set(data) - {"inputs", "parameters"})
    if unknown:
        raise ValueError(f'unknown payload key(s) {unknown}: send "inputs" and optionally "parameters"')
    inputs = data["inputs"]
    if isinstance(inputs, str):
        texts, batched = [inputs], False
    elif isinstance(inputs, list):
        bad = [i for i, text in enumerate(inputs) if not isinstance(text, str)]
        if bad:
            raise ValueError(
                f'"inputs" must be a string or a list of strings; item {bad[0]} is {_kind(inputs[bad[0]])}'
            )
        texts, batched = list(inputs), True
    else:
        raise ValueError(f'"inputs" must be a string or a list of strings, got {_kind(inputs)}')
    return Request(texts, batched, **_parse_parameters(data.get("parameters")))


def _parse_parameters(parameters: Any) -> dict[str, Any]:
    if parameters is None:
        return {}
    if not isinstance(parameters, Mapping):
        raise ValueError(f'"parameters" must be an object, got {_kind(parameters)}')
    unknown = sorted(set(parameters) - set(PARAMETERS))
    if unknown:
        raise ValueError(f"unknown parameter(s) {unknown}; accepted: {list(PARAMETERS)}")
    options: dict[str, Any] = {}
    if "top_k" in parameters:
        top_k = parameters["top_k"]
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
            raise ValueError(f'"top_k" must be a positive integer or null, got {top_k!r}')
        options["top_k"] = len(LABELS) if top_k is None else min(top_k, len(LABELS))
    if parameters.get("threshold") is not None:
        threshold = parameters["threshold"]
        if not valid_threshold(threshold):
            raise ValueError(f'"threshold" must be a number strictly between 0 and 1, got {threshold!r}')
        options["threshold"] = float(threshold)
    if "truncation" in parameters:
        if not isinstance(parameters["truncation"], bool):
            raise ValueError(f'"truncation" must be true or false, got {parameters["truncation"]!r}')
        options["truncation"] = parameters["truncation"]
    if parameters.get("max_length") is not None:
        max_length = parameters["max_length"]
        if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
            raise ValueError(f'"max_length" must be a positive integer, got {max_length!r}')
        options["max_length"] = max_length
    return options


def valid_threshold(value: Any) -> bool:
    """Whether ``value`` can be a decision threshold: a number (not a bool) strictly between 0 and 1."""
    return not isinstance(value, bool) and isinstance(value, (int, float)) and 0.0 < value < 1.0


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def ranked_labels(positive_probability: float, threshold: float, labels: Sequence[str] = LABELS) -> list[dict]:
    """Both labels of one text with their probabilities, the label decided at ``threshold`` first: positive when
    P(pos) >= ``threshold``. ``labels`` are ``(negative, positive)``."""
    neg, pos = labels
    p = float(positive_probability)
    ranked = [{"label": pos, "score": p}, {"label": neg, "score": 1.0 - p}]
    if p < threshold:
        ranked.reverse()
    return ranked


def format_predictions(
    positive_probabilities: Sequence[float],
    threshold: float,
    top_k: int = 1,
    batched: bool = True,
    labels: Sequence[str] = LABELS,
) -> list[Any]:
    """Label/score answers from P(pos), in the hosted text-classification format.

    ``top_k`` 1: one ``{"label", "score"}`` per text (the label decided at ``threshold``, its probability);
    2: both labels per text, the decided one first. A single (non-batched) input with ``top_k`` 2 gives the
    list of its labels, like the pipeline.
    """
    answers: list[Any] = []
    for p in positive_probabilities:
        ranked = ranked_labels(p, threshold, labels)
        answers.append(ranked[0] if top_k == 1 else ranked[:top_k])
    if top_k != 1 and not batched:
        return answers[0]
    return answers


class EndpointHandler:
    """Inference Endpoints handler of an hfsent sentiment model (see the module docstring for the format)."""

    def __init__(self, path: str = "", batch_size: int = 32) -> None:
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=True)
        self.model = AutoModelForSequenceClassification.from_pretrained(path, trust_remote_code=True)
        self.model.to(self.device).eval()
        config = self.model.config
        self.threshold = float(getattr(config, "threshold", 0.5))
        self.labels = (config.id2label[0], config.id2label[1])
        self.batch_size = batch_size
        positions = getattr(config, "max_position_embeddings", None) or 512
        self.max_length = min(int(self.tokenizer.model_max_length or positions), positions)

    @torch.inference_mode()
    def positive_probabilities(self, texts: Sequence[str], truncation: bool = True, max_length: int | None = None):
        """P(pos) of each text (``sigmoid`` of the model's logit ``z = logits[:, 1]``)."""
        probabilities: list[float] = []
        for start in range(0, len(texts), self.batch_size):
            batch = self.tokenizer(
                list(texts[start : start + self.batch_size]),
                padding=True,
                truncation=truncation,
                max_length=max_length or self.max_length,
                return_tensors="pt",
            ).to(self.device)
            logits = self.model(**batch).logits
            probabilities += torch.sigmoid(logits[:, -1].float()).tolist()
        return probabilities

    def __call__(self, data: dict[str, Any]) -> list[Any]:
        """Answer one request: ``{"inputs": str | [str], "parameters": {...}}``."""
        request = parse_payload(data)
        probabilities = self.positive_probabilities(request.texts, request.truncation, request.max_length)
        threshold = self.threshold if request.threshold is None else request.threshold
        return format_predictions(probabilities, threshold, request.top_k, request.batched, self.labels)
