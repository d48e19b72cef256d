"""Fine-tuning with many labels and with text pairs, through ``hfsent train`` and the ASAP converter."""

from __future__ import annotations

import csv
import json
import logging
import random
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from hfsent.cli import main as hfsent_main
from hfsent.datasets_asap import ASAP_ASPECTS, convert_asap
from hfsent.finetune.collator import PaddingCollator

from ..fixtures.helpers import NEGATIVE_REVIEWS, POSITIVE_REVIEWS, SHARED, tiny_recipe

ASPECTS = ("物流", "质量", "服务")


def write_multilabel_csv(path: Path, n: int = 120, seed: int = 0) -> Path:
    """Reviews with three 0/1 label columns: ``good`` (positive review), ``long`` (two sentences), ``mark``."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["review", "good", "long", "mark"])
        for i in range(n):
            good, long_, mark = i % 2, (i // 2) % 2, (i // 4) % 2
            pool = POSITIVE_REVIEWS if good else NEGATIVE_REVIEWS
            text = "，".join(rng.sample(pool, k=2 if long_ else 1)) + ("！！" if mark else "。")
            writer.writerow([text, good, long_, mark])
    return path


def write_pair_jsonl(path: Path, n: int = 120, seed: int = 0) -> Path:
    """(aspect, review) pairs whose label depends on the pair: the review is positive about that aspect only."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            label = i % 2
            pool = POSITIVE_REVIEWS if label else NEGATIVE_REVIEWS
            row = {"aspect": rng.choice(ASPECTS), "review": "，".join(rng.sample(pool, k=2)), "label": label}
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def test_label_columns_train_a_multilabel_model_with_per_label_metrics(tmp_path, tokenizer_dir, capsys):
    data = write_multilabel_csv(tmp_path / "multi.csv")
    recipe = tiny_recipe(tmp_path, tokenizer_dir, data, label_column=["good", "long", "mark"], pos_weight="auto")
    # `hfsent train` in this process (the console script's function): a Python start-up costs more than the run
    code = hfsent_main(["train", str(recipe), "--num_train_epochs", "2"])
    proc = capsys.readouterr()
    assert code == 0, proc.err[-3000:]
    out = tmp_path / "out"
    config = json.loads((out / "config.json").read_text())
    assert config["problem_type"] == "multi_label_classification"
    assert config["id2label"] == {"0": "good", "1": "long", "2": "mark"}
    assert len(config["pos_weight"]) == 3
    results = json.loads((out / "all_results.json").read_text())
    assert results["labels"] == ["good", "long", "mark"]
    for key in ("test_f1_micro", "test_f1_macro", "test_roc_auc_micro", "test_roc_auc_macro", "test_f1/good"):
        assert key in results
    # the console prints one row per label
    for label in ("good", "long", "mark"):
        assert any(line.startswith(label + " ") for line in proc.out.splitlines()), proc.out
    assert (out / "label_metrics.png").is_file()
    model = AutoModelForSequenceClassification.from_pretrained(out)
    batch = AutoTokenizer.from_pretrained(out)(["质量不错"], return_tensors="pt")
    assert model(**batch).logits.shape == (1, 3)


def test_a_column_of_label_names_infers_the_labels(tmp_path, tokenizer_dir):
    rows = [{"review": r, "tags": ["pos", "short"] if r in POSITIVE_REVIEWS else ["neg"]} for r in POSITIVE_REVIEWS]
    rows += [{"review": r, "tags": ["neg"]} for r in NEGATIVE_REVIEWS]
    data = tmp_path / "tags.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows * 5), encoding="utf-8")
    recipe = tiny_recipe(tmp_path, tokenizer_dir, data, label_column="tags", test_split_size=0.2)
    assert hfsent_main(["train", str(recipe), "--num_train_epochs", "1"]) == 0
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert list(config["id2label"].values()) == ["neg", "pos", "short"]


