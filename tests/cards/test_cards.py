"""Model cards: written offline into every output directory and checkpoint, parseable, pinned by golden files."""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import os
import re
from pathlib import Path

import torch
import yaml
from huggingface_hub import ModelCard
from huggingface_hub.repocard_data import model_index_to_eval_results
from transformers import BertConfig, BertForMaskedLM

from hfsent.cards import (
    ModelCardCallback,
    SentimentModelCardData,
    render_pretrained_encoder_card,
    resolve_base_model,
)
from hfsent.cards.common import METRIC_TITLES
from hfsent.cli import main as hfsent_main

from ..fixtures.helpers import tiny_recipe

GOLDEN = Path(__file__).parent / "golden"
METRICS = ("accuracy", "f1", "precision", "recall", "roc_auc")


def normalise(card: str) -> str:
    """The card's structure: numbers, versions and the (machine-dependent) framework list blanked out."""
    head, _, rest = card.partition("## Framework versions")
    versions, _, tail = rest.partition("## Citation")
    versions = re.sub(r"(?m)^- (.+?): .*$", r"- \1: <version>", versions)
    card = head + "## Framework versions" + versions + "## Citation" + tail
    return re.sub(r"(?<![\w.-])\d+(\.\d+)?(e[-+]?\d+)?", "<n>", card)


