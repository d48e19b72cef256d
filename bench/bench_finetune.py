"""Fine-tuning throughput and accuracy: hfsent's recipe against a tutorial-style training loop, side by side.

All ways train the same model (zh-mini: BERT L4-H256 with bert-base-chinese's vocabulary, random init:
no pretrained weights can be downloaded here) on the same rows (the seed-repro training split) with the
same max_length (128), 32 examples per optimizer step, learning rate (constant), epochs and seed, no
weight decay and no gradient clipping, and are tested on the same 2,000 seed-repro test rows. Each seed
runs every way, one after the other.

- tutorial: every review padded to max_length, fixed order, a hand-written loop with torch.optim.Adam.
- hfsent: `hfsent.finetune.finetune` (Trainer, fused AdamW, dynamic padding, and hfsent's default
  sampling `group_by_length_stratified`: batches of reviews of similar length within each label, so every
  batch keeps the label mix), in fp32 and, where the CPU has bf16 units, with bf16 autocast (`bf16: true`,
  `use_cpu: true`).

Run: python bench/bench_finetune.py [--seeds 10 11 12]   (reads $HFSENT_SHARED, default ../shared)
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from common import BERT_BASE_CHINESE, ROOT, ZH_MINI_OVERRIDES, machine, seed_repro_data
from torch.utils.data import DataLoader, TensorDataset

from hfsent import HfSentConfig, HfSentModel
from hfsent.finetune import HfSentTrainingArguments, ModelArguments, finetune
from hfsent.finetune.data import load_raw_dataset, prepare_splits
from hfsent.finetune.metrics import binary_metrics
from hfsent.tokenizer import load_tokenizer


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


def hfsent_run(data_args, args, output_dir: Path, bf16: bool = False) -> dict:
    model_args = ModelArguments(
        model_name_or_path=None, config_overrides=ZH_MINI_OVERRIDES, tokenizer_name=str(BERT_BASE_CHINESE)
    )
    training_args = HfSentTrainingArguments(
        output_dir=str(output_dir),
        num_train_epochs=args.epochs,
        per_device_train_batch_size=args.batch_size // args.micro_batches,
        gradient_accumulation_steps=args.micro_batches,
        train_sampling_strategy=args.sampling,
        per_device_eval_batch_size=128,
        learning_rate=args.learning_rate,
        eval_strategy="no",
        save_strategy="no",
        load_best_model_at_end=False,
        lr_scheduler_type="constant",
        weight_decay=0.0,
        max_grad_norm=0.0,
        bf16=bf16,
        use_cpu=True,
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


def summarise(runs: list[dict]) -> dict:
    """Mean and spread over seeds of one way's samples/s and test metrics."""

    def stats(values: list[float]) -> dict:
        return {"mean": float(np.mean(values)), "min": float(np.min(values)), "max": float(np.max(values))}

    out = {
        "samples_per_second": stats([r["samples_per_second"] for r in runs]),
        "accuracy": stats([r["test"]["accuracy"] for r in runs]),
        "roc_auc": stats([r["test"]["roc_auc"] for r in runs]),
    }
    if all("test_tuned" in r for r in runs):
        out["accuracy_tuned"] = stats([r["test_tuned"]["accuracy"] for r in runs])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32, help="examples per optimizer step")
    parser.add_argument("--micro-batches", type=int, default=1, help="hfsent: micro-batches per step")
    parser.add_argument("--sampling", default="group_by_length_stratified", help="hfsent: train_sampling_strategy")
    parser.add_argument("--learning-rate", type=float, default=2e-4)
    parser.add_argument("--seeds", type=int, nargs="+", default=[10, 11, 12])
    parser.add_argument(
        "--bf16", choices=["auto", "yes", "no"], default="auto", help="also run hfsent with bf16 autocast"
    )
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results" / "finetune.json")
    args = parser.parse_args()
    with_bf16 = args.bf16 == "yes" or (args.bf16 == "auto" and torch.cpu._is_avx512_bf16_supported())

    data_args = seed_repro_data(args.max_length)
    splits = prepare_splits(load_raw_dataset(data_args), data_args)
    tokenizer = load_tokenizer(str(BERT_BASE_CHINESE))
    lengths = [
        len(ids)
        for ids in tokenizer(list(splits["train"]["review"]), truncation=True, max_length=args.max_length)["input_ids"]
    ]
    print(f"train rows {len(splits['train'])}, mean tokens {np.mean(lengths):.1f} (padded: {args.max_length})")

    ways = ["tutorial loop", "hfsent recipe, fp32"] + (["hfsent recipe, bf16 autocast"] if with_bf16 else [])
    runs: dict[str, list[dict]] = {way: [] for way in ways}
    for seed in args.seeds:
        args.seed = seed
        runs["tutorial loop"].append(tutorial_run(splits, tokenizer, args))
        with tempfile.TemporaryDirectory() as tmp:
            runs["hfsent recipe, fp32"].append(hfsent_run(data_args, args, Path(tmp)))
        if with_bf16:
            with tempfile.TemporaryDirectory() as tmp:
                runs["hfsent recipe, bf16 autocast"].append(hfsent_run(data_args, args, Path(tmp), bf16=True))
        for way in ways:
            r = runs[way][-1]
            rate, accuracy = r["samples_per_second"], r["test"]["accuracy"]
            print(f"seed {seed} | {way} | {rate:.1f}/s | test accuracy {accuracy:.4f}", flush=True)
    args.seed = None

    summary = {way: summarise(runs[way]) for way in ways}
    base = summary["tutorial loop"]["samples_per_second"]["mean"]
    for way in ways:
        summary[way]["speedup"] = summary[way]["samples_per_second"]["mean"] / base
    report = {
        "machine": machine(),
        "model": "BERT L4-H256 (zh-mini), bert-base-chinese vocabulary, random init",
        "data": "seed-repro: train split (7,200 rows), test split (2,000 rows)",
        "settings": {k: v for k, v in vars(args).items() if k != "seed"} | {"output": str(args.output)},
        "summary": summary,
        "runs": runs,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{len(args.seeds)} seeds ({', '.join(map(str, args.seeds))}); {machine()}")
    print("| way | samples/s (mean) | speed-up | test accuracy @0.5 mean (min-max) | @tuned | ROC-AUC mean |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for way in ways:
        s = summary[way]
        tuned = f"{s['accuracy_tuned']['mean']:.4f}" if "accuracy_tuned" in s else "-"
        print(
            f"| {way} | {s['samples_per_second']['mean']:.1f} | {s['speedup']:.2f}x | "
            f"{s['accuracy']['mean']:.4f} ({s['accuracy']['min']:.4f}-{s['accuracy']['max']:.4f}) | {tuned} | "
            f"{s['roc_auc']['mean']:.4f} |"
        )


if __name__ == "__main__":
    main()
