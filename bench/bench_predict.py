"""Inference throughput: `hfsent predict` (torch, ONNX fp32, ONNX int8) against the stock pipeline, side by side.

All four classify the same 2,000 reviews (drawn at random from all of online_shopping_10_cats) with the
same model (zh-mini, see inference_setup.py) in one process, one after the other:

- pipeline: `pipeline("text-classification", model=DIR)` called on the list with its defaults (one text
  at a time), plus `truncation=True`, without which the reviews longer than 512 tokens crash it.
- hfsent predict: `hfsent.inference.files.predict_file`, the code behind `hfsent predict` (read the CSV,
  score length-sorted batches of up to 64 texts, write the CSV), on the torch backend, then ONNX Runtime
  fp32 and int8 (whose backend runs one batch per core at once). Model loading and process start are not
  timed, for either side.

Each is timed --rounds times, interleaved, and the fastest pass counts (the machine is shared).

Run: python bench/bench_predict.py   (reads $HFSENT_SHARED, default ../shared; ~2 minutes on 2 cores)
"""

from __future__ import annotations

import argparse
import csv
import os
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import onnxruntime
import torch
import transformers
from common import ROOT, machine
from inference_setup import N_REVIEWS, WORKDIR, prepare_model, prepare_onnx, reviews, write_report
from transformers import pipeline

from hfsent.inference import load_backend
from hfsent.inference.files import TableReader, predict_file


def time_pipeline(clf, texts: list[str]) -> tuple[float, np.ndarray]:
    start = time.perf_counter()
    out = clf(texts, truncation=True)
    seconds = time.perf_counter() - start
    return seconds, np.array([r["score"] if r["label"] == "pos" else 1 - r["score"] for r in out])


def time_predict(backend, src: Path, out: Path, batch_size: int) -> tuple[float, np.ndarray]:
    reader = TableReader(src)
    start = time.perf_counter()
    predict_file(backend, reader, out, "review", batch_size=batch_size, progress=False)
    seconds = time.perf_counter() - start
    with out.open(encoding="utf-8", newline="") as f:
        return seconds, np.array([float(r["pred_positive_probability"]) for r in csv.DictReader(f)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reviews", type=int, default=N_REVIEWS)
    parser.add_argument("--train-steps", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2, help="timed passes per run, interleaved; the fastest counts")
    parser.add_argument("--threads", type=int, default=None, help="model threads (default: one per core)")
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results" / "predict.json")
    args = parser.parse_args()

    texts, train_rows = reviews(args.reviews)
    model_dir = prepare_model(train_rows, args.train_steps)
    onnx_dir = prepare_onnx(model_dir)
    src = WORKDIR / "bench_reviews.csv"
    with src.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows([["review"], *([t] for t in texts)])

    if args.threads:
        torch.set_num_threads(args.threads)
    clf = pipeline("text-classification", model=str(model_dir))
    clf(texts[:8], truncation=True)  # warm-up
    backends = {
        "hfsent predict, torch": load_backend(str(model_dir), "torch", args.threads),
        "hfsent predict, ONNX fp32": load_backend(str(onnx_dir / "model.onnx"), "onnx", args.threads),
        "hfsent predict, ONNX int8": load_backend(str(onnx_dir / "model_int8.onnx"), "onnx", args.threads),
    }
    for backend in backends.values():
        backend.positive_probabilities(texts[:8])  # warm-up

    load_before = os.getloadavg()[0]
    timings: dict[str, list[float]] = defaultdict(list)
    probabilities: dict[str, np.ndarray] = {}
    for _ in range(args.rounds):  # interleaved, so a busy spell on the shared machine hits every run alike
        seconds, probabilities["pipeline (defaults)"] = time_pipeline(clf, texts)
        timings["pipeline (defaults)"].append(seconds)
        for name, backend in backends.items():
            out = WORKDIR / f"scored-{name.split(', ')[1].replace(' ', '-')}.csv"
            seconds, probabilities[name] = time_predict(backend, src, out, args.batch_size)
            timings[name].append(seconds)
    load_after = os.getloadavg()[0]
    runs = {name: (min(timings[name]), probabilities[name]) for name in timings}

    base_seconds, base_probs = runs["pipeline (defaults)"]
    results = {}
    for name, (seconds, probs) in runs.items():
        results[name] = {
            "seconds": seconds,
            "all_seconds": timings[name],
            "samples_per_second": len(texts) / seconds,
            "speedup_vs_pipeline": base_seconds / seconds,
            "label_agreement_with_pipeline": float(np.mean((probs >= 0.5) == (base_probs >= 0.5))),
            "max_abs_prob_diff_vs_pipeline": float(np.max(np.abs(probs - base_probs))),
        }
    report = write_report(
        args,
        load_average_1min=[load_before, load_after],
        versions={"transformers": transformers.__version__, "onnxruntime": onnxruntime.__version__},
        data=f"{len(texts)} reviews from online_shopping_10_cats (random, seed 0)",
        positive_share=float(np.mean(base_probs >= 0.5)),
        results=results,
    )

    print(f"{len(texts)} reviews, {report['model']}; {machine()}; load average {load_before:.1f} -> {load_after:.1f}")
    print("| run | seconds | samples/s | vs pipeline | labels = pipeline | max abs diff P(pos) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, r in results.items():
        print(
            f"| {name} | {r['seconds']:.2f} | {r['samples_per_second']:.0f} | {r['speedup_vs_pipeline']:.2f}x | "
            f"{100 * r['label_agreement_with_pipeline']:.2f} % | {r['max_abs_prob_diff_vs_pipeline']:.1e} |"
        )


if __name__ == "__main__":
    main()
