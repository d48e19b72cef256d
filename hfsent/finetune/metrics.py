"""Evaluation: binary and multi-label sentiment metrics (via `evaluate`) and decision-threshold tuning."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import evaluate
    from transformers import EvalPrediction

BINARY_SENTIMENT_MODULE = str(Path(__file__).parents[1] / "evaluate_modules" / "binary_sentiment")
MULTILABEL_SENTIMENT_MODULE = str(Path(__file__).parents[1] / "evaluate_modules" / "multilabel_sentiment")
THRESHOLD_OBJECTIVES = ("f1", "accuracy", "balanced_accuracy")
THRESHOLD_METHODS = ("bootstrap", "best", "none")
THRESHOLD_RESAMPLES = 200
THRESHOLD_CONFIDENCE = 0.95


@functools.cache
def binary_sentiment_metric() -> evaluate.EvaluationModule:
    """The bundled `evaluate` module (accuracy, f1, precision, recall, roc_auc); loads offline."""
    import evaluate  # loaded on first use: the recipe's arguments import this module's choices

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


@functools.cache
def multilabel_sentiment_metric() -> evaluate.EvaluationModule:
    """The bundled multi-label `evaluate` module (per label and micro/macro averages); loads offline."""
    import evaluate  # loaded on first use, as for the binary module

    return evaluate.load(MULTILABEL_SENTIMENT_MODULE)


def label_probabilities(logits: np.ndarray) -> np.ndarray:
    """Each label's probability (its sigmoid) from a multi-label model's ``(n, K)`` logits."""
    return 1.0 / (1.0 + np.exp(-np.asarray(logits, dtype=np.float64)))


def multilabel_metrics(
    probabilities: np.ndarray,
    labels: np.ndarray,
    label_names: Sequence[str],
    thresholds: float | Sequence[float] = 0.5,
) -> dict[str, float]:
    """Per-label and micro/macro metrics (`MULTILABEL_SENTIMENT_MODULE`) at ``thresholds`` (one, or one per label).

    The averages take the binary metric names (``accuracy``, ``f1``, ``precision``, ``recall``, ``roc_auc``: label-wise
    accuracy, micro F1/precision/recall, macro ROC-AUC) plus ``exact_match``, ``f1_micro``, ``f1_macro``,
    ``roc_auc_micro``, ``roc_auc_macro``; per label ``<metric>/<label>``.
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    predictions = (probabilities >= np.asarray(thresholds, dtype=np.float64)).astype(np.int32)
    return multilabel_sentiment_metric().compute(
        predictions=predictions,
        references=np.asarray(labels).astype(np.int32),
        prediction_scores=probabilities,
        label_names=list(label_names),
    )


def multilabel_compute_metrics(label_names: Sequence[str]) -> Callable[[EvalPrediction], dict[str, float]]:
    """A `Trainer` ``compute_metrics`` for a multi-label model: `multilabel_metrics` at 0.5 from its logits, the
    averages only (the training log stays readable; the run's results hold the per-label metrics)."""

    def compute(eval_pred: EvalPrediction) -> dict[str, float]:
        metrics = multilabel_metrics(label_probabilities(eval_pred.predictions), eval_pred.label_ids, label_names)
        return {name: value for name, value in metrics.items() if "/" not in name}

    return compute


def tune_label_thresholds(
    probabilities: np.ndarray, labels: np.ndarray, objective: str = "f1", method: str = "none", seed: int = 0
) -> list[float]:
    """One threshold per label, each tuned by `tune_threshold` on that label's column (0.5 with ``method="none"``,
    or where the label has a single class in this data)."""
    probabilities, labels = np.asarray(probabilities, dtype=np.float64), np.asarray(labels).astype(np.int32)
    thresholds = []
    for k in range(probabilities.shape[1]):
        if method == "none" or len(np.unique(labels[:, k])) < 2:
            thresholds.append(0.5)
        else:
            thresholds.append(tune_threshold(probabilities[:, k], labels[:, k], objective, method, seed=seed)[0])
    return thresholds


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


def _objective_at_cuts(probabilities: np.ndarray, labels: np.ndarray, objective: str) -> tuple[np.ndarray, np.ndarray]:
    """``(thresholds, objective values)`` at every cut between two distinct probabilities, in one sorted pass."""
    order = np.argsort(-probabilities, kind="stable")
    p, y = probabilities[order], labels[order].astype(np.float64)
    n, positives = len(y), float(y.sum())
    tp = np.concatenate([[0.0], np.cumsum(y)])  # the top k predicted positive, for k = 0..n
    fp = np.arange(n + 1, dtype=np.float64) - tp
    fn, tn = positives - tp, (n - positives) - fp
    upper, lower = np.concatenate([[1.0], p]), np.concatenate([p, [0.0]])
    thresholds = (upper + lower) / 2  # halfway between the k-th and the (k+1)-th probability
    with np.errstate(divide="ignore", invalid="ignore"):
        if objective == "f1":
            values = np.where(tp > 0, 2 * tp / (2 * tp + fp + fn), 0.0)
        elif objective == "accuracy":
            values = (tp + tn) / n
        else:  # balanced accuracy
            tpr = tp / positives if positives else np.zeros_like(tp)
            tnr = tn / (n - positives) if n - positives else np.zeros_like(tn)
            values = (tpr + tnr) / 2
    keep = (upper > lower) & (thresholds > 0.0) & (thresholds < 1.0)
    keep[[0, -1]] = False  # cuts between two probabilities only: never "all negative" or "all positive"
    return thresholds[keep], values[keep]