def test_a_label_name_not_in_train_is_named_when_its_row_is_dropped(tmp_path, tokenizer_dir, caplog):
    rows = [{"review": r, "tags": ["pos"]} for r in POSITIVE_REVIEWS] + [
        {"review": r, "tags": ["neg"]} for r in NEGATIVE_REVIEWS
    ]
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows * 3), "utf-8")
    validation = [*rows, {"review": "服务一般", "tags": ["neutral"]}]  # a label train never has
    (data / "validation.jsonl").write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in validation), "utf-8"
    )
    recipe = tiny_recipe(tmp_path, tokenizer_dir, data, label_column="tags", test_split_size=0)
    with caplog.at_level(logging.WARNING, logger="hfsent"):
        assert hfsent_main(["train", str(recipe), "--max_steps", "1"]) == 0
    [warning] = [r.getMessage() for r in caplog.records if "split 'validation': dropped" in r.getMessage()]
    assert "1 row(s) with a label that is not one of the train split's 2 labels (label_list sets them)" in warning
    assert "'neutral' in column 'tags'" in warning and "{0, 1}" not in warning


def test_text_pairs_train_a_pair_model_with_segment_ids(tmp_path, tokenizer_dir, capsys):
    data = write_pair_jsonl(tmp_path / "pairs.jsonl")
    recipe = tiny_recipe(tmp_path, tokenizer_dir, data, text_column="aspect", text_pair_column="review")
    assert hfsent_main(["train", str(recipe), "--num_train_epochs", "1"]) == 0, capsys.readouterr().err[-3000:]
    saved = yaml_load(tmp_path / "out" / "recipe.yaml")
    assert saved["text_pair_column"] == "review"
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert config["id2label"] == {"0": "neg", "1": "pos"}
    assert config.get("problem_type") is None
    assert AutoModelForSequenceClassification.from_pretrained(tmp_path / "out").classifier.weight.shape[0] == 1


def yaml_load(path: Path) -> dict:
    import yaml

    return yaml.safe_load(path.read_text(encoding="utf-8"))


def test_collator_pads_pair_segment_ids_and_multilabel_rows(zh_tokenizer):
    long_review = "，".join(POSITIVE_REVIEWS)
    encoded = zh_tokenizer(["物流", "服务"], ["很快", long_review], truncation="only_second", max_length=24)
    features = [
        {"input_ids": ids, "attention_mask": mask, "token_type_ids": types, "labels": labels}
        for ids, mask, types, labels in zip(
            encoded["input_ids"],
            encoded["attention_mask"],
            encoded["token_type_ids"],
            [[1.0, 0.0], [0.0, 1.0]],
            strict=True,
        )
    ]
    assert len(features[1]["input_ids"]) == 24  # the review was cut, not the aspect
    assert zh_tokenizer.decode(features[1]["input_ids"]).replace(" ", "").startswith("[CLS]服务[SEP]")
    batch = PaddingCollator(zh_tokenizer)(features)
    assert batch["token_type_ids"].shape == (2, 24)
    first_len = len(features[0]["input_ids"])
    assert batch["token_type_ids"][0, first_len:].eq(0).all()  # padding: segment 0
    assert batch["token_type_ids"][0, :first_len].tolist() == features[0]["token_type_ids"]
    assert 1 in batch["token_type_ids"][1].tolist()
    assert batch["labels"].dtype == torch.float32 and batch["labels"].shape == (2, 2)


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


