"""Decisions from P(pos): the threshold rule and the label of a text.

Both rules are `hfsent.endpoint_handler`'s (the handler that ships with every model, which must run without
hfsent), reused here so that `hfsent.predict`, ``hfsent predict`` and ``hfsent serve`` decide exactly as a deployed
model does: a text is positive when P(pos) >= the threshold, and a threshold lies strictly between 0 and 1.
"""

from __future__ import annotations

from typing import Any

from ..endpoint_handler import ranked_labels, valid_threshold


def validate_threshold(threshold: float) -> float:
    """Return ``threshold`` as a float, or raise a ValueError unless it is strictly between 0 and 1."""
    if not valid_threshold(threshold):
        raise ValueError(f"threshold must be strictly between 0 and 1, got {threshold!r}")
    return float(threshold)


def label_result(positive_probability: float, threshold: float, id2label: dict[int, str]) -> dict[str, Any]:
    """The thresholded decision for one text: ``label``, ``score`` (the probability of that label)
    and ``positive_probability``. A text is positive when P(pos) >= ``threshold``."""
    decided = ranked_labels(positive_probability, threshold, (id2label[0], id2label[1]))[0]
    return {**decided, "positive_probability": positive_probability}


__all__ = ["label_result", "validate_threshold"]
