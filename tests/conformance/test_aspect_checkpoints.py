"""The checkpoints of the two ASAP recipes (many labels, text pairs) on the ecosystem's paths.

Each is built once per session by the real entry points: ``hfsent convert-asap`` on ASAP's public sample, then
``hfsent train recipes/finetune/asap-{labels,pairs}.yaml`` with only sizes and budget overridden. Then: the stock
pipeline, the Auto classes in a fresh process without hfsent (``trust_remote_code``), the ``handler.py`` saved
with the model (also without hfsent), ``hfsent predict``, and peft LoRA with its default targets.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

import hfsent
from hfsent.endpoint_handler import EndpointHandler

from ..fixtures.helpers import ROOT, SHARED, run_cli, run_without_hfsent
from .conftest import TINY

ASAP_SAMPLE = SHARED / "data" / "asap_sample"
pytestmark = pytest.mark.skipif(not ASAP_SAMPLE.is_dir(), reason="ASAP's public sample is not here")
REVIEW = "服务员态度很好，菜也好吃，就是有点贵"
BUDGET = ["--num_train_epochs", "1", "--max_length", "64", "--tokenizer_vocab_size", "800", "--report_to", "none"]


def _build(root: Path, mode: str) -> Path:
    data, out = root / f"asap-{mode}", root / f"out-{mode}"
    assert hfsent_cli("convert-asap", str(ASAP_SAMPLE), str(data), "--mode", mode) == 0
    recipe = ROOT / "recipes" / "finetune" / f"asap-{mode}.yaml"
    overrides = ["--dataset_name", str(data), "--output_dir", str(out)]
    overrides += ["--config_overrides", f"{TINY},max_position_embeddings=64", *BUDGET]
    assert hfsent_cli("train", str(recipe), *overrides) == 0
    return out


def hfsent_cli(*args: str) -> int:
    from hfsent.cli import main

    return main(list(args))


@pytest.fixture(scope="session")
def asap_labels(tmp_path_factory) -> Path:
    return _build(tmp_path_factory.mktemp("asap"), "labels")


@pytest.fixture(scope="session")
def asap_pairs(tmp_path_factory) -> Path:
    return _build(tmp_path_factory.mktemp("asap"), "pairs")


def test_labels_checkpoint_is_a_stock_multilabel_classifier(asap_labels):
    config = json.loads((asap_labels / "config.json").read_text())
    assert config["problem_type"] == "multi_label_classification"
    names = list(config["id2label"].values())
    assert len(names) > 20 and all(":" in n for n in names)
    model = AutoModelForSequenceClassification.from_pretrained(asap_labels).eval()
    with torch.no_grad():
        probs = model(**AutoTokenizer.from_pretrained(asap_labels)(REVIEW, return_tensors="pt")).logits.sigmoid()[0]
    rows = pipeline("text-classification", model=str(asap_labels))([REVIEW], top_k=None)[0]
    assert {d["label"] for d in rows} == set(names)
    scores = {d["label"]: d["score"] for d in rows}
    assert [scores[n] for n in names] == pytest.approx(probs.tolist(), abs=1e-5)
    assert hfsent.predict(REVIEW, str(asap_labels))[0]["scores"] == pytest.approx(scores, abs=1e-5)
    results = json.loads((asap_labels / "all_results.json").read_text())
    assert results["labels"] == names and "test_f1_macro" in results


def test_pairs_checkpoint_takes_text_pairs_everywhere(asap_pairs):
    config = json.loads((asap_pairs / "config.json").read_text())
    assert config["text_pairs"] is True and config["id2label"] == {"0": "neg", "1": "pos"}
    expected = hfsent.predict("服务人员态度", str(asap_pairs), text_pairs=REVIEW)[0]["positive_probability"]
    row = pipeline("text-classification", model=str(asap_pairs))(
        {"text": "服务人员态度", "text_pair": REVIEW}, top_k=None
    )
    assert next(d["score"] for d in row if d["label"] == "pos") == pytest.approx(expected, abs=1e-5)
    answer = EndpointHandler(str(asap_pairs))(
        {"inputs": {"text": "服务人员态度", "text_pair": REVIEW}, "parameters": {"top_k": None}}
    )
    assert next(d["score"] for d in answer if d["label"] == "pos") == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize("kind", ["labels", "pairs"])
def test_auto_classes_and_handler_without_hfsent(kind, request):
    path = request.getfixturevalue(f"asap_{kind}")
    inputs = REVIEW if kind == "labels" else {"text": "服务人员态度", "text_pair": REVIEW}
    code = """
    import importlib.util, torch
    from transformers import AutoModel, AutoModelForSequenceClassification
    path, inputs = sys.argv[1], json.loads(sys.argv[2])
    for auto in (AutoModel, AutoModelForSequenceClassification):
        model = auto.from_pretrained(path, trust_remote_code=True)
        assert type(model).__name__ == "HfSentModel", type(model)
    spec = importlib.util.spec_from_file_location("handler", path + "/handler.py")
    handler = importlib.util.module_from_spec(spec)
    sys.modules["handler"] = handler  # as the Inference Endpoints toolkit imports it
    spec.loader.exec_module(handler)
    emit(handler.EndpointHandler(path)({"inputs": inputs, "parameters": {"top_k": None}}))
    """
    answer = run_without_hfsent(code, str(path), json.dumps(inputs, ensure_ascii=False))
    expected = EndpointHandler(str(path))({"inputs": inputs, "parameters": {"top_k": None}})
    assert {d["label"]: d["score"] for d in answer} == pytest.approx({d["label"]: d["score"] for d in expected})


def test_predict_command_on_both(asap_labels, asap_pairs, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"aspect": "服务人员态度", "review": REVIEW}, ensure_ascii=False) + "\n", "utf-8")
    with ThreadPoolExecutor(1) as pool:  # the two commands side by side
        labels = pool.submit(
            run_cli,
            "predict", str(asap_labels), "-i", str(source), "-o", str(tmp_path / "l.jsonl"), "--text-column", "review",
        )  # fmt: skip
        proc = run_cli(
            "predict", str(asap_pairs), "-i", str(source), "-o", str(tmp_path / "p.jsonl"),
            "--text-column", "aspect", "--text-pair-column", "review",
        )  # fmt: skip
        labels = labels.result()
    assert labels.returncode == 0, labels.stderr[-2000:]
    row = json.loads((tmp_path / "l.jsonl").read_text(encoding="utf-8"))
    assert sum(k.startswith("pred_prob_") for k in row) == len(
        json.loads((asap_labels / "config.json").read_text())["id2label"]
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads((tmp_path / "p.jsonl").read_text(encoding="utf-8"))["pred_label"] in ("neg", "pos")


@pytest.mark.parametrize("kind", ["labels", "pairs"])
def test_peft_lora_with_default_targets(kind, request):
    from peft import LoraConfig, TaskType, get_peft_model

    path = request.getfixturevalue(f"asap_{kind}")
    model = hfsent.HfSentModel.from_pretrained(path)
    peft_model = get_peft_model(model, LoraConfig(task_type=TaskType.SEQ_CLS, r=4))  # default target modules
    trainable = [n for n, p in peft_model.named_parameters() if p.requires_grad]
    assert any("lora_" in n for n in trainable) and any("classifier" in n for n in trainable)
    batch = AutoTokenizer.from_pretrained(path)(["口感", "服务"], [REVIEW, REVIEW], return_tensors="pt", padding=True)
    columns = model.config.num_labels if kind == "labels" else 2
    assert peft_model(**batch).logits.shape == (2, columns)


def test_push_publishes_a_card_with_a_model_index_entry_per_label(asap_labels, hub):
    from huggingface_hub import ModelCard

    assert hfsent_cli("push", str(asap_labels), "user/asap-labels") == 0
    card = ModelCard(hub.repo("user/asap-labels").files["README.md"].decode())
    names = list(json.loads((asap_labels / "config.json").read_text())["id2label"].values())
    results = json.loads((asap_labels / "all_results.json").read_text())
    per_label = [r for r in card.data.eval_results if r.metric_config]
    expected = {
        (name, metric)
        for name in names
        for metric in ("f1", "precision", "recall", "roc_auc")
        if results[f"test_{metric}/{name}"] == results[f"test_{metric}/{name}"]  # not NaN
    }
    assert {(r.metric_config, r.metric_type) for r in per_label} == expected
    for r in per_label:
        assert r.metric_value == pytest.approx(results[f"test_{r.metric_type}/{r.metric_config}"])
    assert "| 0 | `" + names[0] + "` |" in card.text  # the per-label table
    assert "negative sentiment" not in card.text
