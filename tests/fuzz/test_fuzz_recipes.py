"""Fuzz: bad recipe values, command-line overrides and recipe files at ``hfsent train`` and ``hfsent pretrain``.

Every case runs in-process through ``hfsent.cli.main`` and must fail at once: exit 2, no traceback, ONE line
``hfsent <command>: error: ...`` naming the key (or file) at fault, no output directory created, and an earlier
run's output directory given as ``output_dir`` left exactly as it was. Deterministic: a fixed list of cases.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from hfsent.cli import main as hfsent_main

from ..fixtures.helpers import TINY_OVERRIDES, tiny_recipe

GPT2 = "<gpt2 checkpoint>"
T5 = "<t5 checkpoint>"  # a model type no backbone family handles (a GPT-2 checkpoint starts a classifier)
MISSING = "<missing path>"

# (key or fragment the error must name, YAML keys to set, extra command-line arguments)
TRAIN_CASES: list[tuple[str, dict, list[str]]] = [
    ("max_length", {"max_length": 64.7}, []),
    ("max_length", {"max_length": 0}, []),
    ("max_length", {"max_length": "long"}, []),
    ("max_length", {"max_length": 1000}, []),  # the tiny model has 128 positions
    ("seed", {"seed": 1.5}, []),
    ("seed", {"seed": -1}, []),
    ("dataset_name", {"dataset_name": ["a.csv", "b.csv"]}, []),
    ("learning_rate", {"learning_rate": -1}, []),
    ("learning_rate", {"learning_rate": "fast"}, []),
    ("per_device_train_batch_size", {"per_device_train_batch_size": 0}, []),
    ("per_device_eval_batch_size", {"per_device_eval_batch_size": -3}, []),
    ("gradient_accumulation_steps", {"gradient_accumulation_steps": 0}, []),
    ("num_train_epochs", {"num_train_epochs": 0}, []),
    ("num_train_epochs", {"num_train_epochs": -1}, []),
    ("max_steps", {"max_steps": 0}, []),
    ("warmup_steps", {"warmup_steps": -5}, []),
    ("weight_decay", {"weight_decay": -0.1}, []),
    ("logging_steps", {"logging_steps": 0}, []),
    ("test_split_size", {"test_split_size": 1.5}, []),
    ("validation_split_size", {"validation_split_size": -0.1}, []),
    ("split_seed", {"split_seed": 2.5}, []),
    ("max_train_samples", {"max_train_samples": 0}, []),
    ("tokenizer_vocab_size", {"tokenizer_vocab_size": 3}, []),
    ("lora_r", {"lora_r": 0}, []),
    ("lora_dropout", {"lora_dropout": 1.5}, []),
    ("pos_weight", {"pos_weight": "heavy"}, []),
    ("pos_weight", {"pos_weight": -2}, []),
    ("use_cpu", {"use_cpu": "maybe"}, []),
    ("invalid_labels", {"invalid_labels": "ignore"}, []),
    ("train_sampling_strategy", {"train_sampling_strategy": "bogus"}, []),
    ("eval_strategy", {"eval_strategy": "sometimes"}, []),
    ("length_group_steps", {"length_group_steps": 0}, []),
    ("early_stopping_patience", {"early_stopping_patience": 0}, []),
    ("text_column", {"text_column": ["review", "title"]}, []),
    ("classifier_dropout", {"classifier_dropout": 2}, []),
    ("save_total_limit", {"save_total_limit": 0}, []),
    ("pooling", {"pooling": "max"}, []),
    ("threshold_objective", {"threshold_objective": "auc"}, []),
    ("model_name_or_path", {"model_name_or_path": MISSING, "config_overrides": None}, []),
    ("model_name_or_path", {"model_name_or_path": T5, "config_overrides": None}, []),
    ("tokenizer_name", {"tokenizer_name": MISSING}, []),
    ("resume_from_checkpoint", {"resume_from_checkpoint": MISSING}, []),
    ("learnin_rate", {"learnin_rate": 0.1}, []),
    ("learning_rat", {}, ["--learning_rat", "1e-3"]),
    ("num_train", {}, ["--num_train", "0.01"]),
    ("learning_rte", {}, ["--learning_rte", "1e-3"]),
    ("max_length", {}, ["--max_length", "12x"]),
    ("seed", {}, ["--seed"]),
    ("per_device_train_batch_size", {}, ["--per_device_train_batch_size=-1"]),
    ("extra.yaml", {}, ["extra.yaml"]),
]

PRETRAIN_CASES: list[tuple[str, dict, list[str]]] = [
    ("mlm_probability", {"mlm_probability": 0}, []),
    ("mlm_probability", {"mlm_probability": 1.5}, []),
    ("validation_split_percentage", {"validation_split_percentage": 100}, []),
    ("mask_replace_prob", {"mask_replace_prob": -0.1}, []),
    ("source_mixing", {"source_mixing": "zip"}, []),
    ("source_probabilities", {"source_mixing": "interleave", "source_probabilities": [0.5, "x"]}, []),
    ("learning_rate", {"learning_rate": 0}, []),
    ("per_device_train_batch_size", {"per_device_train_batch_size": 0}, []),
    ("num_train_epochs", {"num_train_epochs": 0}, []),
    ("max_train_samples", {"max_train_samples": 0}, []),
    ("dataset_name", {"dataset_name": {"news": 1}}, []),
    ("model_name_or_path", {"model_name_or_path": GPT2}, []),
    ("model_name_or_path", {"model_name_or_path": MISSING}, []),
    ("mlm_prob", {}, ["--mlm_prob", "0.2"]),
]

# recipe files that cannot be read: (name, bytes)
BAD_FILES = [
    ("list.yaml", b"- learning_rate: 1e-3\n"),
    ("broken.yaml", b"learning_rate: [1e-3\n"),
    ("gbk.yaml", "text_column: 评论\n".encode("gbk")),
]


@pytest.fixture(scope="module")
def world(tmp_path_factory, tokenizer_dir, review_csv):
    """A GPT-2 checkpoint, a corpus, and an earlier run's output directory (to be left untouched)."""
    from transformers import GPT2Config, GPT2LMHeadModel, T5Config

    root = tmp_path_factory.mktemp("fuzz-recipes")
    gpt2 = root / "gpt2"
    GPT2LMHeadModel(GPT2Config(n_layer=1, n_head=2, n_embd=16, vocab_size=64, n_positions=64)).save_pretrained(gpt2)
    t5 = root / "t5"
    T5Config(d_model=16, d_kv=8, d_ff=32, num_layers=1, num_heads=2, vocab_size=64).save_pretrained(t5)
    corpus = root / "corpus.txt"
    corpus.write_text("物流很快，质量很好\n用了两天就坏了\n", encoding="utf-8")
    earlier = root / "earlier-run"
    (earlier / "checkpoint-8").mkdir(parents=True)
    for name, text in {
        "config.json": "{}",
        "all_results.json": '{"test_accuracy": 0.9}',
        "README.md": "# card",
    }.items():
        (earlier / name).write_text(text, encoding="utf-8")
    (earlier / "checkpoint-8" / "trainer_state.json").write_text("{}", encoding="utf-8")
    return {
        "root": root,
        "gpt2": gpt2,
        "t5": t5,
        "corpus": corpus,
        "earlier": earlier,
        "tok": tokenizer_dir,
        "csv": review_csv,
    }


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _resolve(keys: dict, world: dict, tmp_path: Path) -> dict:
    special = {GPT2: str(world["gpt2"]), T5: str(world["t5"]), MISSING: str(tmp_path / "no" / "such-folder")}
    return {k: special.get(v, v) if isinstance(v, str) else v for k, v in keys.items()}


