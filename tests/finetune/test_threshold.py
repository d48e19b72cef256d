"""Decision-threshold tuning that does not fit the validation split's noise, and the in-run TF-IDF baseline."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hfsent.cli import main as hfsent_main
from hfsent.finetune.metrics import _objective, best_threshold, tune_threshold

from ..fixtures.helpers import tiny_recipe


def _calibrated(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels and probabilities of a calibrated but noisy model: 0.5 is the right threshold."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    logits = (2 * labels - 1) * 1.0 + rng.normal(0.0, 1.5, n)
    return 1 / (1 + np.exp(-logits)), labels


def _exhaustive_best(probabilities: np.ndarray, labels: np.ndarray, objective: str) -> float:
    """Every midpoint between distinct probabilities, plus 0.5; ties to the one closest to 0.5."""
    distinct = np.unique(probabilities)
    candidates = np.concatenate([[0.5], (distinct[:-1] + distinct[1:]) / 2])
    score = _objective(objective)
    return max(
        (score((probabilities >= t).astype(int), labels), -abs(t - 0.5), float(t)) for t in candidates if 0 < t < 1
    )[2]


@pytest.mark.parametrize("objective", ["f1", "accuracy", "balanced_accuracy"])
def test_best_cut_equals_an_exhaustive_search(objective):
    rng = np.random.default_rng(0)
    for _ in range(20):
        labels = rng.integers(0, 2, 150)
        probabilities = np.round(rng.random(150), 2)  # ties included
        assert best_threshold(probabilities, labels, objective) == pytest.approx(
            _exhaustive_best(probabilities, labels, objective)
        )


@pytest.mark.parametrize("objective", ["f1", "accuracy"])
def test_bootstrap_stays_at_one_half_for_a_calibrated_model_where_the_best_cut_moves(objective):
    moved = 0
    for seed in range(5):
        probabilities, labels = _calibrated(1500, seed)
        assert tune_threshold(probabilities, labels, objective)[0] == pytest.approx(0.5, abs=0.01)
        moved += abs(tune_threshold(probabilities, labels, objective, method="best")[0] - 0.5) > 0.01
    assert moved >= 3  # the plain best cut follows each split's noise (and, for F1, trades accuracy away)


def test_bootstrap_moves_the_threshold_for_a_shifted_model_and_beats_one_half_on_new_data():
    probabilities, labels = _calibrated(1500, 0)
    shift = lambda p: 1 / (1 + np.exp(-(np.log(p / (1 - p)) - 2.0)))  # noqa: E731 (under-confident in pos)
    threshold, _ = tune_threshold(shift(probabilities), labels, "accuracy")
    assert threshold < 0.3
    fresh, fresh_labels = _calibrated(5000, 99)
    accuracy = _objective("accuracy")
    assert accuracy((shift(fresh) >= threshold).astype(int), fresh_labels) > accuracy(
        (shift(fresh) >= 0.5).astype(int), fresh_labels
    )


def test_unknown_method_is_refused():
    with pytest.raises(ValueError, match="'median'"):
        tune_threshold([0.2, 0.8], [0, 1], method="median")


def test_recipe_reports_the_tfidf_baseline_beside_the_model(tmp_path, tokenizer_dir, review_csv, capsys):
    recipe = tiny_recipe(
        tmp_path, tokenizer_dir, review_csv, num_train_epochs=1, compare_baseline="tfidf", threshold_tuning="none"
    )
    assert hfsent_main(["train", str(recipe)]) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.startswith("test metric"))
    assert header.split() == ["test", "metric", "@0.5", "TF-IDF+LR"]  # no tuned column repeating @0.5
    results = json.loads((tmp_path / "out" / "all_results.json").read_text())
    # the synthetic reviews are separable by their characters: the linear baseline gets them all
    assert results["baseline_tfidf_test_accuracy"] == 1.0
    assert results["baseline_tfidf_C"] in (1.0, 4.0, 16.0)
    assert results["threshold"] == 0.5 and results["threshold_tuning"] == "none"
    assert json.loads((tmp_path / "out" / "config.json").read_text())["threshold"] == 0.5
