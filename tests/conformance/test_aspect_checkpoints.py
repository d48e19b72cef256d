"""The checkpoints of the two ASAP recipes (many labels, text pairs) on the ecosystem's paths.

Each is built once per session by the real entry points: ``hfsent convert-asap`` on ASAP's public sample, then
``hfsent train recipes/finetune/asap-{labels,pairs}.yaml`` with only sizes and budget overridden. Then: the stock
pipeline, the Auto classes in a fresh process without hfsent (``trust_remote_code``), the ``handler.py`` saved
with the model (also without hfsent), ``hfsent predict``, and peft LoRA with its default targets.
"""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

import hfsent
from hfsent.endpoint_handler import EndpointHandler

from ..fixtures.helpers import PROBABILITY_TOLERANCE, ROOT, SHARED, decisive, run_cli, run_without_hfsent
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


def _data(checkpoint: Path, split: str = "test") -> list[dict]:
    """The rows `hfsent convert-asap` wrote beside ``checkpoint`` (see `_build`)."""
    mode = checkpoint.name.removeprefix("out-")
    path = checkpoint.parent / f"asap-{mode}" / f"{split}.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _scores(answer: list[dict]) -> dict[str, float]:
    return {d["label"]: d["score"] for d in answer}


def test_serve_answers_a_multilabel_model_as_the_pipeline_and_the_handler(asap_labels, tmp_path, local_http_client):
    """``hfsent serve`` on the multi-label checkpoint speaks the hosted text-classification task for a multi-label
    model: every label with its sigmoid score, the best first (``InferenceClient.text_classification`` returns the
    first), equal to the stock pipeline and the handler within PROBABILITY_TOLERANCE (the server batches texts
    by length, the pipeline one at a time)."""
    from huggingface_hub import InferenceClient

    from ..inference.test_serve import request as http_request
    from ..inference.test_serve import start_server, stop_server

    texts = [row["review"] for row in _data(asap_labels)[:6]]
    names = list(json.loads((asap_labels / "config.json").read_text())["id2label"].values())
    handler = EndpointHandler(str(asap_labels))
    expected = pipeline("text-classification", model=str(asap_labels))(texts, top_k=None, truncation=True)
    proc, url, lines = start_server(asap_labels, log_path=tmp_path / "serve.log", banner=f"{len(names)} labels")
    try:
        client = InferenceClient(model=url, timeout=30)
        for text, theirs in zip(texts[:3], expected[:3], strict=True):
            top = client.text_classification(text)  # the best label (a near tie may come first either way)
            assert top.score == pytest.approx(theirs[0]["score"], abs=PROBABILITY_TOLERANCE)
            assert top.score == pytest.approx(_scores(theirs)[top.label], abs=PROBABILITY_TOLERANCE)
        status, answer = http_request(url, "POST", body={"inputs": texts, "parameters": {"top_k": None}})
        assert status == 200 and len(answer) == len(texts)
        for ours, theirs in zip(answer, expected, strict=True):
            assert _scores(ours) == pytest.approx(_scores(theirs), abs=PROBABILITY_TOLERANCE)
            assert set(_scores(ours)) == set(names)
        for parameters in ({"top_k": 5}, {"function_to_apply": "softmax", "top_k": 3}, {"function_to_apply": "none"}):
            payload = {"inputs": texts[1], "parameters": parameters}
            status, answer = http_request(url, "POST", body=payload)
            assert status == 200
            assert _scores(answer) == pytest.approx(_scores(handler(payload)), abs=PROBABILITY_TOLERANCE)
        status, answer = http_request(url, "POST", body={"inputs": {"text": "服务人员态度", "text_pair": REVIEW}})
        assert status == 400 and answer["error"].startswith("this model classifies single texts: ")
        with pytest.raises(ValueError, match=re.escape(answer["error"])):
            handler({"inputs": {"text": "服务人员态度", "text_pair": REVIEW}})
        assert http_request(url)[1]["multi_label"] is True
    finally:
        stop_server(proc, lines)


