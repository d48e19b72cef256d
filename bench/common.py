"""Shared settings for the benchmarks: where ../shared is, and the zh-mini model shape."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
# The one setting through which benchmarks reach ../shared.
SHARED = Path(os.environ.get("HFSENT_SHARED", ROOT.parent / "shared"))
REVIEWS_CSV = SHARED / "data" / "online_shopping_10_cats.csv"
BERT_BASE_CHINESE = SHARED / "models" / "bert-base-chinese"
# zh-mini: 4 layers, hidden 256, bert-base-chinese's 21,128-token vocabulary
ZH_MINI_OVERRIDES = "num_hidden_layers=4,hidden_size=256,num_attention_heads=4,intermediate_size=1024"


def machine() -> str:
    """A one-line description of where a benchmark ran."""
    cpu = platform.processor() or platform.machine()
    return f"{cpu}, {os.cpu_count()} CPU cores, torch {torch.__version__} ({torch.get_num_threads()} threads)"
