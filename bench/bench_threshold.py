"""Does the default decision threshold do at least as well as 0.5 on test data? (issue 14, acceptance 3)

Give it finished fine-tuning output folders (e.g. the same recipe trained with ``--seed 1/2/3``). For each, it
rebuilds the run's validation and test splits from its ``recipe.yaml``, scores them with the saved model (at
the run's ``max_length``), picks a threshold on validation with each tuning method of
`hfsent.finetune.metrics.tune_threshold` ("none" = 0.5, "best", "bootstrap" = the default) and reports the test
accuracy and F1 at each, per run and as the mean over runs. Writes the results as JSON.

    python bench/bench_threshold.py outputs/qs-seed1 outputs/qs-seed2 outputs/qs-seed3 --output results.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np
import yaml

import hfsent
from hfsent.finetune.arguments import DataArguments, HfSentTrainingArguments
from hfsent.finetune.data import load_raw_dataset, prepare_splits
from hfsent.finetune.metrics import THRESHOLD_METHODS, binary_metrics, tune_threshold


def score_run(run: Path) -> dict:
    """Validation and test P(pos) and labels of one finished run."""
    recipe = yaml.safe_load((run / "recipe.yaml").read_text())
    names = {f.name for f in dataclasses.fields(DataArguments)}
    data_args = DataArguments(**{k: v for k, v in recipe.items() if k in names})
    splits = prepare_splits(load_raw_dataset(data_args), data_args)
    scored = {}
    for split in ("validation", "test"):
        texts = list(splits[split][data_args.text_column])
        predictions = hfsent.predict(texts, str(run), max_length=data_args.max_length)
        scored[split] = (
            np.array([p["positive_probability"] for p in predictions]),
            np.array(splits[split]["labels"], dtype=np.int32),
        )
    return {"scored": scored, "recipe": recipe}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--output", type=Path, default=Path("bench/results/threshold.json"))
    args = parser.parse_args()
    defaults = HfSentTrainingArguments(output_dir="unused")
    rows = []
    for run in args.runs:
        scored = score_run(run)
        (pv, yv), (pt, yt) = scored["scored"]["validation"], scored["scored"]["test"]
        objective = scored["recipe"].get("threshold_objective", defaults.threshold_objective)
        seed = scored["recipe"].get("seed", defaults.seed)
        row = {"run": str(run), "objective": objective, "seed": seed}
        for method in THRESHOLD_METHODS:
            threshold, _ = tune_threshold(pv, yv, objective, method=method, seed=seed)
            test = binary_metrics(pt, yt, threshold)
            row[method] = {"threshold": threshold, "test_accuracy": test["accuracy"], "test_f1": test["f1"]}
        rows.append(row)
        print(json.dumps(row), flush=True)
    mean = {
        method: {k: float(np.mean([r[method][k] for r in rows])) for k in ("test_accuracy", "test_f1")}
        for method in THRESHOLD_METHODS
    }
    print("mean over runs:", json.dumps(mean, indent=1))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"runs": rows, "mean": mean}, indent=2) + "\n")


if __name__ == "__main__":
    main()