def test_serve_answers_a_text_pair_model_as_the_pipeline_and_the_handler(asap_pairs, tmp_path, local_http_client):
    """``hfsent serve`` on the pair checkpoint takes the hosted payload of text pairs, ``{"inputs": {"text": ...,
    "text_pair": ...}}`` or a list of them: P(pos) equal to the stock pipeline's, labels equal to the handler's."""
    from huggingface_hub import InferenceClient

    from ..inference.test_serve import request as http_request
    from ..inference.test_serve import start_server, stop_server

    rows = _data(asap_pairs)[:6]
    pairs = [{"text": row["aspect"], "text_pair": row["review"]} for row in rows]
    clf = pipeline("text-classification", model=str(asap_pairs))
    expected = [_scores(clf(pair, top_k=None, truncation="only_second"))["pos"] for pair in pairs]
    handler = EndpointHandler(str(asap_pairs))
    proc, url, lines = start_server(asap_pairs, log_path=tmp_path / "serve.log", banner="threshold 0.5, text pairs")
    try:
        # The client's text-classification request: its annotation says str, and it sends any input as "inputs",
        # here the hosted task's text pair; it returns the first (decided) label.
        top = InferenceClient(model=url, timeout=30).text_classification(pairs[0])
        p = top.score if top.label == "pos" else 1 - top.score
        assert p == pytest.approx(expected[0], abs=PROBABILITY_TOLERANCE)
        assert top.label == handler({"inputs": pairs[0]})[0]["label"]
        status, answer = http_request(url, "POST", body={"inputs": pairs, "parameters": {"top_k": None}})
        assert status == 200 and len(answer) == len(pairs)
        assert [_scores(a)["pos"] for a in answer] == pytest.approx(expected, abs=PROBABILITY_TOLERANCE)
        decided = handler({"inputs": pairs})
        for ours, theirs, p in zip(answer, decided, expected, strict=True):
            if decisive([p])[0]:
                assert ours[0]["label"] == theirs["label"]
        status, answer = http_request(url, "POST", body={"inputs": REVIEW})
        assert status == 400 and answer["error"].startswith("this model classifies text pairs: ")
        with pytest.raises(ValueError, match=re.escape(answer["error"])):
            handler({"inputs": REVIEW})
        assert http_request(url)[1]["text_pairs"] is True
    finally:
        stop_server(proc, lines)


# `hfsent export` prints one line per graph: a neg/pos model's P(pos), a multi-label model's every label's probability
PARITY = re.compile(
    r"(model(?:_int8)?\.onnx): max \|P\((?:pos|label)\) - torch\| = (\S+), (?:labels|decisions) agree on (\d+)/(\d+)"
)


@pytest.mark.parametrize("kind", ["labels", "pairs"])
def test_export_onnx_with_parity_and_predict_on_the_export(kind, request, tmp_path):
    """``hfsent export --onnx --quantize int8`` on both checkpoints (the pair graph takes token_type_ids), parity
    printed on the test split; then ``hfsent predict`` on the export folder (ONNX Runtime, int8) gives torch's
    labels wherever torch's probability lies further from the threshold than the printed int8 difference."""
    from ..inference.test_export import INT8_TOLERANCE

    path = request.getfixturevalue(f"asap_{kind}")
    rows = _data(path)
    source = tmp_path / "test.jsonl"
    source.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    columns = (
        ["--text-column", "review"] if kind == "labels" else ["--text-column", "aspect", "--text-pair-column", "review"]
    )
    out = tmp_path / "onnx"
    proc = run_cli(
        "export", str(path), str(out), "--onnx", "--quantize", "int8", "--parity-file", str(source), *columns,
        "--parity-samples", str(len(rows)), "--threads", "1",
    )  # fmt: skip
    print(proc.stdout)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    config = json.loads((out / "config.json").read_text())
    names = list(config["id2label"].values())
    reports = {m[0]: (float(m[1]), int(m[2]), int(m[3])) for m in PARITY.findall(proc.stdout)}
    assert set(reports) == {"model.onnx", "model_int8.onnx"}, proc.stdout
    decisions = len(rows) * (len(names) if kind == "labels" else 1)
    assert reports["model.onnx"][0] < PROBABILITY_TOLERANCE and reports["model.onnx"][2] == decisions
    int8_diff = reports["model_int8.onnx"][0]
    assert int8_diff < INT8_TOLERANCE

    import onnx

    graph_inputs = [i.name for i in onnx.load(str(out / "model.onnx"), load_external_data=False).graph.input]
    assert ("token_type_ids" in graph_inputs) == (kind == "pairs")

    predicted = tmp_path / "predicted.jsonl"
    proc = run_cli("predict", str(out), "-i", str(source), "-o", str(predicted), *columns, "--threads", "1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    written = [json.loads(line) for line in predicted.read_text(encoding="utf-8").splitlines()]
    texts = [r["review"] if kind == "labels" else r["aspect"] for r in rows]
    pairs = None if kind == "labels" else [r["review"] for r in rows]
    torch_results = hfsent.predict(texts, str(path), text_pairs=pairs)
    clear = 0
    if kind == "labels":
        thresholds = dict(zip(names, hfsent.HfSentConfig.from_pretrained(path).label_thresholds(), strict=True))
        for row, result in zip(written, torch_results, strict=True):
            chosen = set(filter(None, row["pred_labels"].split("|")))
            for name, p in result["scores"].items():
                if decisive([p], thresholds[name], 1.01 * int8_diff)[0]:
                    clear += 1
                    assert (name in chosen) == (name in result["labels"]), (name, p, row[f"pred_prob_{name}"])
    else:
        for row, result in zip(written, torch_results, strict=True):
            if decisive([result["positive_probability"]], 0.5, 1.01 * int8_diff)[0]:
                clear += 1
                assert row["pred_label"] == result["label"], (row, result)
    print(f"{kind}: torch's labels on {clear}/{decisions} decisions clear of the threshold by the int8 difference")
    assert clear > 0
