"""Per-step host overhead: hfsent's training step against the tutorial loop's, with a model too small to matter.

A CPU proxy for what starves a GPU (issue 13): with a BERT of 1 layer and hidden size 16 the arithmetic of
a step is negligible, so a step's time is what the host spends around it: fetching and collating the batch,
the Trainer's bookkeeping (scheduler, gradient clipping, logging, callbacks), the optimizer call. Both ways
train the same model (`HfSentModel`, random init, same seed) with the same tokenizer (a WordPiece of
~2,000 tokens trained on the training texts, as hfsent's ``tokenizer_vocab_size`` does: a tiny embedding
table, so the optimizer's arithmetic is negligible too) on the same rows (the seed-repro training split),
32 examples a step, max_length 32 (most reviews fill it, so both ways run near-equal shapes and the
attention's arithmetic stays negligible), the same number of steps, side by side in one process:

- tutorial loop: every review tokenized and padded to max_length up front, a `DataLoader` over a
  `TensorDataset` (shuffled), forward / `zero_grad` / backward / `torch.optim.AdamW.step` by hand.
- hfsent recipe: `hfsent.finetune.finetune` with the recipe defaults (hfsent's sampling
  `group_by_length_stratified`, its collator, `HfSentTrainer`, logging every 50 steps, gradient clipping,
  the linear schedule, the fused AdamW), evaluation and checkpoints off (they happen at the end, outside
  the timed steps); validation and test cut to 200 rows.

A step's time is the median gap between consecutive step ends (the first steps, which warm up, are
skipped), taken over ``--repeats`` runs of each way in turn; the result is the median over repeats, and the
best (least disturbed) repeat beside it: on a shared machine the best is the steadier figure.

Run: python bench/bench_step_overhead.py   (reads $HFSENT_SHARED, default ../shared; ~1 minute on 2 cores)
Writes bench/results/step-overhead.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
from common import ROOT, machine, seed_repro_data
from torch.utils.data import DataLoader, TensorDataset
from transformers import TrainerCallback

from hfsent import HfSentConfig, HfSentModel
from hfsent.finetune import DataArguments, HfSentTrainingArguments, ModelArguments, finetune
from hfsent.finetune.data import load_raw_dataset, prepare_splits
from hfsent.tokenizer import train_wordpiece_tokenizer

# 1 layer, hidden 16: a step's arithmetic is a few microseconds of the ~ms a step costs
TINY = "num_hidden_layers=1,hidden_size=16,num_attention_heads=2,intermediate_size=32"
VOCAB = 2000  # tokenizer_vocab_size (the alphabet of the training texts sets the floor)
WARMUP_STEPS = 5


def step_ms(ends: list[float]) -> float:
    """Median gap between consecutive step ends after the warm-up, in ms."""
    gaps = [b - a for a, b in zip(ends[WARMUP_STEPS:], ends[WARMUP_STEPS + 1 :], strict=False)]
    return 1000 * statistics.median(gaps)


class StepClock(TrainerCallback):
    """Records the time at the end of every optimizer step."""

    def __init__(self) -> None:
        self.ends: list[float] = []

    def on_step_end(self, args, state, control, **kwargs):
        self.ends.append(time.perf_counter())


def tutorial_run(train: dict[str, torch.Tensor], vocab_size: int, args) -> float:
    """The tutorial's loop over pre-padded tensors; returns ms/step."""
    torch.manual_seed(args.seed)
    config = HfSentConfig(vocab_size=vocab_size)
    config.update_from_string(TINY)
    model = HfSentModel(config)
    loader = DataLoader(
        TensorDataset(train["input_ids"], train["attention_mask"], train["labels"]),
        batch_size=args.batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(args.seed),
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.learning_rate)
    model.train()
    ends: list[float] = []
    for step, (input_ids, attention_mask, y) in enumerate(loader):
        if step == args.steps:
            break
        loss = model(input_ids=input_ids, attention_mask=attention_mask, labels=y).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        ends.append(time.perf_counter())
    return step_ms(ends)


def hfsent_run(data_args: DataArguments, args, output_dir: Path) -> float:
    """`hfsent.finetune.finetune` with the recipe defaults, evaluation and checkpoints off; returns ms/step."""
    clock = StepClock()
    model_args = ModelArguments(model_name_or_path=None, config_overrides=TINY, tokenizer_vocab_size=VOCAB)
    training_args = HfSentTrainingArguments(
        output_dir=str(output_dir),
        max_steps=args.steps,
        per_device_train_batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        eval_strategy="no",
        save_strategy="no",
        load_best_model_at_end=False,
        seed=args.seed,
        disable_tqdm=True,
    )
    finetune(model_args, data_args, training_args, callbacks=[clock])
    return step_ms(clock.ends)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=150, help="optimizer steps per run (<= one epoch: 225)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--max-length", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=5e-5)
    parser.add_argument("--seed", type=int, default=10)
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results" / "step-overhead.json")
    args = parser.parse_args()

    data_args = seed_repro_data(args.max_length, max_eval_samples=200, max_test_samples=200)
    splits = prepare_splits(load_raw_dataset(data_args), data_args)
    tokenizer = train_wordpiece_tokenizer(splits["train"]["review"], vocab_size=VOCAB)
    train = dict(
        tokenizer(
            list(splits["train"]["review"]),
            padding="max_length",
            truncation=True,
            max_length=args.max_length,
            return_tensors="pt",
        )
    )
    train["labels"] = torch.tensor(list(splits["train"]["labels"]), dtype=torch.float)
    if args.steps * args.batch_size > len(train["labels"]) or args.steps <= WARMUP_STEPS + 1:
        parser.error(f"--steps must be in {WARMUP_STEPS + 2}..{len(train['labels']) // args.batch_size}")

    runs: dict[str, list[float]] = {"tutorial loop": [], "hfsent recipe": []}
    for repeat in range(args.repeats):
        runs["tutorial loop"].append(tutorial_run(train, len(tokenizer), args))
        with tempfile.TemporaryDirectory() as tmp:
            runs["hfsent recipe"].append(hfsent_run(data_args, args, Path(tmp)))
        print(f"repeat {repeat}: " + ", ".join(f"{way} {ms[-1]:.2f} ms/step" for way, ms in runs.items()), flush=True)

    summary = {way: {"ms_per_step": statistics.median(ms), "best": min(ms), "runs": ms} for way, ms in runs.items()}
    ratio = summary["hfsent recipe"]["ms_per_step"] / summary["tutorial loop"]["ms_per_step"]
    best_ratio = summary["hfsent recipe"]["best"] / summary["tutorial loop"]["best"]
    report = {
        "machine": machine(),
        "model": f"HfSentModel {TINY}, WordPiece vocabulary of {len(tokenizer)} trained on the train split",
        "data": "seed-repro train split (7,200 rows)",
        "settings": {k: v for k, v in vars(args).items()} | {"output": str(args.output)},
        "summary": summary,
        "hfsent_over_tutorial": ratio,
        "hfsent_over_tutorial_best": best_ratio,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{machine()}; {args.steps} steps x {args.repeats} repeats")
    print("| way | ms/step (median of repeats) | best repeat |")
    print("| --- | ---: | ---: |")
    for way, s in summary.items():
        print(f"| {way} | {s['ms_per_step']:.2f} | {s['best']:.2f} |")
    print(f"hfsent / tutorial: {ratio:.2f}x (best repeats: {best_ratio:.2f}x)")


if __name__ == "__main__":
    main()
