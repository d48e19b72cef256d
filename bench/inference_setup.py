"""What bench_predict.py and bench_serve.py share: the 2,000 benchmark reviews and the zh-mini model.

No pretrained weights can be had here, so zh-mini (BERT L4-H256 with bert-base-chinese's tokenizer and
21,128-token vocabulary, random init) is trained briefly on other reviews: its probabilities then spread
like a real classifier's instead of sitting at one value, so label agreement means something. Speed
does not depend on the weights. The models are cached under the work folder.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
from pathlib import Path
from typing import Any

import torch
from bench_finetune import zh_mini
from common import BERT_BASE_CHINESE, REVIEWS_CSV, ROOT, machine

from hfsent.inference.export import export_onnx
from hfsent.tokenizer import load_tokenizer

WORKDIR = ROOT / "outputs" / "bench"
N_REVIEWS = 2_000


def reviews(n: int = N_REVIEWS, seed: int = 0) -> tuple[list[str], list[tuple[str, int]]]:
    """``n`` non-empty reviews drawn at random from all categories, and the other rows (text, label)."""
    with REVIEWS_CSV.open(encoding="utf-8-sig", newline="") as f:
        rows = [(r["review"], int(r["label"])) for r in csv.DictReader(f) if r["review"].strip()]
    random.Random(seed).shuffle(rows)
    return [text for text, _ in rows[:n]], rows[n:]


def model_description(steps: int) -> str:
    """How the benchmark model was made, for the reports."""
    return f"zh-mini (BERT L4-H256, bert-base-chinese tokenizer and vocabulary), random init + {steps} training steps"


def prepare_model(train_rows: list[tuple[str, int]], steps: int = 100, seed: int = 0, workdir: Path = WORKDIR) -> Path:
    """zh-mini trained for ``steps`` batches of 32 reviews (max 64 tokens), saved with its tokenizer."""
    out = workdir / f"zh-mini-seed{seed}-steps{steps}"
    if (out / "model.safetensors").is_file():
        return out
    tokenizer = load_tokenizer(str(BERT_BASE_CHINESE))
    model = zh_mini(len(tokenizer), seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4)
    model.train()
    for step in range(steps):
        texts, labels = zip(*train_rows[step * 32 : (step + 1) * 32], strict=True)
        batch = tokenizer(list(texts), truncation=True, max_length=64, padding=True, return_tensors="pt")
        loss = model(**batch, labels=torch.tensor(labels)).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if step % 25 == 0 or step == steps - 1:
            print(f"  training zh-mini: step {step + 1}/{steps}, loss {loss.item():.3f}", flush=True)
    model.eval()
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def prepare_onnx(model_dir: Path) -> Path:
    """``hfsent export --onnx --quantize int8`` of ``model_dir`` (model.onnx and model_int8.onnx)."""
    out = model_dir.with_name(model_dir.name + "-onnx")
    if not (out / "model_int8.onnx").is_file():
        export_onnx(str(model_dir), out, quantize="int8")
    return out


def write_report(args: argparse.Namespace, **fields: Any) -> dict[str, Any]:
    """Write the machine, model, settings and ``fields`` to ``args.output`` (JSON); return the report."""
    report = {
        "machine": machine(),
        "model": model_description(args.train_steps),
        "settings": {k: str(v) for k, v in vars(args).items()},
        **fields,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    return report
