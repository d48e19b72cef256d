"""GPU training speed: the tutorial's loop and hfsent's recipes side by side on one GPU (issue 13).

One command runs, on the same rows, model shapes, seeds and epochs (fine-tuning) or steps (pretraining):

Fine-tuning at bert-base-chinese's shape (its config and tokenizer from $HFSENT_SHARED, random init: no weights
can be had here), the seed-repro rows (7,200 train, 2,000 test), max_length 128, ``--epochs`` epochs, for
each of ``--seeds``:
- tutorial loop, fp32 and bf16 autocast: every review padded to 128, 32 a step, AdamW by hand (lr 2e-5);
- hfsent recipe: `hfsent.finetune.finetune` on recipes/finetune/bert-base-chinese.yaml with its GPU defaults
  (128 a step, lr 5e-5, bf16, fused AdamW, length-grouped steps padded to multiples of 16, loader workers),
  only the data, the from-config model, epochs, seed and output changed; no evaluation or checkpoints
  during training.
MLM pretraining at zh-mini's shape (recipes/pretrain/zh-mini.yaml) and BERT-base's
(recipes/pretrain/bert-base-chinese-from-scratch.yaml) on the shared MSRA news sentences, ``--pretrain-steps``
steps at each recipe's batch size and max_length:
- tutorial loop, fp32 and bf16 autocast: one sentence per row padded to max_length, stock `BertForMaskedLM`
  and `DataCollatorForLanguageModeling`, AdamW by hand;
- hfsent recipe: `hfsent.pretrain.run_pretraining` on the recipe (packed blocks, masked-only head, its
  collator, bf16 on the GPU), no evaluation or checkpoints.

Reported per way: samples/s, real (non-pad) tokens/s, model FLOP utilisation (MFU = 6 x parameters x real
tokens/s / the GPU's peak dense bf16 FLOP/s, from `PEAK_BF16_FLOPS` by device name: H100 SXM and H200
989e12, H100 NVL 835e12, H100 PCIe 756e12; null where the card is not listed), the GPU's busy share
(``torch.cuda.utilization()`` sampled every 50 ms while the way trains) and, for fine-tuning, test accuracy at
0.5 (mean over seeds). Written to bench/results/gpu-<device>.json.

On a GPU machine lent by the `device` tool (its image: Python 3.12, torch, transformers 5.17, accelerate,
peft, scikit-learn; no datasets, evaluate or jieba, no hfsent, and nothing can be downloaded there), from the
repository root here (wheels for Python 3.12; jieba has no wheel on PyPI, so one is built from its sdist):

    mkdir -p .whl shared && cp -r "$HFSENT_SHARED"/{data,models,corpus} shared/   # ../shared travels as shared/
    /work/main/.venv/bin/python -m pip download --no-deps --only-binary=:all: --python-version 3.12 -d .whl \
        transformers==5.24.0 tokenizers==0.23.3 huggingface_hub==2.4.0 datasets==5.2.0 evaluate==0.4.6 \
        dill==0.4.1 multiprocess==0.70.19
    /work/main/.venv/bin/python -m pip wheel --no-deps -w .whl jieba==0.42.1
    run(command="pip install -q --no-deps .whl/*.whl && PYTHONPATH=$PWD HFSENT_SHARED=$PWD/shared "
                "python3 bench/bench_gpu.py --output $OUT/gpu.json 2>&1 | tail -40",
        carry=[".whl", "shared"], timeout_s=600)

(``.whl/`` is git-ignored; add ``shared/`` to .git/info/exclude.) Not yet timed on a GPU: from issue 13's
H100 rates the full run (3 seeds x 3 fine-tuning ways x 2 epochs, 3 pretraining ways x 2 shapes) should take
5-10 minutes; if a call's 10-minute limit bites, run ``--only finetune`` and ``--only pretrain`` in two calls.
Copy $OUT's JSON to bench/results/gpu-<device>.json.

    python bench/bench_gpu.py --smoke      # tiny shapes, a few steps: runs on a CPU (about a minute on 2 cores)
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import threading
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path

import torch
from common import BERT_BASE_CHINESE, REVIEWS_CSV, ROOT, SHARED, machine, seed_repro_data
from torch.utils.data import DataLoader, TensorDataset
from transformers import BertForMaskedLM, DataCollatorForLanguageModeling, TrainerCallback

from hfsent import HfSentConfig, HfSentModel
from hfsent.arguments import build_config
from hfsent.finetune import DataArguments, HfSentTrainingArguments, ModelArguments, finetune
from hfsent.finetune.data import load_raw_dataset, prepare_splits
from hfsent.pretrain import PretrainDataArguments, PretrainModelArguments, run_pretraining
from hfsent.recipe import RecipeParser, load_yaml
from hfsent.tokenizer import load_tokenizer
from hfsent.training_args import RunTrainingArguments

# peak dense bf16 matrix FLOP/s (NVIDIA datasheets, without sparsity), first matching name wins
PEAK_BF16_FLOPS = [
    ("H200", 989e12),
    ("H100 NVL", 835e12),
    ("H100 PCIe", 756e12),
    ("H100", 989e12),  # H100 SXM ("NVIDIA H100 80GB HBM3")
]
CORPUS = SHARED / "corpus" / "msra_news_sentences.txt"
FINETUNE_RECIPE = ROOT / "recipes" / "finetune" / "bert-base-chinese.yaml"
PRETRAIN_RECIPES = {
    "zh-mini": ROOT / "recipes" / "pretrain" / "zh-mini.yaml",
    "bert-base": ROOT / "recipes" / "pretrain" / "bert-base-chinese-from-scratch.yaml",
}
SMOKE_SHAPE = "num_hidden_layers=1,hidden_size=32,num_attention_heads=2,intermediate_size=64"
LOOP_BATCH, LOOP_LR = 32, 2e-5  # the tutorial's fine-tuning loop


def device_name() -> str:
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"


def peak_flops(name: str) -> float | None:
    """The peak dense bf16 FLOP/s of the GPU called ``name``, or None when it is not in `PEAK_BF16_FLOPS`."""
    return next((peak for key, peak in PEAK_BF16_FLOPS if key in name), None)


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


class BusySampler:
    """The GPU's busy share (``torch.cuda.utilization()``, %) sampled every 50 ms in a thread; None on a CPU."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if not torch.cuda.is_available():
            return
        try:
            torch.cuda.utilization()
        except Exception:  # no NVML: no busy share
            return
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.samples.append(float(torch.cuda.utilization()))

    def stop(self) -> float | None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        return statistics.mean(self.samples) / 100 if self.samples else None


