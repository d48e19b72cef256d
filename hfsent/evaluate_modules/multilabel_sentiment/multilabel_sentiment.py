"""Multi-label metrics: per label (accuracy, F1, precision, recall, ROC-AUC) and micro/macro averages.

An `evaluate` module shipped with hfsent so that it loads without the Hub:
``evaluate.load(hfsent.finetune.metrics.MULTILABEL_SENTIMENT_MODULE)``. Computations are scikit-learn's, as in the
Hub's ``f1`` and ``roc_auc`` modules with their ``multilabel`` configurations.
"""

import datasets
import evaluate
import numpy as np
from sklearn.metrics import precision_recall_fscore_support, roc_auc_score

_DESCRIPTION = "Per-label and micro/macro-averaged F1, precision, recall, accuracy and ROC-AUC of K 0/1 labels."
_KWARGS_DESCRIPTION = """
Args:
    predictions: predicted 0/1 labels, one list of K per example.
    references: true 0/1 labels, one list of K per example.
    prediction_scores: each label's probability, one list of K per example (for ROC-AUC).
    label_names: the K label names (default "0", "1", ...).
Returns:
    accuracy (label-wise, averaged over labels), exact_match (every label right), f1/precision/recall (micro),
    f1_micro, f1_macro, roc_auc (macro over the labels with both classes present), roc_auc_micro, roc_auc_macro,
    and per label "<metric>/<label name>" for accuracy, f1, precision, recall, roc_auc (NaN when undefined).
"""


def _auc(references: np.ndarray, scores: np.ndarray) -> float:
    return float(roc_auc_score(references, scores)) if len(np.unique(references)) == 2 else float("nan")


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class MultilabelSentiment(evaluate.Metric):
    """Multi-label classification metrics, per label and averaged."""

    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Value("int32")),
                    "references": datasets.Sequence(datasets.Value("int32")),
                    "prediction_scores": datasets.Sequence(datasets.Value("float32")),
                }
            ),
            reference_urls=["https://scikit-learn.org/stable/modules/model_evaluation.html"],
        )

    def _compute(self, predictions, references, prediction_scores, label_names=None):
        predictions = np.asarray(predictions)
        references = np.asarray(references)
        scores = np.asarray(prediction_scores, dtype=np.float64)
        names = list(label_names) if label_names is not None else [str(i) for i in range(references.shape[1])]
        results = {"accuracy": float(np.mean(predictions == references))}
        results["exact_match"] = float(np.mean(np.all(predictions == references, axis=1)))
        for average in ("micro", "macro"):
            precision, recall, f1, _ = precision_recall_fscore_support(
                references, predictions, average=average, zero_division=0
            )
            results[f"f1_{average}"] = float(f1)
            if average == "micro":
                results.update(f1=float(f1), precision=float(precision), recall=float(recall))
        per_label_auc = [_auc(references[:, k], scores[:, k]) for k in range(len(names))]
        defined = [a for a in per_label_auc if not np.isnan(a)]
        results["roc_auc_macro"] = float(np.mean(defined)) if defined else float("nan")
        results["roc_auc"] = results["roc_auc_macro"]
        results["roc_auc_micro"] = _auc(references.ravel(), scores.ravel())
        precision, recall, f1, _ = precision_recall_fscore_support(
            references, predictions, average=None, zero_division=0
        )
        for k, name in enumerate(names):
            results[f"accuracy/{name}"] = float(np.mean(predictions[:, k] == references[:, k]))
            results[f"f1/{name}"] = float(f1[k])
            results[f"precision/{name}"] = float(precision[k])
            results[f"recall/{name}"] = float(recall[k])
            results[f"roc_auc/{name}"] = per_label_auc[k]
        return results
