"""Evaluation: binary sentiment metrics (via `evaluate`) and decision-threshold tuning."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import evaluate
import numpy as np
from transformers import EvalPrediction

BINARY_SENTIMENT_MODULE = str(Path(__file__).parents[1] / "evaluate_modules" / "binary_sentiment")
THRESHOLD_OBJECTIVES = ("f1", "accuracy", "balanced_accuracy")


@functools.cache
def binary_sentiment_metric() -> evaluate.EvaluationModule:
    """The bundled `evaluate` module (accuracy, f1, precision, recall, roc_auc); loads offline."""
    return evaluate.load(BINARY_SENTIMENT_MODULE)


def probabilities_from_logits(logits: np.ndarray) -> np.ndarray:
    """P(pos) from hfsent logits ``[0, z]`` (or a single logit column ``z``)."""
    logits = np.asarray(logits, dtype=np.float64)
    z = logits[:, -1] if logits.ndim == 2 else logits
    return 1.0 / (1.0 + np.exp(-z))


def binary_metrics(probabilities: Sequence[float], labels: Sequence[int], threshold: float = 0.5) -> dict[str, float]:
    """Accuracy, F1, precision, recall (positive class) at ``threshold``, and ROC-AUC."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    predictions = (probabilities >= threshold).astype(np.int32)
    return binary_sentiment_metric().compute(
        predictions=predictions, references=np.asarray(labels, dtype=np.int32), prediction_scores=probabilities
    )


def compute_metrics(eval_pred: EvalPrediction) -> dict[str, float]:
    """`Trainer` ``compute_metrics``: metrics at threshold 0.5 from hfsent logits."""
    return binary_metrics(probabilities_from_logits(eval_pred.predictions), eval_pred.label_ids)


def _objective(name: str) -> Callable[[np.ndarray, np.ndarray], float]:
    def score(predictions: np.ndarray, labels: np.ndarray) -> float:
        tp = float(np.sum((predictions == 1) & (labels == 1)))
        fp = float(np.sum((predictions == 1) & (labels == 0)))
        fn = float(np.sum((predictions == 0) & (labels == 1)))
        tn = float(np.sum((predictions == 0) & (labels == 0)))
        if name == "f1":
            return 2 * tp / (2 * tp + fp + fn) if tp else 0.0
        if name == "accuracy":
            return (tp + tn) / len(labels)
        tpr = tp / (tp + fn) if tp + fn else 0.0
        tnr = tn / (tn + fp) if tn + fp else 0.0
        return (tpr + tnr) / 2

    return score


def tune_threshold(probabilities: Sequence[float], labels: Sequence[int], objective: str = "f1") -> tuple[float, float]:
    """Pick the decision threshold that maximises ``objective`` on (validation) data.

    Candidates are the midpoints between consecutive distinct probabilities (plus 0.5); ties go to
    the candidate closest to 0.5. Returns ``(threshold, objective value)``.
    """
    if objective not in THRESHOLD_OBJECTIVES:
        raise ValueError(f"threshold objective must be one of {THRESHOLD_OBJECTIVES}, got {objective!r}")
    probabilities = np.asarray(probabilities, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int32)
    if len(probabilities) == 0:
        raise ValueError("cannot tune a threshold on an empty set")
    distinct = np.unique(probabilities)
    candidates = np.concatenate([[0.5], (distinct[:-1] + distinct[1:]) / 2])
    candidates = candidates[(candidates > 0.0) & (candidates < 1.0)]
    score = _objective(objective)
    best: tuple[float, float, float] | None = None  # (score, -distance to 0.5, threshold)
    for t in candidates:
        key = (score((probabilities >= t).astype(np.int32), labels), -abs(t - 0.5), float(t))
        if best is None or key > best:
            best = key
    assert best is not None
    return best[2], best[0]


def prefixed(metrics: dict[str, Any], prefix: str) -> dict[str, Any]:
    """``{"accuracy": 1}`` -> ``{"<prefix>_accuracy": 1}``."""
    return {f"{prefix}_{k}": v for k, v in metrics.items()}