BAD_INPUTS = {
    "label value outside 0/1": (
        lambda tmp: {
            "dataset_name": str(_write(tmp / "m.csv", "review,a,b\n好,1,0\n坏,0,2\n中,1,1\n")),
            "label_column": ["a", "b"],
            "invalid_labels": "error",
        },
        ["label 2", "column 'b'", "m.csv"],
    ),
    "missing pair column": (
        lambda tmp: {"text_pair_column": "aspect"},
        ["no column 'aspect'"],
    ),
    "missing label column": (
        lambda tmp: {
            "dataset_name": str(_write(tmp / "m.csv", "review,a,b\n好,1,0\n坏,0,1\n")),
            "label_column": ["a", "c"],
        },
        ["no column 'c'"],
    ),
    "duplicate label names": (
        lambda tmp: {"label_column": ["label", "label"]},
        ["'label' is named twice"],
    ),
    "no label columns": (
        lambda tmp: {"label_column": []},
        ["label_column", "[]"],
    ),
    "unknown label name": (
        lambda tmp: {
            "dataset_name": str(
                _write(tmp / "t.jsonl", '{"review": "好", "tags": ["x"]}\n{"review": "坏", "tags": ["z"]}\n')
            ),
            "label_column": "tags",
            "label_list": ["x", "y"],
            "invalid_labels": "error",
        },
        ["label 'z'", "column 'tags'", "one of the labels"],
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_multilabel_and_pair_input_is_one_line(case, tmp_path, tokenizer_dir, review_csv, capsys):
    make_overrides, expected = BAD_INPUTS[case]
    recipe = tiny_recipe(tmp_path, tokenizer_dir, review_csv, **make_overrides(tmp_path))
    assert hfsent_main(["train", str(recipe)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    [line] = [line for line in err.splitlines() if line.startswith("hfsent train: error: ")]
    for fragment in expected:
        assert fragment in line, line
    assert not (tmp_path / "out").exists()


def test_label_count_mismatch_between_checkpoint_and_recipe(tmp_path, tokenizer_dir, tiny_checkpoint, capsys):
    data = write_multilabel_csv(tmp_path / "multi.csv", n=20)
    recipe = tiny_recipe(
        tmp_path,
        tokenizer_dir,
        data,
        label_column=["good", "long"],
        model_name_or_path=str(tiny_checkpoint),
        config_overrides=None,
    )
    assert hfsent_main(["train", str(recipe)]) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert "binary (neg/pos)" in line and "2 labels ['good', 'long']" in line, line


# ------------------------------------------------------------------------------------------- ASAP


def write_asap_csv(path: Path, rows: list[tuple[str, dict[str, int]]]) -> Path:
    """An ASAP-format CSV (with the BOM ASAP's files start with)."""
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["index", "reviewbody", "star", *ASAP_ASPECTS])
        for i, (text, values) in enumerate(rows):
            writer.writerow([i, text, 4.0, *(values.get(a, -2) for a in ASAP_ASPECTS)])
    return path


def test_convert_asap_labels_and_pairs(tmp_path):
    rows = [
        ("服务员态度很好，菜也好吃", {"service_waiters_attitude": 1, "dish_taste": 1}),
        ("太吵了，口味一般", {"environment_noise": -1, "dish_taste": 0}),
    ]
    source = tmp_path / "asap"
    source.mkdir()
    for stem in ("train", "dev", "test"):
        write_asap_csv(source / f"{stem}_sample.csv", rows)
    summary = convert_asap(source, tmp_path / "labels", "labels")
    assert summary["labels"] == [
        "service_waiters_attitude:pos",
        "environment_noise:neg",
        "dish_taste:pos",
        "dish_taste:neu",
    ]
    first = json.loads((tmp_path / "labels" / "validation.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert first["aspects"] == ["service_waiters_attitude:pos", "dish_taste:pos"]
    assert first["dish_taste:pos"] == 1 and first["environment_noise:neg"] == 0

    summary = convert_asap(source, tmp_path / "pairs", "pairs")
    assert summary["neutral_left_out"] == {"train": 1, "validation": 1, "test": 1}
    pairs = [json.loads(line) for line in (tmp_path / "pairs" / "train.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [(p["aspect"], p["label"]) for p in pairs] == [("服务人员态度", 1), ("口感", 1), ("嘈杂情况", 0)]


def test_convert_asap_command_names_a_bad_value(tmp_path, capsys):
    source = tmp_path / "asap"
    source.mkdir()
    write_asap_csv(source / "train.csv", [("好", {"dish_taste": 3})])
    assert hfsent_main(["convert-asap", str(source), str(tmp_path / "out")]) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert "column 'dish_taste' holds '3'" in line and "train.csv" in line, line


@pytest.mark.skipif(not (SHARED / "data" / "asap_sample").is_dir(), reason="ASAP's public sample is not here")
def test_convert_asap_public_sample(tmp_path):
    summary = convert_asap(SHARED / "data" / "asap_sample", tmp_path, "pairs")
    assert summary["rows"]["train"] > 100
    assert {json.loads(line)["label"] for line in (tmp_path / "train.jsonl").read_text().splitlines()} == {0, 1}