@contextmanager
def busy():
    """Yields a dict that receives ``gpu_busy`` (share of time a kernel ran) once the block ends."""
    sampler, out = BusySampler(), {}
    sampler.start()
    try:
        yield out
    finally:
        out["gpu_busy"] = sampler.stop()


class TrainingProbe(TrainerCallback):
    """The model's parameter count, and the GPU's busy share between the Trainer's train begin and end."""

    def __init__(self) -> None:
        self.sampler = BusySampler()
        self.share: float | None = None
        self.params = 0

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.params = model.num_parameters()
        self.sampler.start()

    def on_train_end(self, args, state, control, **kwargs):
        self.share = self.sampler.stop()


def rates(samples: int, tokens: int, seconds: float, params: int, peak: float | None) -> dict:
    """samples/s, real tokens/s and MFU (6 x params x tokens/s / peak)."""
    tokens_per_s = tokens / seconds
    return {
        "seconds": seconds,
        "samples_per_s": samples / seconds,
        "tokens_per_s": tokens_per_s,
        "mfu": None if peak is None else 6 * params * tokens_per_s / peak,
    }


# ------------------------------------------------------------------------------------------ fine-tuning


def bert_base_config(vocab_size: int, args) -> HfSentConfig:
    config = HfSentConfig(**build_config(config_name=str(BERT_BASE_CHINESE)).to_dict())
    config.vocab_size = vocab_size
    if args.smoke:
        config.update_from_string(SMOKE_SHAPE)
    return config


