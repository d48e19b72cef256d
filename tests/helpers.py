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


def write_review_csv(path: Path, n: int = 200, seed: int = 0, text_column: str = "review") -> Path:
    """A CSV of ``n`` separable synthetic reviews (columns cat, label, <text_column>), half positive."""
    import csv
    import random

    rng = random.Random(seed)
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["cat", "label", text_column])
        for i in range(n):
            label = i % 2
            pool = POSITIVE_REVIEWS if label else NEGATIVE_REVIEWS
            parts = rng.sample(pool, k=2)
            writer.writerow(["测试", label, "，".join(parts) + "。" * rng.randint(0, 3)])
    return path


TINY_OVERRIDES = (
    "num_hidden_layers=1,hidden_size=32,num_attention_heads=2,intermediate_size=64,max_position_embeddings=128"
)


def tiny_recipe(tmp_path: Path, tokenizer_dir: Path, data: Path, **overrides) -> Path:
    """Write a fine-tuning recipe YAML for a tiny from-config model; ``overrides`` replace/add keys."""
    import yaml

    recipe = {
        "dataset_name": str(data),
        "text_column": "review",
        "label_column": "label",
        "max_length": 32,
        "test_split_size": 0.2,
        "validation_split_size": 0.2,
        "split_seed": 0,
        "model_name_or_path": None,
        "config_overrides": TINY_OVERRIDES,
        "tokenizer_name": str(tokenizer_dir),
        "output_dir": str(tmp_path / "out"),
        "num_train_epochs": 3,
        "per_device_train_batch_size": 8,
        "per_device_eval_batch_size": 32,
        "learning_rate": "3e-3",
        "logging_steps": 5,
        "seed": 0,
        "disable_tqdm": True,
        "use_cpu": True,
        "dataloader_pin_memory": False,
    }
    recipe.update(overrides)
    path = tmp_path / "recipe.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(recipe, allow_unicode=True), encoding="utf-8")
    return path


def run_cli(
    *args: str,
    cwd: Path = ROOT,
    timeout: int = 300,
    launcher: list[str] | None = None,
    env: dict[str, str] | None = None,
):
    """Run ``python -m hfsent ARGS`` (or ``launcher + ARGS``) in a subprocess; return the CompletedProcess.

    The child runs offline (``HF_HUB_OFFLINE=1``) unless ``env`` (applied last) says otherwise.
    """
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        **(env or {}),
    }
    command = (launcher or [sys.executable, "-m", "hfsent"]) + list(args)
    return subprocess.run(
        command, capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout, stdin=subprocess.DEVNULL
    )