def check_golden(name: str, card: str) -> None:
    """Compare with tests/cards/golden/<name>; ``HFSENT_UPDATE_GOLDEN=1`` rewrites the golden file instead."""
    path = GOLDEN / name
    if os.environ.get("HFSENT_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_text(normalise(card), encoding="utf-8")
    assert normalise(card) == path.read_text(encoding="utf-8"), f"card changed: HFSENT_UPDATE_GOLDEN=1 updates {path}"


def test_every_output_directory_and_checkpoint_gets_a_card(finetuned_dir, review_csv):
    results = json.loads((finetuned_dir / "all_results.json").read_text())
    card = ModelCard.load(finetuned_dir / "README.md")
    meta = card.data.to_dict()
    assert meta["pipeline_tag"] == "text-classification"
    assert meta["library_name"] == "transformers"
    assert meta["language"] == ["zh"] and meta["license"] == "apache-2.0"
    assert {"hfsent", "sentiment-analysis"} <= set(meta["tags"])
    assert meta["metrics"] == list(METRICS)
    assert "base_model" not in meta and "datasets" not in meta  # from scratch, on a local CSV: no Hub ids

    # widget examples: real test-split texts, two per label, labelled by their true label
    with review_csv.open(encoding="utf-8") as f:
        labels = {row["review"].strip(): row["label"] for row in csv.DictReader(f)}
    widget = meta["widget"]
    assert [w["example_title"] for w in widget] == ["Positive (test example)"] * 2 + ["Negative (test example)"] * 2
    assert [labels[w["text"]] for w in widget] == ["1", "1", "0", "0"]

    text = card.text
    assert f"**{results['threshold']:.3f}**" in text  # labels and threshold section
    assert f"| Accuracy | {results['test_accuracy']:.4f} | {results['test_tuned_accuracy']:.4f} |" in text
    assert "![Training curves](training_curves.png)" in text
    assert "| learning_rate | `0.003` |" in text  # a non-default hyperparameter
    assert "<summary>All settings of the run</summary>" in text
    assert "More information needed" not in text

    checkpoints = sorted(finetuned_dir.glob("checkpoint-*"))
    assert checkpoints
    for checkpoint in checkpoints:
        step = checkpoint.name.split("-")[1]
        checkpoint_card = (checkpoint / "README.md").read_text(encoding="utf-8")
        assert f"**Intermediate checkpoint** saved at step {step}" in checkpoint_card
        assert "Not evaluated on the test split yet." in checkpoint_card
        assert "model-index" not in ModelCard(checkpoint_card).data.to_dict()


def test_model_index_holds_each_test_metric_once_clearly_named(finetuned_dir, review_csv):
    results = json.loads((finetuned_dir / "all_results.json").read_text())
    meta = ModelCard.load(finetuned_dir / "README.md").data.to_dict()
    _, eval_results = model_index_to_eval_results(meta["model-index"])
    assert eval_results == SentimentModelCardData.load(finetuned_dir).eval_results()  # round-trips exactly

    by_type = {r.metric_type: r for r in eval_results}
    assert len(by_type) == len(eval_results)  # no metric type twice
    expected = {name: (title, results[f"test_{name}"]) for name, title in METRIC_TITLES.items()}
    assert results["threshold"] == 0.5  # the default: no tuned-threshold entries repeating the ones at 0.5
    assert {t: (r.metric_name, r.metric_value) for t, r in by_type.items()} == expected  # exactly, not rounded

    # a run whose threshold_tuning moved the threshold gets one more entry per metric, named with it
    data = SentimentModelCardData.load(finetuned_dir)
    moved = dataclasses.replace(data, results={**data.results, "threshold": 0.66})
    eval_results = moved.eval_results()
    expected |= {
        f"{name}_tuned_threshold": (f"{title} (tuned threshold 0.660)", results[f"test_tuned_{name}"])
        for name, title in METRIC_TITLES.items()
        if name != "roc_auc"
    }
    assert {r.metric_type: (r.metric_name, r.metric_value) for r in eval_results} == expected
    results["threshold"] = 0.66
    for r in eval_results:
        assert (r.task_type, r.dataset_split) == ("text-classification", "test")
        assert (r.dataset_type, r.dataset_name) == ("csv", review_csv.name)  # local data: its builder and name
        if r.metric_type.endswith("_tuned_threshold"):
            assert r.metric_args == {"threshold": results["threshold"], "tuned_on": "validation", "objective": "f1"}
        else:
            assert r.metric_args is None


def test_card_says_how_to_install_hfsent_and_lists_every_setting(finetuned_dir, review_csv, tokenizer_dir):
    card = (finetuned_dir / "README.md").read_text(encoding="utf-8")
    assert "pip install hfsent" not in card  # no package index serves it
    assert "install it from its source with `pip install <path to hfsent>`" in card
    assert "github.com/hfsent" not in card  # no invented address
    differs, _, rest = card.partition("Settings that differ from")[2].partition("<summary>All settings of the run")
    every = rest.partition("</details>")[0]
    recipe = yaml.safe_load((finetuned_dir / "recipe.yaml").read_text())
    for key in ("tokenizer_name", "tokenizer_vocab_size", "model_name_or_path", "dataset_name", "config_name"):
        assert f"| {key} | " in every, key
    assert f"| dataset_name | `<local>/{review_csv.name}` |" in differs
    assert f"| tokenizer_name | `<local>/{tokenizer_dir.name}` |" in differs
    assert recipe["model_name_or_path"] is None and "| model_name_or_path | `null` |" in differs  # from scratch


def test_golden_sentiment_card(finetuned_dir):
    check_golden("sentiment_model_card.md", (finetuned_dir / "README.md").read_text(encoding="utf-8"))


def test_base_model_is_a_hub_id_never_a_local_path(tmp_path, tiny_checkpoint, tokenizer_dir, review_csv):
    # A local checkpoint that records its Hub origin in its card: fine-tune from it (a short run).
    ModelCard("---\nbase_model: google-bert/bert-base-chinese\n---\n# tiny\n").save(tiny_checkpoint / "README.md")
    recipe = tiny_recipe(
        tmp_path / "run",
        tokenizer_dir,
        review_csv,
        model_name_or_path=str(tiny_checkpoint),
        config_overrides=None,
        num_train_epochs=1,
        max_train_samples=24,
        save_strategy="no",
        load_best_model_at_end=False,
    )
    assert hfsent_main(["train", str(recipe)]) == 0
    card = (tmp_path / "run" / "out" / "README.md").read_text(encoding="utf-8")
    assert ModelCard(card).data.base_model == "google-bert/bert-base-chinese"
    assert "a local checkpoint `ckpt` (derived from [google-bert/bert-base-chinese]" in card
    assert "| model_name_or_path | `<local>/ckpt` |" in card.partition("<summary>")[0]  # differs from defaults
    assert str(tmp_path) not in card and str(review_csv.parent) not in card  # no local path anywhere

    (tiny_checkpoint / "README.md").unlink()  # records nothing: omitted, never the path
    assert resolve_base_model(str(tiny_checkpoint)) is None
    (tiny_checkpoint / "recipe.yaml").write_text("model_name_or_path: run/out\n")  # a relative path, not an id
    assert resolve_base_model(str(tiny_checkpoint)) is None
    (tiny_checkpoint / "recipe.yaml").write_text("model_name_or_path: google-bert/bert-base-chinese\n")
    assert resolve_base_model(str(tiny_checkpoint)) == "google-bert/bert-base-chinese"
    assert resolve_base_model("google-bert/bert-base-chinese") == "google-bert/bert-base-chinese"
    assert resolve_base_model(str(tmp_path / "missing" / "dir")) is None
    assert resolve_base_model("./relative/dir") is None


def test_card_errors_are_warnings_not_exceptions(tmp_path, caplog):
    callback = ModelCardCallback(SentimentModelCardData())
    with caplog.at_level(logging.WARNING, logger="hfsent"):
        assert callback.save(tmp_path / "does-not-exist", {"threshold": 0.5}) is None
    assert "could not write the model card" in caplog.text


def test_pretrained_encoder_card(tmp_path):
    out = tmp_path / "mlm"
    torch.manual_seed(0)
    config = BertConfig(vocab_size=99, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    BertForMaskedLM(config).save_pretrained(out)
    log = [{"loss": 4.6, "step": 10, "epoch": 0.5}, {"eval_loss": 4.1, "eval_perplexity": 60.3, "step": 20}]
    (out / "trainer_state.json").write_text(json.dumps({"log_history": log}))
    results = {"eval_loss": 4.1, "eval_perplexity": 60.3, "eval_accuracy": 0.21, "init_eval_perplexity": 99.0}
    results.update(train_samples=120, train_tokens=15000, epoch=0.25)  # max_steps stopped a quarter into the data
    recipe = {
        "model_name_or_path": None,
        "dataset_name": [str(tmp_path / "corpus.txt"), "user/news"],
        "max_length": 128,
        "mlm_probability": 0.15,
        "learning_rate": 5e-4,
        "hub_token": "hf_should_not_show",
    }
    card = render_pretrained_encoder_card(out, results, recipe, model_id="user/encoder", language=["zh"])

    meta = ModelCard(card).data.to_dict()
    assert meta["pipeline_tag"] == "fill-mask" and meta["datasets"] == ["user/news"]
    assert "base_model" not in meta
    name, eval_results = model_index_to_eval_results(meta["model-index"])
    assert name == "encoder"
    assert {(r.metric_type, r.metric_value) for r in eval_results} == {("perplexity", 60.3), ("accuracy", 0.21)}
    assert 'pipeline("fill-mask", model="user/encoder")' in card
    assert "| Perplexity | 99.0000 | 60.3000 |" in card
    assert "120 training sequences (15000 tokens), trained on for 0.25 epochs." in card
    assert str(tmp_path) not in card and "hf_should_not_show" not in card
    check_golden("pretrained_encoder_card.md", card)


def test_pretrained_decoder_card_fine_tunes_it_at_its_last_token(tmp_path):
    from transformers import GPT2Config, GPT2LMHeadModel

    out = tmp_path / "gpt"
    GPT2LMHeadModel(GPT2Config(n_embd=16, n_layer=1, n_head=2, n_positions=64, vocab_size=99)).save_pretrained(out)
    recipe = {"objective": "causal_lm", "model_name_or_path": None, "dataset_name": "corpus.txt", "max_length": 64}
    card = render_pretrained_encoder_card(out, {"eval_loss": 4.1, "eval_perplexity": 60.3}, recipe, model_id="user/gpt")

    assert ModelCard(card).data.to_dict()["pipeline_tag"] == "text-generation"
    [command] = [line for line in card.splitlines() if line.startswith("hfsent train ")]
    # the recipe it names sets pooling: cls, which a decoder refuses: the command must override it
    assert "recipes/finetune/bert-base-chinese.yaml" in command and command.endswith("--pooling last")
    assert "devlin-etal-2019-bert" not in card  # a GPT-2 does not cite BERT


def test_templates_ship_with_the_package():
    from hfsent.cards import ENCODER_TEMPLATE, SENTIMENT_TEMPLATE, TEMPLATES_DIR

    root = Path(__file__).resolve().parents[2]
    assert TEMPLATES_DIR.resolve() == root / "model_card_templates"  # hfsent/model_card_templates links there
    assert SENTIMENT_TEMPLATE.is_file() and ENCODER_TEMPLATE.is_file()
    package_data = (root / "pyproject.toml").read_text().split("[tool.setuptools.package-data]")[1]
    [line] = [line for line in package_data.splitlines() if line.startswith("hfsent = [")]
    assert '"model_card_templates/*.md"' in line  # so a wheel carries a copy of the templates