def _recipe(command: str, keys: dict, world: dict, tmp_path: Path) -> Path:
    if command == "train":
        return tiny_recipe(tmp_path, world["tok"], world["csv"], **keys)
    recipe = {
        "tokenizer_name": str(world["tok"]),
        "config_overrides": TINY_OVERRIDES,
        "dataset_name": [str(world["corpus"])],
        "num_train_epochs": 1,
        "per_device_train_batch_size": 8,
        "save_strategy": "no",
        "use_cpu": True,
        **keys,
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe, allow_unicode=True), encoding="utf-8")
    return path


def _fails_cleanly(argv: list[str], prog: str, culprit: str, capsys) -> None:
    assert hfsent_main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{prog}: error: "), err[-2000:]
    assert culprit in lines[0], lines[0]


CASES = [("train", *case) for case in TRAIN_CASES] + [("pretrain", *case) for case in PRETRAIN_CASES]


@pytest.mark.parametrize(
    ("command", "culprit", "keys", "args"), CASES, ids=[f"{c[0]}-{i}-{c[1]}" for i, c in enumerate(CASES)]
)
def test_bad_recipe_value_fails_at_once(command, culprit, keys, args, world, tmp_path, capsys):
    recipe = _recipe(command, _resolve(keys, world, tmp_path), world, tmp_path)
    fresh = tmp_path / "new-run"
    _fails_cleanly([command, str(recipe), *args, "--output_dir", str(fresh)], f"hfsent {command}", culprit, capsys)
    assert not fresh.exists()

    before = _snapshot(world["earlier"])
    _fails_cleanly(
        [command, str(recipe), *args, "--output_dir", str(world["earlier"])], f"hfsent {command}", culprit, capsys
    )
    assert _snapshot(world["earlier"]) == before


@pytest.mark.parametrize("command", ["train", "pretrain"])
@pytest.mark.parametrize(("name", "content"), BAD_FILES, ids=[name for name, _ in BAD_FILES])
def test_unreadable_recipe_file_is_named(command, name, content, tmp_path, capsys):
    recipe = tmp_path / name
    recipe.write_bytes(content)
    fresh = tmp_path / "new-run"
    _fails_cleanly([command, str(recipe), "--output_dir", str(fresh)], f"hfsent {command}", name, capsys)
    _fails_cleanly([command, str(tmp_path / "missing.yaml")], f"hfsent {command}", "missing.yaml", capsys)
    assert not fresh.exists()