def best_threshold(probabilities: np.ndarray, labels: np.ndarray, objective: str = "f1") -> float:
    """The threshold that maximises ``objective`` on this data (a midpoint between two distinct probabilities,
    or 0.5); ties go to the candidate closest to 0.5."""
    thresholds, values = _objective_at_cuts(probabilities, labels, objective)
    at_half = _objective(objective)((probabilities >= 0.5).astype(np.int32), labels)
    if len(thresholds) == 0 or at_half >= values.max():
        return 0.5
    ties = thresholds[values == values.max()]
    return float(ties[np.argmin(np.abs(ties - 0.5))])


def _bagged_cut(
    probabilities: np.ndarray, labels: np.ndarray, objective: str, resamples: int, rng: np.random.Generator
) -> float:
    """The median of the best cuts on ``resamples`` bootstrap resamples."""
    n = len(labels)
    draws = rng.integers(0, n, (resamples, n))
    return float(np.median([best_threshold(probabilities[i], labels[i], objective) for i in draws]))


def _beats_one_half(
    threshold: float,
    probabilities: np.ndarray,
    labels: np.ndarray,
    objective: str,
    resamples: int,
    confidence: float,
    rng: np.random.Generator,
) -> bool:
    """Whether ``threshold`` beats 0.5 on ``objective`` (in ``confidence`` of ``resamples`` bootstrap resamples,
    or on the data itself for ``resamples=0``) without lowering the mean accuracy."""
    score, accuracy = _objective(objective), _objective("accuracy")
    n = len(labels)
    draws = rng.integers(0, n, (resamples, n)) if resamples else [np.arange(n)]
    wins, accuracy_change = 0, 0.0
    for i in draws:
        p, y = probabilities[i], labels[i]
        tuned, half = (p >= threshold).astype(np.int32), (p >= 0.5).astype(np.int32)
        wins += score(tuned, y) > score(half, y)
        accuracy_change += accuracy(tuned, y) - accuracy(half, y)
    return wins >= confidence * len(draws) and accuracy_change >= 0


def _two_halves(n: int, rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
    """A random split of ``range(n)`` into two halves, as (fit, held out) both ways."""
    order = rng.permutation(n)
    first, second = order[: n // 2], order[n // 2 :]
    return [(first, second), (second, first)]


def tune_threshold(
    probabilities: Sequence[float],
    labels: Sequence[int],
    objective: str = "f1",
    method: str = "bootstrap",
    resamples: int = THRESHOLD_RESAMPLES,
    confidence: float = THRESHOLD_CONFIDENCE,
    seed: int = 0,
) -> tuple[float, float]:
    """Pick the decision threshold on (validation) data; returns ``(threshold, objective value there)``.

    ``method="best"``: the threshold that maximises ``objective`` on the data (`best_threshold`). On a small
    validation split that cut follows the split's noise and often does worse than 0.5 on new data.
    ``method="bootstrap"`` (default): the best cut is found on ``resamples`` bootstrap resamples and their
    median is the candidate (bagging steadies it). The candidate replaces 0.5 only if (1) on another
    ``resamples`` bootstrap resamples it beats 0.5 on ``objective`` in at least ``confidence`` of them without
    lowering the mean accuracy (an F1-tuned cut below 0.5 trades accuracy for recall), and (2) out of sample:
    a cut bagged on each random half of the data beats 0.5 on the other half, the same way. Else it stays 0.5.
    ``method="none"``: 0.5.
    """
    if objective not in THRESHOLD_OBJECTIVES:
        raise ValueError(f"threshold objective must be one of {THRESHOLD_OBJECTIVES}, got {objective!r}")
    if method not in THRESHOLD_METHODS:
        raise ValueError(f"threshold tuning method must be one of {THRESHOLD_METHODS}, got {method!r}")
    probabilities = np.asarray(probabilities, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int32)
    if len(probabilities) == 0:
        raise ValueError("cannot tune a threshold on an empty set")
    score = _objective(objective)
    threshold = 0.5
    if method == "best":
        threshold = best_threshold(probabilities, labels, objective)
    elif method == "bootstrap":
        rng = np.random.default_rng(seed)
        candidate = _bagged_cut(probabilities, labels, objective, resamples, rng)
        if _beats_one_half(candidate, probabilities, labels, objective, resamples, confidence, rng) and all(
            _beats_one_half(
                _bagged_cut(probabilities[fit], labels[fit], objective, resamples, rng),
                probabilities[held],
                labels[held],
                objective,
                0,
                confidence,
                rng,
            )
            for fit, held in _two_halves(len(labels), rng)
        ):
            threshold = candidate
    return threshold, score((probabilities >= threshold).astype(np.int32), labels)


def prefixed(metrics: dict[str, Any], prefix: str) -> dict[str, Any]:
    """``{"accuracy": 1}`` -> ``{"<prefix>_accuracy": 1}``."""
    return {f"{prefix}_{k}": v for k, v in metrics.items()}