def loop_finetune(splits, tokenizer, args, seed: int, bf16: bool, device: torch.device, peak) -> dict:
    """The tutorial's loop: padded to 128, 32 a step, AdamW by hand, fp32 or bf16 autocast."""

    def padded(split: str) -> dict[str, torch.Tensor]:
        texts = list(splits[split]["review"])
        return tokenizer(texts, padding="max_length", truncation=True, max_length=128, return_tensors="pt")

    train, test = padded("train"), padded("test")
    labels = torch.tensor(list(splits["train"]["labels"]), dtype=torch.float)
    torch.manual_seed(seed)
    model = HfSentModel(bert_base_config(len(tokenizer), args)).to(device)
    loader = DataLoader(
        TensorDataset(train["input_ids"], train["attention_mask"], labels),
        batch_size=LOOP_BATCH,
        shuffle=True,
        generator=torch.Generator().manual_seed(seed),
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=LOOP_LR)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else nullcontext()
    model.train()
    sync()
    with busy() as gpu:
        start = time.perf_counter()
        for _ in range(args.epochs):
            for input_ids, attention_mask, y in loader:
                with autocast:
                    loss = model(
                        input_ids=input_ids.to(device), attention_mask=attention_mask.to(device), labels=y.to(device)
                    ).loss
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        sync()
        seconds = time.perf_counter() - start
    model.eval()
    correct = 0
    with torch.no_grad(), autocast:
        for i in range(0, len(test["input_ids"]), 256):
            logits = model(
                input_ids=test["input_ids"][i : i + 256].to(device),
                attention_mask=test["attention_mask"][i : i + 256].to(device),
            ).logits
            predicted = (logits[:, 1].float() > 0).cpu().long()
            correct += int((predicted == torch.tensor(splits["test"]["labels"][i : i + 256])).sum())
    tokens = args.epochs * int(train["attention_mask"].sum())
    result = rates(args.epochs * len(labels), tokens, seconds, model.num_parameters(), peak)
    return result | gpu | {"test_accuracy": correct / len(test["input_ids"])}


def recipe_finetune(args, seed: int, train_tokens: int, peak) -> dict:
    """hfsent's GPU recipe with its defaults; only data, model source, epochs, seed and output changed."""
    cli = [
        str(FINETUNE_RECIPE),
        *("--dataset_name", str(REVIEWS_CSV), "--deduplicate", "false", "--max_rows", "10000"),
        *("--test_split_size", "0.2", "--validation_split_size", "0.1", "--split_seed", "10"),
        *("--model_name_or_path", "null", "--config_name", str(BERT_BASE_CHINESE)),
        *("--tokenizer_name", str(BERT_BASE_CHINESE), "--num_train_epochs", str(args.epochs), "--seed", str(seed)),
        *("--eval_strategy", "no", "--save_strategy", "no", "--load_best_model_at_end", "false"),
        *("--report_to", "none", "--disable_tqdm", "true", "--threshold_tuning", "none"),
    ]
    if args.train_rows:
        cli += ["--max_train_samples", str(args.train_rows), "--max_test_samples", str(args.test_rows)]
    if args.smoke:
        cli += ["--config_overrides", SMOKE_SHAPE, "--per_device_train_batch_size", "16"]
    probe = TrainingProbe()
    with tempfile.TemporaryDirectory() as tmp:
        parser = RecipeParser((ModelArguments, DataArguments, HfSentTrainingArguments))
        model_args, data_args, training_args = parser.parse_recipe([*cli, "--output_dir", tmp])
        results = finetune(model_args, data_args, training_args, callbacks=[probe])
    seconds = results["train_runtime"]
    samples = args.epochs * results["train_samples"]
    settings = {
        "per_device_train_batch_size": training_args.per_device_train_batch_size,
        "learning_rate": training_args.learning_rate,
        "bf16": training_args.bf16,
        "optim": str(training_args.optim.value),
        "dataloader_num_workers": training_args.dataloader_num_workers,
    }
    result = rates(samples, args.epochs * train_tokens, seconds, probe.params, peak)
    return result | {"gpu_busy": probe.share, "test_accuracy": results["test_accuracy"], "settings": settings}


def bench_finetune(args, device: torch.device, peak) -> dict:
    data_args = seed_repro_data(128, max_train_samples=args.train_rows, max_test_samples=args.test_rows)
    splits = prepare_splits(load_raw_dataset(data_args), data_args)
    tokenizer = load_tokenizer(str(BERT_BASE_CHINESE))
    lengths = tokenizer(list(splits["train"]["review"]), truncation=True, max_length=128)["input_ids"]
    train_tokens = sum(len(ids) for ids in lengths)
    ways = {"tutorial loop, fp32": [], "tutorial loop, bf16 autocast": [], "hfsent recipe": []}
    for seed in args.seeds:
        ways["tutorial loop, fp32"].append(loop_finetune(splits, tokenizer, args, seed, False, device, peak))
        ways["tutorial loop, bf16 autocast"].append(loop_finetune(splits, tokenizer, args, seed, True, device, peak))
        ways["hfsent recipe"].append(recipe_finetune(args, seed, train_tokens, peak))
        for way, runs in ways.items():
            r = runs[-1]
            print(
                f"finetune seed {seed} | {way} | {r['samples_per_s']:.0f}/s | acc {r['test_accuracy']:.4f}", flush=True
            )
    summary = {
        way: summarise(runs, ("samples_per_s", "tokens_per_s", "mfu", "gpu_busy", "test_accuracy"))
        for way, runs in ways.items()
    }
    best_loop = max(summary[w]["samples_per_s"] for w in ways if w.startswith("tutorial"))
    summary["hfsent recipe"]["speedup_over_best_loop"] = summary["hfsent recipe"]["samples_per_s"] / best_loop
    return {
        "rows": {"train": len(splits["train"]), "test": len(splits["test"])},
        "real_tokens_per_epoch": train_tokens,
        "epochs": args.epochs,
        "summary": summary,
        "runs": ways,
    }


