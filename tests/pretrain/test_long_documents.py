"""Pretraining on documents of any length: one huge line is cut into blocks in bounded memory (issue 12)."""

from __future__ import annotations

import json
import math
import sys

from ..fixtures.helpers import NEGATIVE_REVIEWS, POSITIVE_REVIEWS, run_cli, tiny_pretrain_recipe

CPU_ONLY = {"CUDA_VISIBLE_DEVICES": ""}


def test_pretraining_on_one_huge_line_packs_it_in_bounded_memory(tmp_path, tokenizer_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    chars = [c for c in dict.fromkeys("".join(POSITIVE_REVIEWS + NEGATIVE_REVIEWS)) if c not in "，。"]
    assert all(len(tokenizer.tokenize(c)) == 1 for c in chars)
    huge = "".join(chars[(i * 7 + i // 13) % len(chars)] for i in range(2_500_000))  # one line of 7.5 MB
    short = [POSITIVE_REVIEWS[0], NEGATIVE_REVIEWS[0]]
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(f"{short[0]}\n{huge}\n{short[1]}\n", encoding="utf-8")
    tiny_pretrain_recipe(
        tmp_path / "r.yaml",
        tokenizer_dir,
        corpus,
        tmp_path / "out",
        cache_dir=str(tmp_path / "cache"),
        per_device_train_batch_size=4,
        save_strategy="no",
    )
    code = (
        "import resource, sys\n"
        "from hfsent.cli import main\n"
        "code = main(['pretrain', sys.argv[1]])\n"
        "print('MAXRSS_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
        "sys.exit(code)\n"
    )
    proc = run_cli(
        "-c", code, str(tmp_path / "r.yaml"), launcher=[sys.executable], env={**CPU_ONLY, "OMP_NUM_THREADS": "1"}
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    peak_mb = int(proc.stdout.split("MAXRSS_KB")[-1].split()[0]) / 1024
    assert peak_mb < 1800, f"peak RSS {peak_mb:.0f} MB"

    # every token kept, each document closed by one [SEP], every block led by [CLS]
    results = json.loads((tmp_path / "out" / "all_results.json").read_text())
    stream = sum(len(tokenizer.tokenize(t)) + 1 for t in short) + len(huge) + 1
    assert results["train_tokens"] - results["train_samples"] == stream
    assert results["train_samples"] >= math.ceil(stream / 31)
