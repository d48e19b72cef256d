"""Fine-tuning throughput: hfsent's recipe against a tutorial-style training loop, side by side.

Both train the same model (zh-mini: BERT L4-H256 with bert-base-chinese's vocabulary, random init:
no pretrained weights can be downloaded here) on the same rows (the seed-repro training split) with the
same max_length (128), batch size, learning rate, epochs and seed, and are tested on the same 2,000
seed-repro test rows.

- tutorial: every review padded to max_length, fixed order, a hand-written loop with torch.optim.Adam.
- hfsent: `hfsent.training.finetune` (Trainer, dynamic padding, length-grouped batches, fused AdamW).

Run: python bench/bench_finetune.py [--epochs 2]   (reads $HFSENT_SHARED, default ../shared)
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from common import BERT_BASE_CHINESE, REVIEWS_CSV, ROOT, ZH_MINI_OVERRIDES, machine
from torch.utils.data import DataLoader, TensorDataset

from hfsent import HfSentConfig, HfSentModel
from hfsent.data import DataArguments, load_raw_dataset, prepare_splits
from hfsent.metrics import binary_metrics
from hfsent.tokenizer import load_tokenizer
from hfsent.training import HfSentTrainingArguments, ModelArguments, finetune


def seed_repro_data(max_length: int) -> DataArguments:
    return DataArguments(
        dataset_name=str(REVIEWS_CSV),
        max_rows=10_000,
        test_split_size=0.2,
        validation_split_size=0.1,
        split_seed=10,
        max_length=max_length,
    )


def zh_mini(vocab_size: int, seed: int) -> HfSentModel:
    torch.manual_seed(seed)
    config = HfSentConfig(vocab_size=vocab_size)
    config.update_from_string(ZH_MINI_OVERRIDES)
    return HfSentModel(config)


def tutorial_run(splits, tokenizer, args) -> dict:
    """The reference tutorial's way: pad to max_length, fixed order, manual Adam loop."""

    def padded(split: str) -> dict[str, torch.Tensor]:
        texts = list(splits[split]["review"])
        return tokenizer(texts, padding="max_length", truncation=True, max_length=args.max_length, return_tensors="pt")

    model = zh_mini(len(tokenizer), args.seed)
    train, test = padded("train"), padded("test")
    labels = torch.tensor(list(splits["train"]["labels"]), dtype=torch.float)
    loader = DataLoader(
        TensorDataset(train["input_ids"], train["attention_mask"], labels), batch_size=args.batch_size, shuffle=False
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=args.learning_rate)
    model.train()
    start = time.perf_counter()
    for _ in range(args.epochs):
        for input_ids, attention_mask, y in loader:
            loss = model(input_ids=input_ids, attention_mask=attention_mask, labels=y).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    seconds = time.perf_counter() - start
    model.eval()
    probs = []
    with torch.no_grad():
        for i in range(0, len(test["input_ids"]), 128):
            batch = {k: v[i : i + 128] for k, v in test.items() if k in ("input_ids", "attention_mask")}
            probs += torch.sigmoid(model(**batch).logits[:, 1]).tolist()
    metrics = binary_metrics(probs, list(splits["test"]["labels"]))
    return {"train_seconds": seconds, "samples_per_second": args.epochs * len(labels) / seconds, "test": metrics}


def hfsent_run(data_args, args, output_dir: Path) -> dict:
    model_args = ModelArguments(
        model_name_or_path=None, config_overrides=ZH_MINI_OVERRIDES, tokenizer_name=str(BERT_BASE_CHINESE)
    )
    training_args = HfSentTrainingArguments(
        output_dir=str(output_dir),
        num_train_epochs=args.epochs,
        per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=128,
        learning_rate=args.learning_rate,
        eval_strategy="no",
        save_strategy="no",
        load_best_model_at_end=False,
        lr_scheduler_type="constant",
        weight_decay=0.0,
        seed=args.seed,
        disable_tqdm=True,
        logging_steps=100,
        dataloader_pin_memory=False,
    )
    results = finetune(model_args, data_args, training_args)
    return {
        "train_seconds": results["train_runtime"],
        "samples_per_second": results["train_samples_per_second"],
        "test": {k[len("test_") :]: v for k, v in results.items() if k.startswith("test_") and "tuned" not in k},
        "test_tuned": {k[len("test_tuned_") :]: v for k, v in results.items() if k.startswith("test_tuned_")},
        "threshold": results["threshold"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=5e-4)
    parser.add_argument("--seed", type=int, default=10)
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results" / "finetune.json")
    args = parser.parse_args()

    data_args = seed_repro_data(args.max_length)
    splits = prepare_splits(load_raw_dataset(data_args), data_args)
    tokenizer = load_tokenizer(str(BERT_BASE_CHINESE))
    lengths = [
        len(ids)
        for ids in tokenizer(list(splits["train"]["review"]), truncation=True, max_length=args.max_length)["input_ids"]
    ]
    print(f"train rows {len(splits['train'])}, mean tokens {np.mean(lengths):.1f} (padded: {args.max_length})")

    with tempfile.TemporaryDirectory() as tmp:
        ours = hfsent_run(data_args, args, Path(tmp))
    theirs = tutorial_run(splits, tokenizer, args)
    report = {
        "machine": machine(),
        "model": "BERT L4-H256 (zh-mini), bert-base-chinese vocabulary, random init",
        "data": "seed-repro: train split (7,200 rows), test split (2,000 rows)",
        "settings": vars(args) | {"output": str(args.output)},
        "hfsent": ours,
        "tutorial": theirs,
        "speedup": ours["samples_per_second"] / theirs["samples_per_second"],
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print("| way | samples/s | test accuracy @0.5 | test accuracy @tuned |")
    print(f"| tutorial loop | {theirs['samples_per_second']:.1f} | {theirs['test']['accuracy']:.4f} | - |")
    print(
        f"| hfsent recipe | {ours['samples_per_second']:.1f} | {ours['test']['accuracy']:.4f} | "
        f"{ours['test_tuned']['accuracy']:.4f} (threshold {ours['threshold']:.3f}) |"
    )
    print(f"speedup: {report['speedup']:.2f}x  ({machine()})")


if __name__ == "__main__":
    main()