def summarise(runs: list[dict], keys: tuple[str, ...]) -> dict:
    """The mean over runs of each key (None where a run has none)."""
    out = {}
    for key in keys:
        values = [r[key] for r in runs if r.get(key) is not None]
        out[key] = statistics.mean(values) if values else None
    return out


# ------------------------------------------------------------------------------------------ pretraining


def corpus_lines(args) -> list[str]:
    lines = [line for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]
    return lines[: args.corpus_lines] if args.corpus_lines else lines


def pretrain_settings(shape: str, args) -> tuple[int, int, str | None]:
    """(batch size, max_length, config_overrides) of a pretraining recipe, smoke-sized with ``--smoke``."""
    recipe = load_yaml(PRETRAIN_RECIPES[shape])
    if args.smoke:
        return 8, 32, SMOKE_SHAPE
    return recipe["per_device_train_batch_size"], recipe["max_length"], recipe.get("config_overrides")


def loop_pretrain(shape: str, lines: list[str], tokenizer, args, bf16: bool, device: torch.device, peak) -> dict:
    """The tutorial's MLM loop: a sentence a row padded to max_length, the stock model and collator."""
    batch_size, max_length, overrides = pretrain_settings(shape, args)
    config = build_config(config_name=str(BERT_BASE_CHINESE), config_overrides=overrides)
    config.vocab_size = len(tokenizer)
    torch.manual_seed(args.seeds[0])
    model = BertForMaskedLM(config).to(device)
    encoded = tokenizer(lines, padding="max_length", truncation=True, max_length=max_length)
    rows = [
        {"input_ids": i, "attention_mask": m}
        for i, m in zip(encoded["input_ids"], encoded["attention_mask"], strict=True)
    ]
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15, seed=args.seeds[0])
    loader = DataLoader(rows, batch_size=batch_size, shuffle=True, collate_fn=collator, drop_last=True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else nullcontext()
    model.train()
    steps = samples = tokens = 0
    sync()
    with busy() as gpu:
        start = time.perf_counter()
        while steps < args.pretrain_steps:
            for batch in loader:
                batch = {k: v.to(device) for k, v in batch.items()}
                with autocast:
                    loss = model(**batch).loss
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                steps += 1
                samples += len(batch["input_ids"])
                tokens += int(batch["attention_mask"].sum())  # a sync per step: the loop's, as written
                if steps == args.pretrain_steps:
                    break
        sync()
        seconds = time.perf_counter() - start
    return rates(samples, tokens, seconds, model.num_parameters(), peak) | gpu | {"batch_size": batch_size}


def recipe_pretrain(shape: str, args, peak) -> dict:
    """hfsent's pretraining recipe on the MSRA sentences, ``--pretrain-steps`` steps, no evaluation."""
    batch_size, max_length, overrides = pretrain_settings(shape, args)
    cli = [
        str(PRETRAIN_RECIPES[shape]),
        *("--config_name", str(BERT_BASE_CHINESE), "--tokenizer_name", str(BERT_BASE_CHINESE)),
        *("--dataset_name", str(CORPUS), "--dataset_config_name", "", "--dataset_split", "train"),
        *("--text_column", "text", "--validation_split_percentage", "0", "--eval_strategy", "no"),
        *("--save_strategy", "no", "--evaluate_before_training", "false", "--max_steps", str(args.pretrain_steps)),
        *("--report_to", "none", "--disable_tqdm", "true", "--preprocessing_num_workers", "1"),
    ]
    if args.smoke:
        cli += ["--config_overrides", overrides, "--per_device_train_batch_size", str(batch_size)]
        cli += ["--max_length", str(max_length), "--max_train_samples", str(args.corpus_lines)]
    probe = TrainingProbe()
    with tempfile.TemporaryDirectory() as tmp:
        parser = RecipeParser((PretrainModelArguments, PretrainDataArguments, RunTrainingArguments))
        model_args, data_args, training_args = parser.parse_recipe([*cli, "--output_dir", tmp])
        metrics = run_pretraining(model_args, data_args, training_args, callbacks=[probe])
    seconds = metrics["train_runtime"]
    samples = args.pretrain_steps * batch_size
    tokens_per_sample = metrics["train_tokens"] / metrics["train_samples"]
    result = rates(samples, round(samples * tokens_per_sample), seconds, probe.params, peak)
    return result | {"gpu_busy": probe.share, "batch_size": batch_size, "bf16": training_args.bf16}


def bench_pretrain(args, device: torch.device, peak) -> dict:
    tokenizer = load_tokenizer(str(BERT_BASE_CHINESE))
    lines = corpus_lines(args)
    out = {}
    for shape in PRETRAIN_RECIPES:
        ways = {
            "tutorial loop, fp32": loop_pretrain(shape, lines, tokenizer, args, False, device, peak),
            "tutorial loop, bf16 autocast": loop_pretrain(shape, lines, tokenizer, args, True, device, peak),
            "hfsent recipe": recipe_pretrain(shape, args, peak),
        }
        for way, r in ways.items():
            busy_share = "-" if r["gpu_busy"] is None else f"{r['gpu_busy']:.0%}"
            print(f"pretrain {shape} | {way} | {r['samples_per_s']:.0f} seq/s | busy {busy_share}", flush=True)
        out[shape] = ways
    return out


# ------------------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny shapes and data, a few steps (runs on a CPU)")
    parser.add_argument("--only", choices=["finetune", "pretrain"], help="run one half")
    parser.add_argument("--seeds", type=int, nargs="+", default=[10, 11, 12])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--pretrain-steps", type=int, default=300)
    parser.add_argument("--output", type=Path, help="default: bench/results/gpu-<device>.json")
    args = parser.parse_args(argv)
    args.train_rows = args.test_rows = args.corpus_lines = None
    if args.smoke:
        args.seeds, args.epochs, args.pretrain_steps = args.seeds[:1], 1, 3
        args.train_rows, args.test_rows, args.corpus_lines = 64, 32, 400
    name = device_name()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    peak = peak_flops(name)
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") + ("-smoke" if args.smoke else "")
    output = args.output or ROOT / "bench" / "results" / f"gpu-{slug}.json"
    report = {
        "device": name,
        "peak_bf16_flops": peak,
        "peak_table": dict(PEAK_BF16_FLOPS),
        "machine": machine(),
        "versions": versions(),
        "command": "python bench/bench_gpu.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "smoke": args.smoke,
    }
    if args.only in (None, "finetune"):
        report["finetune"] = bench_finetune(args, device, peak)
    if args.only in (None, "pretrain"):
        report["pretrain"] = bench_pretrain(args, device, peak)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2) + "\n")
    print_tables(report)
    print(f"written to {output}")
    return report


