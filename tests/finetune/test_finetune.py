"""The fine-tuning recipe end to end through its real entry points (CLI, recipe script, accelerate)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import yaml
from transformers import AutoModel, pipeline

import hfsent
from hfsent.cli import main as hfsent_main

from ..fixtures.helpers import (
    NEGATIVE_REVIEWS,
    POSITIVE_REVIEWS,
    files_without_the_default_mode,
    run_cli,
    tiny_recipe,
)

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
    assert tokenizer.model_max_length == config["max_position_embeddings"] == 128  # truncation fits the model
    assert type(AutoModel.from_pretrained(out)) is hfsent.HfSentModel
    texts = ["，".join(POSITIVE_REVIEWS[:2]), "，".join(NEGATIVE_REVIEWS[:2])]
    clf = pipeline("text-classification", model=str(out))
    assert [r["label"] for r in hfsent.predict(texts, str(out))] == ["pos", "neg"]  # at the tuned threshold
    at_half = hfsent.predict(texts, str(out), threshold=0.5)  # the pipeline decides by argmax, i.e. at 0.5
    assert clf(texts) == [{"label": r["label"], "score": pytest.approx(r["score"], abs=1e-5)} for r in at_half]


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


# ----------------------------------------------------------------------------------------------- LoRA


def test_lora_recipe_logs_trainable_share_and_saves_a_merged_plain_model_with_default_file_modes(
    tmp_path, tokenizer_dir, review_csv, caplog, capsys
):
    recipe = tiny_recipe(
        tmp_path, tokenizer_dir, review_csv, use_lora=True, lora_r=4, lora_target_modules=["query", "value"]
    )
    # `hfsent train` in this process (the console script's function): a Python start-up costs more than the run
    with caplog.at_level(logging.INFO, logger="hfsent"):
        assert hfsent_main(["train", str(recipe), "--num_train_epochs", "1"]) == 0, capsys.readouterr().err[-3000:]
    assert "LoRA: trainable params" in caplog.text
    out = tmp_path / "out"
    results = json.loads((out / "all_results.json").read_text())
    assert 0.0 < results["trainable_parameters_share"] < 0.5
    assert not (out / "adapter_config.json").exists()
    model, info = hfsent.HfSentModel.from_pretrained(out, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    assert not any("lora" in name for name in model.state_dict())
    # every file the run wrote, the checkpoints' adapters (written by peft) too, has the default mode
    assert sorted(p.name for p in out.glob("checkpoint-*/adapter_model.safetensors"))
    assert files_without_the_default_mode(out) == {}
