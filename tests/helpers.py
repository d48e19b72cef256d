"""Shared test helpers: tiny models, the review tokenizer, fresh subprocesses without hfsent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import hfsent
from hfsent.tokenizer import load_tokenizer, train_wordpiece_tokenizer

ROOT = Path(__file__).resolve().parents[1]
# The one setting through which tests reach ../shared (absent is fine: tests fall back).
SHARED = Path(os.environ.get("HFSENT_SHARED", ROOT.parent / "shared"))
BERT_BASE_CHINESE = SHARED / "models" / "bert-base-chinese"

POSITIVE_REVIEWS = [
    "这个手机很好用，电池也很耐用，非常满意",
    "物流很快，包装完好，质量不错，推荐购买",
    "书的内容很精彩，印刷清晰，值得一读",
    "性价比很高，屏幕清楚，运行流畅",
    "酒店服务周到，房间干净，下次还来",
    "衣服很合身，面料舒服，颜色好看",
]
NEGATIVE_REVIEWS = [
    "太差了，用了两天就坏了，不推荐",
    "物流慢得要命，包装破损，非常失望",
    "书是盗版的，纸张很差，字迹模糊",
    "屏幕有坏点，客服态度恶劣，退货麻烦",
    "房间很脏，隔音差，服务员爱理不理",
    "衣服掉色严重，做工粗糙，再也不买了",
]
REVIEWS = POSITIVE_REVIEWS + NEGATIVE_REVIEWS
RESULT_MARKER = "@@HFSENT_RESULT@@ "


def review_tokenizer():
    """The real bert-base-chinese tokenizer from ../shared, or one trained here when it is absent."""
    if (BERT_BASE_CHINESE / "tokenizer.json").is_file():
        return load_tokenizer(str(BERT_BASE_CHINESE))
    return train_wordpiece_tokenizer(REVIEWS * 4, vocab_size=500)


def tiny_config(vocab_size: int, **overrides) -> hfsent.HfSentConfig:
    """A 2-layer, 32-wide hfsent config (fast on CPU)."""
    kwargs = dict(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    kwargs.update(overrides)
    return hfsent.HfSentConfig(**kwargs)


def run_without_hfsent(code: str, *args: str, env: dict[str, str] | None = None) -> dict:
    """Run ``code`` in a fresh Python where ``import hfsent`` fails; return the JSON it prints last.

    The script sees its extra arguments as ``sys.argv[1:]`` and calls ``emit(obj)`` once with its
    result (a JSON-serialisable object).
    """
    prelude = (
        "import json, sys\n"
        "sys.modules['hfsent'] = None  # make `import hfsent` raise ImportError\n"
        "def emit(obj):\n"
        f"    print({RESULT_MARKER!r} + json.dumps(obj), flush=True)\n"
    )
    full_env = {**os.environ, "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1"), **(env or {})}
    full_env.pop("PYTHONPATH", None)
    proc = subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code), *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=full_env,
        cwd=os.path.dirname(os.path.abspath(os.sep)),
        timeout=300,
    )
    assert proc.returncode == 0, f"subprocess failed:\n{proc.stderr[-4000:]}"
    lines = [line for line in proc.stdout.splitlines() if line.startswith(RESULT_MARKER)]
    assert len(lines) == 1, f"expected one result line, got stdout:\n{proc.stdout[-4000:]}"
    return json.loads(lines[0][len(RESULT_MARKER) :])