def versions() -> dict:
    import accelerate
    import datasets
    import transformers

    cuda = torch.version.cuda
    return {
        "torch": torch.__version__,
        "cuda": cuda,
        "transformers": transformers.__version__,
        "accelerate": accelerate.__version__,
        "datasets": datasets.__version__,
    }


def print_tables(report: dict) -> None:
    def pct(value):
        return "-" if value is None else f"{value:.1%}"

    print(f"{report['device']} (peak bf16 {report['peak_bf16_flops']}); {report['machine']}")
    if "finetune" in report:
        print("| fine-tuning | samples/s | real tokens/s | MFU | GPU busy | test accuracy |")
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        for way, s in report["finetune"]["summary"].items():
            print(
                f"| {way} | {s['samples_per_s']:.0f} | {s['tokens_per_s']:.0f} | {pct(s['mfu'])} | "
                f"{pct(s['gpu_busy'])} | {s['test_accuracy']:.4f} |"
            )
        print(f"hfsent / best loop: {report['finetune']['summary']['hfsent recipe']['speedup_over_best_loop']:.2f}x")
    for shape, ways in report.get("pretrain", {}).items():
        print(f"| pretraining {shape} | samples/s | real tokens/s | MFU | GPU busy |")
        print("| --- | ---: | ---: | ---: | ---: |")
        for way, r in ways.items():
            rate = f"{r['samples_per_s']:.0f} | {r['tokens_per_s']:.0f}"
            print(f"| {way} | {rate} | {pct(r['mfu'])} | {pct(r['gpu_busy'])} |")


if __name__ == "__main__":
    main()
