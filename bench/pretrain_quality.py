"""Does pretraining zh-mini help? Pretrain, fine-tune on seed-repro, compare with random initialisation.

Steps (each a command printed before it runs, so anyone can rerun it by hand):

1. corpus: the review texts of the seed-repro TRAINING split (computed by the fine-tuning
   recipe's own data code, so the split is exactly the one it trains on; any text that also
   appears among the validation or test rows is dropped) are written to
   ``<work>/seed-repro-train-reviews.csv``; the news sentences in
   ``$HFSENT_SHARED/corpus/msra_news_sentences.txt`` are used as they are;
2. pretrain: ``hfsent pretrain recipes/pretrain/zh-mini.yaml`` on those two sources, for the
   recipe's fixed budget (``max_steps``);
3. fine-tune the pretrained encoder with ``recipes/finetune/seed-repro.yaml``;
4. fine-tune the same architecture from random initialisation with the same settings;
5. print test accuracy side by side with the tutorial's 0.8845 (bert-base-chinese) and the TF-IDF
   baseline's 0.918 (both from ../shared/README.md), and write ``<work>/pretrain_quality.json``.

About an hour of pretraining on 2 CPU cores, plus two fine-tuning runs.

    python bench/pretrain_quality.py                 # everything
    python bench/pretrain_quality.py --dry-run       # only print the commands
    python bench/pretrain_quality.py --skip-pretrain # reuse <work>/zh-mini
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

from common import BERT_BASE_CHINESE, REVIEWS_CSV, ROOT, SHARED, ZH_MINI_RECIPE, machine

from hfsent.finetune import DataArguments, HfSentTrainingArguments, ModelArguments
from hfsent.finetune.data import load_raw_dataset, prepare_splits
from hfsent.recipe import RecipeParser

NEWS = SHARED / "corpus" / "msra_news_sentences.txt"
FINETUNE_RECIPE = ROOT / "recipes" / "finetune" / "seed-repro.yaml"
REFERENCE = {"tutorial bert-base-chinese (30 epochs)": 0.8845, "TF-IDF + logistic regression": 0.918}


def seed_repro_training_texts(out_csv: Path) -> dict[str, int]:
    """Write the review texts of seed-repro's training split to ``out_csv`` (column ``review``).

    The split comes from the fine-tuning recipe's own data code and YAML, so it is the one
    ``hfsent train recipes/finetune/seed-repro.yaml`` trains on. Texts also found in its
    validation or test split (the data has duplicated reviews) are left out.
    """
    parser = RecipeParser((ModelArguments, DataArguments, HfSentTrainingArguments))
    _, data_args, _ = parser.parse_recipe([str(FINETUNE_RECIPE), "--dataset_name", str(REVIEWS_CSV)])
    splits = prepare_splits(load_raw_dataset(data_args), data_args)
    column = data_args.text_column
    held_out = {t.strip() for name in ("validation", "test") if name in splits for t in splits[name][column]}
    train = [t for t in splits["train"][column] if t.strip() not in held_out]
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    with out_csv.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["review"])
        writer.writerows([t] for t in train)
    return {
        "train_rows": len(splits["train"]),
        "train_texts_written": len(train),
        "dropped_as_also_held_out": len(splits["train"]) - len(train),
        "test_rows": len(splits["test"]) if "test" in splits else 0,
    }


def run(command: list[str], dry_run: bool) -> float:
    """Print and run a command from the repository root; return its wall time in seconds."""
    print("$ " + shlex.join(command), flush=True)
    if dry_run:
        return 0.0
    start = time.time()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    subprocess.run(command, cwd=ROOT, env=env, check=True)
    return time.time() - start


def test_accuracy(output_dir: Path) -> dict[str, float]:
    """The fine-tuned model's test accuracy at 0.5 and at its tuned threshold (``all_results.json``)."""
    results = json.loads((output_dir / "all_results.json").read_text(encoding="utf-8"))
    return {key: results[key] for key in ("test_accuracy", "test_tuned_accuracy") if key in results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=ROOT / "outputs" / "pretrain-quality")
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--skip-pretrain", action="store_true")
    parser.add_argument("--finetune-lr", default="1e-4", help="the same for both arms (a small model wants more)")
    parser.add_argument("--finetune-epochs", default="10")
    parser.add_argument("pretrain_overrides", nargs="*", help="extra --key value for hfsent pretrain")
    args = parser.parse_args()
    for path in (REVIEWS_CSV, NEWS, BERT_BASE_CHINESE):
        if not path.exists():
            sys.exit(f"missing {path} (set HFSENT_SHARED)")
    hfsent = [sys.executable, "-m", "hfsent"]
    work = args.work
    reviews = work / "seed-repro-train-reviews.csv"
    pretrained = work / "zh-mini"
    report: dict = {"shared": str(SHARED), "machine": machine()}

    if not args.dry_run:
        report["corpus"] = seed_repro_training_texts(reviews)
        print(f"seed-repro training texts: {report['corpus']}")
    pretrain = [
        *hfsent,
        "pretrain",
        str(ZH_MINI_RECIPE),
        "--config_name",
        str(BERT_BASE_CHINESE),
        "--tokenizer_name",
        str(BERT_BASE_CHINESE),
        "--dataset_name",
        str(NEWS),
        str(reviews),
        "--text_column",
        "text",
        "review",
        "--output_dir",
        str(pretrained),
        *args.pretrain_overrides,
    ]
    if not args.skip_pretrain:
        report["pretrain_seconds"] = run(pretrain, args.dry_run)
    report["pretrain_command"] = shlex.join(pretrain)

    finetune = [
        *hfsent,
        "train",
        str(FINETUNE_RECIPE),
        "--dataset_name",
        str(REVIEWS_CSV),
        "--learning_rate",
        args.finetune_lr,
        "--num_train_epochs",
        args.finetune_epochs,
    ]
    arms = {
        "zh-mini, MLM-pretrained": ["--model_name_or_path", str(pretrained)],
        "zh-mini, random init": [
            "--model_name_or_path",
            "null",
            "--config_name",
            str(pretrained),
            "--tokenizer_name",
            str(BERT_BASE_CHINESE),
        ],
    }
    report["arms"] = {}
    for name, extra in arms.items():
        out = work / ("finetune-" + name.split(", ")[1].replace(" ", "-").replace("MLM-", ""))
        command = [*finetune, *extra, "--output_dir", str(out)]
        seconds = run(command, args.dry_run)
        accuracy = {} if args.dry_run else test_accuracy(out)
        report["arms"][name] = {"command": shlex.join(command), "seconds": seconds, **accuracy}

    if args.dry_run:
        return
    if (pretrained / "all_results.json").is_file():
        report["pretrain_results"] = json.loads((pretrained / "all_results.json").read_text(encoding="utf-8"))
    print("\n| model | seed-repro test accuracy (at 0.5) | (at the tuned threshold) |\n| --- | --- | --- |")
    for name, arm in report["arms"].items():
        print(f"| {name} | {arm.get('test_accuracy')} | {arm.get('test_tuned_accuracy')} |")
    for name, accuracy in REFERENCE.items():
        print(f"| {name} (reference) | {accuracy} | |")
    (work / "pretrain_quality.json").write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")


if __name__ == "__main__":
    main()
