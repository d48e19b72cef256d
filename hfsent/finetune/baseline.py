"""A linear baseline computed on the same splits as the fine-tuned model, so the two are compared fairly.

TF-IDF features of character 1-3-grams and a logistic regression (scikit-learn), its ``C`` chosen on the
validation split (never on test). ``compare_baseline: tfidf`` in a fine-tuning recipe computes it in the
same run and reports ``baseline_tfidf_*`` test metrics beside the model's.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from .data import LABELS_COLUMN

logger = logging.getLogger("hfsent")

BASELINES = ("none", "tfidf")
BASELINE_TITLES = {"tfidf": "TF-IDF+LR"}
C_GRID = (1.0, 4.0, 16.0)


def tfidf_baseline(
    train_texts: Sequence[str],
    train_labels: Sequence[int],
    test_texts: Sequence[str],
    validation_texts: Sequence[str] | None = None,
    validation_labels: Sequence[int] | None = None,
) -> tuple[np.ndarray, dict[str, float]]:
    """Fit TF-IDF (char 1-3-grams, sublinear tf) + logistic regression; return test P(pos) and the chosen setting.

    ``C`` is picked from `C_GRID` by validation accuracy when validation data is given, else 4.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vectorizer = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True)
    features = vectorizer.fit_transform(train_texts)
    labels = np.asarray(train_labels)
    best_c, best_accuracy, model = 4.0, None, None
    if validation_texts is not None and validation_labels is not None and len(validation_texts):
        validation = vectorizer.transform(validation_texts)
        for c in C_GRID:
            candidate = LogisticRegression(C=c, max_iter=2000).fit(features, labels)
            accuracy = float(np.mean(candidate.predict(validation) == np.asarray(validation_labels)))
            if best_accuracy is None or accuracy > best_accuracy:
                best_c, best_accuracy, model = c, accuracy, candidate
    if model is None:
        model = LogisticRegression(C=best_c, max_iter=2000).fit(features, labels)
    probabilities = model.predict_proba(vectorizer.transform(test_texts))[:, 1]
    logger.info("TF-IDF + logistic regression baseline: C=%g (validation accuracy %s)", best_c, best_accuracy)
    return probabilities, {"C": best_c}


def baseline_results(splits, text_column: str, kind: str) -> dict[str, float]:
    """``baseline_<kind>_test_*`` metrics of the baseline ``kind`` fitted on ``splits`` (empty for 'none')."""
    from .metrics import binary_metrics, prefixed

    if kind not in BASELINES:
        raise ValueError(f"compare_baseline must be one of {BASELINES}, got {kind!r}")
    if kind == "none" or "test" not in splits:
        return {}
    validation = splits.get("validation")
    probabilities, setting = tfidf_baseline(
        splits["train"][text_column],
        splits["train"][LABELS_COLUMN],
        splits["test"][text_column],
        validation[text_column] if validation is not None else None,
        validation[LABELS_COLUMN] if validation is not None else None,
    )
    results = prefixed(binary_metrics(probabilities, splits["test"][LABELS_COLUMN]), f"baseline_{kind}_test")
    results[f"baseline_{kind}_C"] = setting["C"]
    return results
