"""The fine-tuning recipe end to end through its real entry points (CLI, recipe script, accelerate)."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from transformers import AutoModel, pipeline

import hfsent
from hfsent.cli import main as hfsent_main

from ..fixtures.helpers import NEGATIVE_REVIEWS, POSITIVE_REVIEWS, ROOT, TINY_OVERRIDES, run_cli, tiny_recipe

EXPECTED_FILES = {
    "config.json",
    "model.safetensors",
    "configuration_hfsent.py",
    "modeling_hfsent.py",
    "tokenizer.json",
    "tokenizer_config.json",
    "all_results.json",
    "recipe.yaml",
    "trainer_state.json",
    "training_curves.png",
    "confusion_matrix.png",
    "roc_curve.png",
    "pr_curve.png",
}
METRICS = ("accuracy", "f1", "precision", "recall", "roc_auc")


def test_recipe_trains_evaluates_and_saves_a_publishable_model(tmp_path, tokenizer_dir, review_csv):
    recipe = tiny_recipe(tmp_path, tokenizer_dir, review_csv)
    proc = run_cli("train", str(recipe), "--num_train_epochs", "4")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "test metric" in proc.stdout and "accuracy" in proc.stdout

    out = tmp_path / "out"
    assert {p.name for p in out.iterdir()} >= EXPECTED_FILES
    assert not (out / ".staging").exists()
    results = json.loads((out / "all_results.json").read_text())
    for split in ("eval", "eval_tuned", "test", "test_tuned"):
        for name in METRICS:
            assert 0.0 <= results[f"{split}_{name}"] <= 1.0, f"{split}_{name}"
    assert results["train_samples"] + results["validation_samples"] + results["test_samples"] == 200
    # the synthetic reviews are separable: ranked perfectly, and the threshold tuned on validation splits them
    # (4 epochs of a from-scratch model may leave every probability on one side of 0.5)
    assert results["test_roc_auc"] >= 0.95 and results["test_tuned_accuracy"] >= 0.9

    config = json.loads((out / "config.json").read_text())
    assert config["threshold"] == pytest.approx(results["threshold"])
    resolved = yaml.safe_load((out / "recipe.yaml").read_text())
    assert resolved["num_train_epochs"] == 4  # the CLI override beat the YAML's 3
    assert resolved["learning_rate"] == pytest.approx(3e-3) and isinstance(resolved["learning_rate"], float)
    state = json.loads((out / "trainer_state.json").read_text())
    assert any("eval_roc_auc" in entry for entry in state["log_history"])

    tokenizer = hfsent.load_model_and_tokenizer(str(out))[1]
    assert tokenizer.model_max_length == 512
    assert type(AutoModel.from_pretrained(out)) is hfsent.HfSentModel
    texts = ["，".join(POSITIVE_REVIEWS[:2]), "，".join(NEGATIVE_REVIEWS[:2])]
    clf = pipeline("text-classification", model=str(out))
    assert [r["label"] for r in hfsent.predict(texts, str(out))] == ["pos", "neg"]  # at the tuned threshold
    at_half = hfsent.predict(texts, str(out), threshold=0.5)  # the pipeline decides by argmax, i.e. at 0.5
    assert clf(texts) == [{"label": r["label"], "score": pytest.approx(r["score"], abs=1e-5)} for r in at_half]


def test_recipe_script_runs_under_accelerate_launch(tmp_path, tokenizer_dir, review_csv):
    recipe = tiny_recipe(tmp_path, tokenizer_dir, review_csv, num_train_epochs=1, max_train_samples=40)
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "1", "--cpu"]
    proc = run_cli(str(ROOT / "recipes" / "finetune.py"), str(recipe), launcher=launcher)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((tmp_path / "out" / "all_results.json").read_text())["train_samples"] == 40


# ----------------------------------------------------------------------------------- bad input, early


def _write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_text(text, encoding=encoding)
    return path


BAD_INPUTS = {
    "unknown key": (lambda tmp: {"learnin_rate": 0.1}, ["unknown key 'learnin_rate'", "did you mean 'learning_rate'"]),
    "missing column": (
        lambda tmp: {"text_column": "comment"},
        ["no column 'comment'", "cat, label, review"],
    ),
    "missing file": (lambda tmp: {"dataset_name": str(tmp / "nope.csv")}, ["dataset file not found", "nope.csv"]),
    "non-utf8 file": (
        lambda tmp: {"dataset_name": str(_write(tmp / "gbk.csv", "label,review\n1,很好\n", encoding="gbk"))},
        ["gbk.csv", "is not UTF-8"],
    ),
    "empty after cleaning": (
        lambda tmp: {"dataset_name": str(_write(tmp / "blank.csv", 'label,review\n1," "\n0,\n5,坏\n'))},
        ["no usable rows", "blank.csv"],
    ),
    "label 2 in error mode": (
        lambda tmp: {
            "dataset_name": str(_write(tmp / "two.csv", "label,review\n1,好\n2,一般\n0,坏\n")),
            "invalid_labels": "error",
        },
        ["label 2", "column 'label'", "row 1", "two.csv"],
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_fails_before_training_naming_the_culprit(case, tmp_path, tokenizer_dir, review_csv, capsys):
    make_overrides, expected = BAD_INPUTS[case]
    recipe = tiny_recipe(tmp_path, tokenizer_dir, review_csv, **make_overrides(tmp_path))
    assert hfsent_main(["train", str(recipe)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    [line] = [line for line in err.splitlines() if line.startswith("hfsent train: error: ")]
    for fragment in expected:
        assert fragment in line
    assert not (tmp_path / "out").exists()  # nothing trained, nothing written


def test_missing_recipe_file_is_named(tmp_path, capsys):
    assert hfsent_main(["train", str(tmp_path / "missing.yaml")]) == 2
    assert "recipe file not found" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------- distributed


def _losses(out: Path) -> list[float]:
    state = json.loads((out / "trainer_state.json").read_text())
    return [entry["loss"] for entry in state["log_history"] if "loss" in entry]


def test_two_process_ddp_matches_one_process_at_the_same_global_batch(tmp_path, tokenizer_dir, review_csv):
    # hfsent's default sampling (group_by_length_stratified) deals out whole steps of 8 in length order: two
    # micro-batches of 4, here both on one process (gradient accumulation) or one per process.
    common = dict(
        num_train_epochs=2,
        logging_steps=2,
        per_device_train_batch_size=4,
        eval_strategy="no",
        save_strategy="no",
        load_best_model_at_end=False,
        ddp_find_unused_parameters=False,
        config_overrides=TINY_OVERRIDES + ",hidden_dropout_prob=0.0,attention_probs_dropout_prob=0.0",
    )
    single = tiny_recipe(tmp_path / "one", tokenizer_dir, review_csv, gradient_accumulation_steps=2, **common)
    double = tiny_recipe(tmp_path / "two", tokenizer_dir, review_csv, **common)
    accelerate = [sys.executable, "-m", "accelerate.commands.launch"]
    one = run_cli(
        str(ROOT / "recipes/finetune.py"), str(single), launcher=[*accelerate, "--num_processes", "1", "--cpu"]
    )
    assert one.returncode == 0, one.stderr[-3000:]
    two = run_cli(
        str(ROOT / "recipes/finetune.py"),
        str(double),
        launcher=[*accelerate, "--multi_gpu", "--num_processes", "2", "--main_process_port", "0"],
    )
    assert two.returncode == 0, two.stderr[-3000:]
    assert json.loads((tmp_path / "two" / "out" / "all_results.json").read_text())["world_size"] == 2

    losses_one, losses_two = _losses(tmp_path / "one" / "out"), _losses(tmp_path / "two" / "out")
    assert len(losses_one) == len(losses_two) >= 10
    assert losses_two == pytest.approx(losses_one, rel=2e-3, abs=2e-3)
    # one set of outputs, written once
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == ["out", "recipe.yaml"]
    assert {p.name for p in (tmp_path / "two" / "out").iterdir()} >= EXPECTED_FILES


# -------------------------------------------------------------------------------------------- resume


def test_sigkill_then_resume_matches_an_uninterrupted_run(tmp_path, tokenizer_dir, review_csv):
    common = dict(
        num_train_epochs=1,
        max_steps=400,
        save_strategy="steps",
        save_steps=20,
        eval_strategy="no",
        save_total_limit=None,
        load_best_model_at_end=False,
        per_device_train_batch_size=2,
        gradient_accumulation_steps=2,  # the default sampling cuts each step into two length-sorted micro-batches
        logging_steps=20,
    )
    reference = tiny_recipe(tmp_path / "ref", tokenizer_dir, review_csv, **common)
    assert run_cli("train", str(reference)).returncode == 0

    recipe = tiny_recipe(tmp_path / "run", tokenizer_dir, review_csv, **common)
    out = tmp_path / "run" / "out"
    env_cmd = [sys.executable, "-m", "hfsent", "train", str(recipe)]
    import os

    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(env_cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    try:
        while not (out / "checkpoint-40" / "trainer_state.json").exists():
            assert proc.poll() is None, "training ended before a checkpoint appeared"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "all_results.json").exists()  # the killed run left no final output
    checkpoints = sorted(p.name for p in out.glob("checkpoint-*"))
    assert "checkpoint-400" not in checkpoints

    resumed = run_cli("train", str(recipe), "--resume_from_checkpoint", "last")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    got = json.loads((out / "all_results.json").read_text())
    want = json.loads((tmp_path / "ref" / "out" / "all_results.json").read_text())
    for key in ("test_accuracy", "test_roc_auc", "test_loss", "eval_loss", "threshold"):
        assert got[key] == pytest.approx(want[key], rel=1e-3, abs=1e-4), key
    shutil.rmtree(tmp_path / "ref")


# ----------------------------------------------------------------------------------------------- LoRA


def test_lora_recipe_logs_trainable_share_and_saves_a_merged_plain_model(tmp_path, tokenizer_dir, review_csv):
    recipe = tiny_recipe(
        tmp_path, tokenizer_dir, review_csv, use_lora=True, lora_r=4, lora_target_modules=["query", "value"]
    )
    proc = run_cli("train", str(recipe), "--num_train_epochs", "1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "LoRA: trainable params" in proc.stdout + proc.stderr
    out = tmp_path / "out"
    results = json.loads((out / "all_results.json").read_text())
    assert 0.0 < results["trainable_parameters_share"] < 0.5
    assert not (out / "adapter_config.json").exists()
    model, info = hfsent.HfSentModel.from_pretrained(out, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    assert not any("lora" in name for name in model.state_dict())
