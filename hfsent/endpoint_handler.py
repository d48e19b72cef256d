"""Custom handler for Hugging Face Inference Endpoints (copied as ``handler.py`` next to every saved model).

The Inference Endpoints toolkit imports ``handler.py`` from the repository snapshot, builds
``EndpointHandler(path)`` once and calls it with the request's JSON body:

- ``{"inputs": "物流很快"}`` -> ``[{"label": "pos", "score": 0.97}]``
- ``{"inputs": ["物流很快", "坏了"]}`` -> ``[{"label": "pos", "score": 0.97}, {"label": "neg", "score": 0.91}]``
- ``{"inputs": "坏了", "parameters": {"top_k": null}}`` -> ``[{"label": "neg", "score": 0.91}, {"label": "pos", ...}]``
  (with ``top_k`` 2 or null, a batch gets one such list per input)

as the hosted ``text-classification`` task (and ``pipeline("text-classification")``) answers, except that the label
is decided at the model's tuned ``config.threshold`` on P(pos), not at 0.5; with both labels the decided label
comes first. Parameters: those of the hosted task (huggingface_hub's ``TextClassificationParameters``): ``top_k``
(1, 2 or null) and ``function_to_apply`` (``"sigmoid"``, ``"softmax"`` or ``"none"``), plus ``threshold``
(overrides ``config.threshold``; refused for a multi-label model), ``truncation`` and ``max_length``. The model's
logits are ``[0, z]`` with one real logit ``z``: ``"sigmoid"`` (on ``z``, as a single-logit model's pipeline does)
and ``"softmax"`` (on ``[0, z]``) give the same scores, P(pos) = sigmoid(z) and P(neg) = 1 - P(pos); ``"none"``
gives the raw logits, ``z`` for pos and 0 for neg. The label is decided at the threshold either way. Texts longer
than the model accepts are always truncated to its last position (``truncation: false`` cannot make it read
further), and only a bounded prefix of a long text is tokenized (`encode_truncated`). An empty or blank text, and
text that is not valid Unicode, is refused. A malformed payload raises a `ValueError` saying what is wrong (the
toolkit answers it as an HTTP 400 with that message).

This file must run where hfsent is not installed: it imports only the standard library, ``torch`` and
``transformers``, and loads the model with ``trust_remote_code=True`` (the code travels with the weights).
`parse_payload`, `check_input_kind`, `format_predictions`, `format_multilabel`, `ranked_labels` and
`valid_threshold` are public so that other servers (``hfsent serve``, `hfsent.predict`) speak the same format and
decide the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

PARAMETERS = ("top_k", "function_to_apply", "threshold", "truncation", "max_length")
FUNCTIONS = ("sigmoid", "softmax", "none")
LABELS = ("neg", "pos")
# encode_truncated: a text longer than this many characters per token of ``max_length`` (plus WORD_TOKENS) is cut
# before tokenizing; a longer prefix is tried only when the cut one holds too few tokens to be exact.
CHARS_PER_TOKEN = 8
# The most tokens one word can give (BERT WordPiece: a word of over 100 characters is one [UNK]); a cut prefix
# that holds this many tokens beyond ``max_length`` has its first ``max_length`` tokens exact.
WORD_TOKENS = 100
# "none" recovers z from P(pos); P(pos) is clipped to [MIN, 1 - MIN] first, so |z| <= 36.7 stays finite JSON.
MIN_PROBABILITY = 1e-16


@dataclass(frozen=True)
class Request:
    """A parsed request: the texts, whether the input was a list, and the options."""

    texts: list[str]
    batched: bool
    top_k: int = 1  # of a neg/pos model's two labels (null: both)
    requested_top_k: int | None = 1  # as sent (null: every label), for a multi-label model
    function_to_apply: str | None = None  # None: the model's own (softmax for neg/pos, sigmoid for many labels)
    threshold: float | None = None
    truncation: bool = True
    max_length: int | None = None
    pairs: list[str] | None = None  # the text_pair of each text, for a sentence-pair model


def parse_payload(data: Any) -> Request:
    """Validate an Inference Endpoints payload ``{"inputs": str | [str], "parameters": {...}}``.

    Raises a `ValueError` naming the problem (missing ``inputs``, a non-string input, an unknown or
    ill-typed parameter).
    """
    if not isinstance(data, Mapping):
        raise ValueError(f'the payload must be a JSON object like {{"inputs": "text"}}, got {type(data).__name__}')
    if "inputs" not in data:
        raise ValueError(
            f'the payload has no "inputs" (keys: {_shown(sorted(data))}): send {{"inputs": "text"}} or '
            '{"inputs": ["text", ...]}'
        )
    unknown = sorted(set(data) - {"inputs", "parameters"})
    if unknown:
        raise ValueError(f'unknown payload key(s) {_shown(unknown)}: send "inputs" and optionally "parameters"')
    texts, pairs, batched = _parse_inputs(data["inputs"])
    for i, text in enumerate(texts):
        problem = text_problem(text)
        if problem is not None:
            where = f"item {i} of " if batched else ""
            if pairs is not None:
                raise ValueError(f'{where}"inputs" has a "text" that is {problem}: send non-blank text')
            raise ValueError(f'{where}"inputs" is {problem}: send non-blank text (a string or a list of strings)')
    for i, text in enumerate(pairs or []):
        problem = text_problem(text)
        if problem is not None:
            where = f"item {i} of " if batched else ""
            raise ValueError(f'{where}"inputs" has a "text_pair" that is {problem}: send non-blank text')
    return Request(texts, batched, pairs=pairs, **_parse_parameters(data.get("parameters")))


def _parse_inputs(inputs: Any) -> tuple[list[str], list[str] | None, bool]:
    """``(texts, text pairs or None, batched)`` from ``"inputs"``: a string, a ``{"text", "text_pair"}`` object
    (``{"text"}`` alone is one text, as the stock pipeline reads it), or a list of either kind (not mixed)."""
    if isinstance(inputs, str):
        return [inputs], None, False
    if isinstance(inputs, Mapping):
        text, pair = _parse_pair(inputs, "")
        return [text], None if pair is _NO_PAIR else [pair], False
    if not isinstance(inputs, list):
        raise ValueError(
            f'"inputs" must be a string or a list of strings, got {_kind(inputs)} (text pairs: '
            '{"text": ..., "text_pair": ...} or a list of them)'
        )
    pair_items = [i for i, item in enumerate(inputs) if isinstance(item, Mapping)]
    if inputs and len(pair_items) == len(inputs):
        parsed = [_parse_pair(item, f"item {i} of ") for i, item in enumerate(inputs)]
        alone = [i for i, (_, pair) in enumerate(parsed) if pair is _NO_PAIR]
        if not alone:
            return [t for t, _ in parsed], [p for _, p in parsed], True
        if len(alone) == len(parsed):
            return [t for t, _ in parsed], None, True
        paired = next(i for i, (_, pair) in enumerate(parsed) if pair is not _NO_PAIR)
        raise ValueError(
            f'"inputs" mixes text pairs and single texts (item {paired} has a "text_pair", item {alone[0]} has '
            'none): send every item with a "text_pair", or none'
        )
    if pair_items:
        other = next(i for i, item in enumerate(inputs) if not isinstance(item, Mapping))
        raise ValueError(
            f'"inputs" mixes text pairs and other items (item {pair_items[0]} is an object, item {other} is '
            f'{_kind(inputs[other])}): send a list of strings, or a list of {{"text": ..., "text_pair": ...}} objects'
        )
    bad = [i for i, text in enumerate(inputs) if not isinstance(text, str)]
    if bad:
        raise ValueError(
            f'"inputs" must be a string or a list of strings; item {bad[0]} is {_kind(inputs[bad[0]])} (text pairs: '
            'a list of {"text": ..., "text_pair": ...} objects)'
        )
    return list(inputs), None, True


_NO_PAIR = object()  # an input object with a "text" and no "text_pair": one text


def _parse_pair(item: Mapping, where: str) -> tuple[Any, Any]:
    """The ``(text, text_pair)`` of one ``{"text": ..., "text_pair": ...}`` input; ``text_pair`` `_NO_PAIR` for a
    ``{"text": ...}`` alone."""
    unknown = sorted(set(item) - {"text", "text_pair"})
    if unknown or "text" not in item:
        raise ValueError(
            f'{where}"inputs" must be a string or a list of strings, got dict with keys {sorted(item)} (a text pair '
            'is {"text": ..., "text_pair": ...})'
        )
    return item["text"], item.get("text_pair", _NO_PAIR)


def text_problem(value: Any) -> str | None:
    """Why ``value`` cannot be classified (``"missing text"``, ``"not text (int)"``, ``"empty text"``, ``"not
    valid Unicode (a lone surrogate at position 3)"``), or None for a non-blank string."""
    if value is None:
        return "missing text"
    if not isinstance(value, str):
        return f"not text ({type(value).__name__})"
    if not value.strip():
        return "empty text"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as err:
        return f"not valid Unicode (a lone surrogate at position {err.start})"
    return None


def _parse_parameters(parameters: Any) -> dict[str, Any]:
    if parameters is None:
        return {}
    if not isinstance(parameters, Mapping):
        raise ValueError(f'"parameters" must be an object, got {_kind(parameters)}')
    unknown = sorted(set(parameters) - set(PARAMETERS))
    if unknown:
        raise ValueError(f"unknown parameter(s) {_shown(unknown)}; accepted: {list(PARAMETERS)}")
    options: dict[str, Any] = {}
    if "top_k" in parameters:
        top_k = parameters["top_k"]
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
            raise ValueError(f'"top_k" must be a positive integer or null, got {_shown(top_k)}')
        options["top_k"] = len(LABELS) if top_k is None else min(top_k, len(LABELS))
        options["requested_top_k"] = top_k
    if parameters.get("function_to_apply") is not None:
        function = parameters["function_to_apply"]
        if function not in FUNCTIONS:
            raise ValueError(f'"function_to_apply" must be one of {list(FUNCTIONS)} or null, got {_shown(function)}')
        options["function_to_apply"] = function
    if parameters.get("threshold") is not None:
        threshold = parameters["threshold"]
        if not valid_threshold(threshold):
            raise ValueError(f'"threshold" must be a number strictly between 0 and 1, got {_shown(threshold)}')
        options["threshold"] = float(threshold)
    if "truncation" in parameters:
        if not isinstance(parameters["truncation"], bool):
            raise ValueError(f'"truncation" must be true or false, got {_shown(parameters["truncation"])}')
        options["truncation"] = parameters["truncation"]
    if parameters.get("max_length") is not None:
        max_length = parameters["max_length"]
        if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
            raise ValueError(f'"max_length" must be a positive integer, got {_shown(max_length)}')
        options["max_length"] = max_length
    return options


def valid_threshold(value: Any) -> bool:
    """Whether ``value`` can be a decision threshold: a number (not a bool) strictly between 0 and 1."""
    return not isinstance(value, bool) and isinstance(value, (int, float)) and 0.0 < value < 1.0


def _shown(value: Any, limit: int = 80) -> str:
    """``repr(value)`` for an error message, cut to ``limit`` characters (a client's value may be megabytes)."""
    try:
        text = repr(value)
    except (RecursionError, ValueError):  # nested too deeply; an int of too many digits
        return f"a {type(value).__name__} too large to show"
    return text if len(text) <= limit else text[: limit - 4] + " ..."


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


def _logit(positive_probability: float) -> float:
    """z from P(pos) = sigmoid(z): P(pos) is float64, so z is exact to ~1e-6 for |z| < 30 (clipped to |z| <= 36.7)."""
    import math

    p = min(max(float(positive_probability), MIN_PROBABILITY), 1.0 - MIN_PROBABILITY)
    return math.log(p) - math.log1p(-p)


def format_predictions(
    positive_probabilities: Sequence[float],
    threshold: float,
    top_k: int = 1,
    batched: bool = True,
    labels: Sequence[str] = LABELS,
    function_to_apply: str = "softmax",
) -> list[Any]:
    """Label/score answers from P(pos), in the hosted text-classification format.

    ``top_k`` 1: one ``{"label", "score"}`` per text (the label decided at ``threshold``, its probability);
    2: both labels per text, the decided one first. A single (non-batched) input with ``top_k`` 2 gives the
    list of its labels, like the pipeline. ``function_to_apply`` ``"none"``: the scores are the logits
    ``[0, z]`` instead of probabilities (see the module docstring).
    """
    answers: list[Any] = []
    for p in positive_probabilities:
        ranked = ranked_labels(p, threshold, labels)
        if function_to_apply == "none":  # the logits [0, z] in place of the probabilities
            logits = {labels[0]: 0.0, labels[1]: _logit(p)}
            ranked = [{"label": r["label"], "score": logits[r["label"]]} for r in ranked]
        answers.append(ranked[0] if top_k == 1 else ranked[:top_k])
    if top_k != 1 and not batched:
        return answers[0]
    return answers


def check_input_kind(request: Request, text_pairs: bool, multi_label: bool = False) -> None:
    """Raise a ValueError when a pair payload goes to a single-text model, or single texts to a pair model, or a
    ``threshold`` to a multi-label model (``multi_label``), whose answers rank its labels and decide nothing."""
    if request.pairs is not None and not text_pairs:
        raise ValueError(
            'this model classifies single texts: send {"inputs": "text"} or a list of strings, not text pairs'
        )
    if request.pairs is None and text_pairs:
        raise ValueError(
            'this model classifies text pairs: send {"inputs": {"text": ..., "text_pair": ...}} or a list of them'
        )
    if multi_label and request.threshold is not None:
        raise ValueError(
            "this is a multi-label model, whose answers rank every label by its score (as the hosted task's): leave "
            '"threshold" out'
        )


def format_label_scores(
    scores: Sequence[Sequence[float]], labels: Sequence[str], top_k: int | None = 1, batched: bool = True
) -> list[Any]:
    """A multi-label model's answers in the hosted text-classification format: each text's labels ranked by score
    (its sigmoid, as the pipeline gives a multi-label model), the best first; ``top_k`` of them (None: all)."""
    answers: list[Any] = []
    for row in scores:
        ranked = sorted(
            ({"label": label, "score": float(s)} for label, s in zip(labels, row, strict=True)),
            key=lambda r: -r["score"],
        )
        answers.append(ranked[0] if top_k == 1 else ranked[:top_k])
    if top_k != 1 and not batched:
        return answers[0]
    return answers


def format_multilabel(logits: torch.Tensor, labels: Sequence[str], request: Request) -> list[Any]:
    """A multi-label model's answers to ``request`` from its logits ``(n, K)``: ``function_to_apply`` (default
    ``"sigmoid"``, one per label, as the pipeline applies to a multi-label model; ``"softmax"`` over the labels;
    ``"none"``: the logits), ranked by `format_label_scores`."""
    function = request.function_to_apply or "sigmoid"
    if function == "sigmoid":
        logits = torch.sigmoid(logits)
    elif function == "softmax":
        logits = torch.softmax(logits, dim=-1)
    return format_label_scores(logits.tolist(), labels, request.requested_top_k, request.batched)


@torch.inference_mode()
def model_logits(
    model: Any,
    tokenizer: Any,
    texts: Sequence[str],
    pairs: Sequence[str] | None,
    max_length: int,
    batch_size: int = 32,
) -> torch.Tensor:
    """The model's logits ``(n, columns)`` in float64 for ``texts`` (sentence pairs with ``pairs``: the pair side is
    cut to ``max_length``, never the first text, unless that alone is too long)."""
    rows = []
    for start in range(0, len(texts), batch_size):
        chunk = list(texts[start : start + batch_size])
        second = list(pairs[start : start + batch_size]) if pairs is not None else None
        truncation = "only_second" if second is not None else True
        try:
            batch = tokenizer(
                chunk, second, truncation=truncation, max_length=max_length, padding=True, return_tensors="pt"
            )
        except Exception:  # the first text alone is longer than max_length: cut the longest
            batch = tokenizer(chunk, second, truncation=True, max_length=max_length, padding=True, return_tensors="pt")
        rows.append(model(**batch.to(model.device)).logits.double().cpu())
    return torch.cat(rows) if rows else torch.zeros((0, 2), dtype=torch.float64)


def encode_truncated(tokenizer: Any, texts: Sequence[str], max_length: int) -> list[list[int]]:
    """The ``input_ids`` of each text truncated to ``max_length`` tokens (special tokens included), with memory
    bounded by ``max_length`` rather than by the text: a text is tokenized whole only when it is short, else
    a prefix of ``(max_length + WORD_TOKENS) * CHARS_PER_TOKEN`` characters, doubled until the prefix holds
    ``WORD_TOKENS`` tokens beyond ``max_length`` (then a word cut at its end cannot reach the kept tokens: the
    ids equal those of the whole text truncated) or is the whole text.
    """

    def encode(batch: list[str], limit: int) -> list[list[int]]:
        if not batch:
            return []
        return tokenizer(
            batch, truncation=True, max_length=limit, return_attention_mask=False, return_token_type_ids=False
        )["input_ids"]

    enough = max_length + WORD_TOKENS
    budget = enough * CHARS_PER_TOKEN
    long = [i for i, text in enumerate(texts) if len(text) > budget]
    encodings = encode([text if len(text) <= budget else "" for text in texts], max_length)
    for i in long:
        text, cut = texts[i], budget
        while cut < len(text) and len(encode([text[:cut]], enough)[0]) < enough:
            cut *= 2
        encodings[i] = encode([text[:cut]], max_length)[0]
    return encodings


class EndpointHandler:
    """Inference Endpoints handler of an hfsent sentiment model (see the module docstring for the format)."""

    def __init__(self, path: str = "", batch_size: int = 32) -> None:
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=True)
        self.model = AutoModelForSequenceClassification.from_pretrained(path, trust_remote_code=True)
        self.model.to(self.device).eval()
        config = self.model.config
        self.multi_label = getattr(config, "problem_type", None) == "multi_label_classification"
        self.text_pairs = bool(getattr(config, "text_pairs", False))
        self.threshold = 0.5 if self.multi_label else float(getattr(config, "threshold", 0.5))
        self.labels = tuple(config.id2label[i] for i in sorted(config.id2label))
        self.batch_size = batch_size
        positions = getattr(config, "max_position_embeddings", None) or 512
        self.max_length = min(int(self.tokenizer.model_max_length or positions), positions)

    @torch.inference_mode()
    def positive_probabilities(self, texts: Sequence[str], truncation: bool = True, max_length: int | None = None):
        """P(pos) of each text (``sigmoid`` of the model's logit ``z = logits[:, 1]``, in float64).

        Texts are always truncated to what the model accepts (``truncation`` is accepted for the hosted task's
        sake; the model cannot read past its last position) or to ``max_length`` tokens when that is shorter.
        """
        limit = min(max_length or self.max_length, self.max_length)
        encodings = encode_truncated(self.tokenizer, texts, limit)
        probabilities: list[float] = []
        for start in range(0, len(texts), self.batch_size):
            batch = self.tokenizer.pad(
                {"input_ids": encodings[start : start + self.batch_size]}, padding=True, return_tensors="pt"
            ).to(self.device)
            logits = self.model(**batch).logits
            probabilities += torch.sigmoid(logits[:, -1].double()).tolist()
        return probabilities

    def __call__(self, data: dict[str, Any]) -> list[Any]:
        """Answer one request: ``{"inputs": str | [str], "parameters": {...}}``."""
        request = parse_payload(data)
        check_input_kind(request, self.text_pairs, self.multi_label)
        limit = min(request.max_length or self.max_length, self.max_length)
        if self.multi_label:
            logits = model_logits(self.model, self.tokenizer, request.texts, request.pairs, limit, self.batch_size)
            return format_multilabel(logits, self.labels, request)
        if request.pairs is not None:
            logits = model_logits(self.model, self.tokenizer, request.texts, request.pairs, limit, self.batch_size)
            probabilities = torch.sigmoid(logits[:, -1]).tolist()
        else:
            probabilities = self.positive_probabilities(request.texts, request.truncation, request.max_length)
        threshold = self.threshold if request.threshold is None else request.threshold
        return format_predictions(
            probabilities,
            threshold,
            request.top_k,
            request.batched,
            self.labels,
            request.function_to_apply or "softmax",
        )
