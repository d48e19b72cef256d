"""Binary sentiment metrics: accuracy, F1, precision, recall (positive class) and ROC-AUC.

An `evaluate` module shipped with hfsent so that it loads without the Hub:
``evaluate.load(hfsent.finetune.metrics.BINARY_SENTIMENT_MODULE)``. Computations are scikit-learn's, as in the
Hub's ``accuracy``, ``f1``, ``precision``, ``recall`` and ``roc_auc`` modules.
"""

import datasets
import evaluate
import numpy as np
from sklearn.metrics import accuracy_score, precision_recall_fscore_support, roc_auc_score

_DESCRIPTION = "Accuracy, F1, precision and recall of the positive class, and ROC-AUC of P(pos)."
_KWARGS_DESCRIPTION = """
Args:
    predictions: predicted labels (0 = neg, 1 = pos).
    references: true labels (0 = neg, 1 = pos).
    prediction_scores: P(pos) for each example (for ROC-AUC).
Returns:
    accuracy, f1, precision, recall, roc_auc (roc_auc is NaN when only one class is present).
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class BinarySentiment(evaluate.Metric):
    """Positive-class binary classification metrics."""

    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Value("int32"),
                    "references": datasets.Value("int32"),
                    "prediction_scores": datasets.Value("float32"),
                }
            ),
            reference_urls=["https://scikit-learn.org/stable/modules/model_evaluation.html"],
        )

    def _compute(self, predictions, references, prediction_scores):
        predictions = np.asarray(predictions)
        references = np.asarray(references)
        precision, recall, f1, _ = precision_recall_fscore_support(
            references, predictions, average="binary", pos_label=1, zero_division=0
        )
        both_classes = len(np.unique(references)) == 2
        return {
            "accuracy": float(accuracy_score(references, predictions)),
            "f1": float(f1),
            "precision": float(precision),
            "recall": float(recall),
            "roc_auc": float(roc_auc_score(references, prediction_scores)) if both_classes else float("nan"),
        }
