"""PNG plots of a fine-tuning run: confusion matrix, ROC and PR curves, training curves; per-label metrics."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..outputs import PLOT_FILES


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_evaluation_plots(
    probabilities: Sequence[float], labels: Sequence[int], threshold: float, output_dir: str | Path
) -> list[Path]:
    """Save the confusion matrix (at ``threshold``), ROC and precision-recall curves as PNG."""
    from sklearn.metrics import ConfusionMatrixDisplay, PrecisionRecallDisplay, RocCurveDisplay

    plt = _pyplot()
    output_dir = Path(output_dir)
    probabilities = np.asarray(probabilities)
    labels = np.asarray(labels)
    written = []

    fig, ax = plt.subplots(figsize=(4, 4))
    ConfusionMatrixDisplay.from_predictions(
        labels,
        (probabilities >= threshold).astype(int),
        labels=[0, 1],  # both rows and columns even when the test split holds one label
        display_labels=["neg", "pos"],
        ax=ax,
        colorbar=False,
    )
    ax.set_title(f"Test confusion matrix (threshold {threshold:.3f})")
    written.append(_save(fig, output_dir / PLOT_FILES["confusion_matrix"]))

    if len(np.unique(labels)) == 2:
        fig, ax = plt.subplots(figsize=(4, 4))
        RocCurveDisplay.from_predictions(labels, probabilities, ax=ax, name="hfsent")
        ax.set_title("Test ROC curve")
        written.append(_save(fig, output_dir / PLOT_FILES["roc_curve"]))
        fig, ax = plt.subplots(figsize=(4, 4))
        PrecisionRecallDisplay.from_predictions(labels, probabilities, ax=ax, name="hfsent")
        ax.set_title("Test precision-recall curve")
        written.append(_save(fig, output_dir / PLOT_FILES["pr_curve"]))
    return written


def save_multilabel_plots(
    probabilities: np.ndarray,
    labels: np.ndarray,
    label_names: Sequence[str],
    thresholds: Sequence[float],
    output_dir: str | Path,
) -> list[Path]:
    """A multi-label model's test plots: F1 (at ``thresholds``) and ROC-AUC per label, and the micro-averaged ROC
    curve (every label's scores pooled)."""
    from sklearn.metrics import RocCurveDisplay, f1_score, roc_auc_score

    plt = _pyplot()
    output_dir = Path(output_dir)
    probabilities, labels = np.asarray(probabilities), np.asarray(labels).astype(int)
    predictions = (probabilities >= np.asarray(thresholds)).astype(int)
    f1 = [f1_score(labels[:, k], predictions[:, k], zero_division=0) for k in range(len(label_names))]
    auc = [
        roc_auc_score(labels[:, k], probabilities[:, k]) if len(np.unique(labels[:, k])) == 2 else np.nan
        for k in range(len(label_names))
    ]
    fig, ax = plt.subplots(figsize=(6, 0.3 * len(label_names) + 1.5))
    y = np.arange(len(label_names))
    ax.barh(y - 0.2, f1, height=0.4, label="F1")
    ax.barh(y + 0.2, auc, height=0.4, label="ROC-AUC")
    ax.set_yticks(y, label_names, fontsize=7)
    ax.set_xlim(0, 1)
    ax.invert_yaxis()
    ax.legend(loc="lower right")
    ax.set_title("Test metrics per label")
    written = [_save(fig, output_dir / PLOT_FILES["label_metrics"])]
    if len(np.unique(labels)) == 2:
        fig, ax = plt.subplots(figsize=(4, 4))
        RocCurveDisplay.from_predictions(labels.ravel(), probabilities.ravel(), ax=ax, name="hfsent (micro)")
        ax.set_title("Test ROC curve (all labels)")
        written.append(_save(fig, output_dir / PLOT_FILES["roc_curve"]))
    return written


def save_training_curves(log_history: list[dict[str, Any]], output_dir: str | Path) -> Path | None:
    """Plot training loss and validation loss against the step, from ``trainer.state.log_history``."""
    train = [(e["step"], e["loss"]) for e in log_history if "loss" in e and "step" in e]
    val = [(e["step"], e["eval_loss"]) for e in log_history if "eval_loss" in e and "step" in e]
    if not train and not val:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for points, name in ((train, "train loss"), (val, "validation loss")):
        if points:
            ax.plot(*zip(*points, strict=True), marker="o" if len(points) < 30 else None, label=name)
    ax.set_xlabel("step")
    ax.set_ylabel("BCE loss")
    ax.legend()
    ax.set_title("Training curves")
    return _save(fig, Path(output_dir) / PLOT_FILES["training_curves"])


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    _pyplot().close(fig)
    return path
