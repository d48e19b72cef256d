"""Multi-label and text-pair models through hfsent.predict, the stock pipeline, the handler and the CLI."""

from __future__ import annotations

import re

import pytest
import torch
from transformers import pipeline

import hfsent
from hfsent.endpoint_handler import EndpointHandler

from ..fixtures.helpers import run_cli, tiny_config

LABELS = {0: "food:pos", 1: "food:neg", 2: "service:pos"}
TEXTS = ["菜很好吃", "服务员态度很差，菜也凉了"]
ASPECTS = ["口感", "服务人员态度"]


def _save(model, tokenizer, path):
    with torch.no_grad():
        model.classifier.weight.normal_(0.0, 2.0)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture
def multilabel_dir(tmp_path, zh_tokenizer):
    torch.manual_seed(0)
    config = tiny_config(
        len(zh_tokenizer), problem_type="multi_label_classification", id2label=LABELS, threshold=[0.3, 0.5, 0.7]
    )
    return _save(hfsent.HfSentModel(config), zh_tokenizer, tmp_path / "multi")


@pytest.fixture
def pair_dir(tmp_path, zh_tokenizer):
    torch.manual_seed(1)
    return _save(hfsent.HfSentModel(tiny_config(len(zh_tokenizer), text_pairs=True)), zh_tokenizer, tmp_path / "pair")


def _probabilities(path, texts, pairs=None):
    model = hfsent.HfSentModel.from_pretrained(path).eval()
    tokenizer = hfsent.load_model_and_tokenizer(str(path))[1]
    with torch.no_grad():
        return model(**tokenizer(texts, pairs, padding=True, return_tensors="pt")).logits.sigmoid()


def test_predict_multilabel_gives_every_score_and_the_labels_over_their_thresholds(multilabel_dir):
    expected = _probabilities(multilabel_dir, TEXTS)
    results = hfsent.predict(TEXTS, str(multilabel_dir))
    for result, row in zip(results, expected.tolist(), strict=True):
        assert list(result["scores"]) == list(LABELS.values())
        assert list(result["scores"].values()) == pytest.approx(row, abs=1e-5)
        over = [name for name, p, t in zip(LABELS.values(), row, (0.3, 0.5, 0.7), strict=True) if p >= t]
        assert result["labels"] == over
    everything = hfsent.predict(TEXTS, str(multilabel_dir), threshold=1e-9)
    assert all(r["labels"] == list(LABELS.values()) for r in everything)
    with pytest.raises(ValueError, match="threshold has 2 values for 3 labels"):
        hfsent.predict(TEXTS, str(multilabel_dir), threshold=[0.5, 0.5])


def test_handler_answers_a_multilabel_model_as_the_pipeline_does(multilabel_dir):
    handler = EndpointHandler(str(multilabel_dir))
    clf = pipeline("text-classification", model=str(multilabel_dir))
    ours = handler({"inputs": TEXTS, "parameters": {"top_k": None}})
    theirs = clf(TEXTS, top_k=None)
    for a, b in zip(ours, theirs, strict=True):
        assert [d["label"] for d in a] == [d["label"] for d in b]
        assert [d["score"] for d in a] == pytest.approx([d["score"] for d in b], abs=1e-5)
    top = handler({"inputs": TEXTS[0]})
    assert len(top) == 1 and top[0]["label"] == theirs[0][0]["label"]


def test_pair_model_through_predict_pipeline_and_handler(pair_dir):
    expected = _probabilities(pair_dir, ASPECTS, TEXTS)[:, 1].tolist()
    results = hfsent.predict(ASPECTS, str(pair_dir), text_pairs=TEXTS)
    assert [r["positive_probability"] for r in results] == pytest.approx(expected, abs=1e-5)

    clf = pipeline("text-classification", model=str(pair_dir))
    rows = [clf({"text": a, "text_pair": t}, top_k=None) for a, t in zip(ASPECTS, TEXTS, strict=True)]
    pos = [next(d["score"] for d in row if d["label"] == "pos") for row in rows]
    assert pos == pytest.approx(expected, abs=1e-5)

    handler = EndpointHandler(str(pair_dir))
    batch = handler({"inputs": [{"text": a, "text_pair": t} for a, t in zip(ASPECTS, TEXTS, strict=True)]})
    one = handler({"inputs": {"text": ASPECTS[0], "text_pair": TEXTS[0]}, "parameters": {"top_k": None}})
    assert [d["label"] for d in batch] == [r["label"] for r in results]
    assert next(d["score"] for d in one if d["label"] == "pos") == pytest.approx(expected[0], abs=1e-5)


def test_a_text_object_without_a_pair_is_one_text_as_the_stock_pipeline_reads_it(tiny_checkpoint):
    from transformers import pipeline

    handler = EndpointHandler(str(tiny_checkpoint))
    assert handler({"inputs": {"text": "物流很快"}}) == handler({"inputs": "物流很快"})
    texts = ["物流很快", "太差了"]
    assert handler({"inputs": [{"text": t} for t in texts]}) == handler({"inputs": texts})
    stock = pipeline("text-classification", model=str(tiny_checkpoint))({"text": "物流很快"})
    stock = stock[0] if isinstance(stock, list) else stock
    [answer] = handler({"inputs": {"text": "物流很快"}})
    assert answer == {"label": stock["label"], "score": pytest.approx(stock["score"], abs=1e-5)}


def test_the_wrong_kind_of_input_is_refused_naming_what_to_send(pair_dir, tiny_checkpoint):
    with pytest.raises(ValueError, match="classifies text pairs"):
        EndpointHandler(str(pair_dir))({"inputs": "服务很好"})
    with pytest.raises(ValueError, match="classifies single texts"):
        EndpointHandler(str(tiny_checkpoint))({"inputs": {"text": "服务", "text_pair": "很好"}})
    with pytest.raises(ValueError, match=re.escape('classifies text pairs: send {"inputs": {"text": ..., "text_pair"')):
        EndpointHandler(str(pair_dir))({"inputs": {"text": "服务"}})  # one text, as the stock pipeline reads it
    with pytest.raises(ValueError, match=re.escape('a text pair is {"text": ..., "text_pair": ...}')):
        EndpointHandler(str(pair_dir))({"inputs": {"text": "服务", "pair": "很好"}})
    with pytest.raises(ValueError, match=r"mixes text pairs and single texts \(item 1 has a \"text_pair\", item 0"):
        EndpointHandler(str(pair_dir))({"inputs": [{"text": "服务"}, {"text": "服务", "text_pair": "很好"}]})
    with pytest.raises(ValueError, match="pass text_pairs"):
        hfsent.predict(["服务"], str(pair_dir))
    with pytest.raises(ValueError, match="leave text_pairs out"):
        hfsent.predict(["服务"], str(tiny_checkpoint), text_pairs=["很好"])


@pytest.mark.parametrize("kind", ["multi", "pair"])
def test_the_server_answers_as_the_handler(kind, multilabel_dir, pair_dir):
    """In this process (`hfsent serve` itself runs in tests/conformance/test_aspect_checkpoints.py): the same
    answers as the handler, and the wrong kind of input refused with the handler's words."""
    import threading

    from hfsent.inference import load_backend
    from hfsent.inference.server import InferenceServer

    from .test_serve import approx_answer, request

    path = multilabel_dir if kind == "multi" else pair_dir
    pairs = [{"text": a, "text_pair": t} for a, t in zip(ASPECTS, TEXTS, strict=True)]
    inputs = TEXTS if kind == "multi" else pairs
    payloads = [
        {"inputs": inputs[0]},
        {"inputs": inputs, "parameters": {"top_k": None}},
        {"inputs": inputs, "parameters": {"function_to_apply": "none", "top_k": 2}},
    ]
    handler = EndpointHandler(str(path))
    server = InferenceServer(("127.0.0.1", 0), load_backend(str(path), "torch", threads=1))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        for payload in payloads:
            status, answer = request(server.url, "POST", body=payload)
            assert status == 200 and answer == approx_answer(handler(payload))
        wrongs = [{"inputs": TEXTS[0]} if kind == "pair" else {"inputs": pairs[0]}]
        if kind == "multi":  # a threshold decides nothing in a ranking of labels (hfsent serve --threshold: refused)
            wrongs.append({"inputs": TEXTS[0], "parameters": {"threshold": 0.3}})
        for wrong in wrongs:
            status, answer = request(server.url, "POST", body=wrong)
            with pytest.raises(ValueError) as err:
                handler(wrong)
            assert (status, answer) == (400, {"error": str(err.value)})
        if kind == "multi":
            assert "multi-label model" in answer["error"] and 'leave "threshold" out' in answer["error"]
    finally:
        server.shutdown()
        server.server_close()


def test_serve_and_export_usage_errors_for_labels_and_pairs(
    multilabel_dir, pair_dir, tiny_checkpoint, tmp_path, capsys
):
    from hfsent import cli

    (tmp_path / "in.jsonl").write_text('{"aspect": "服务", "review": "很好"}\n', encoding="utf-8")
    cases = [
        (
            ["serve", str(multilabel_dir), "--threshold", "0.7"],
            f"{str(multilabel_dir)!r} is a multi-label model, whose answers rank every label by its score",
        ),
        (
            ["export", str(pair_dir), str(tmp_path / "out"), "--onnx", "--parity-file", str(tmp_path / "in.jsonl")],
            f"{str(pair_dir)!r} classifies text pairs: give --text-pair-column with --parity-file",
        ),
        (
            ["export", str(tiny_checkpoint), str(tmp_path / "out"), "--onnx", "--parity-file",
             str(tmp_path / "in.jsonl"), "--text-pair-column", "review"],
            f"{str(tiny_checkpoint)!r} classifies single texts: leave --text-pair-column out",
        ),
    ]  # fmt: skip
    for argv, message in cases:
        with pytest.raises(SystemExit) as exit_info:
            cli.main(argv)
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert f"hfsent {argv[0]}: error: {message}" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_predict_command_writes_a_probability_column_per_label(multilabel_dir, tmp_path):
    import csv

    source = tmp_path / "in.csv"
    source.write_text("id,review\n1,菜很好吃\n2,\n3,服务员态度很差\n", encoding="utf-8")
    proc = run_cli("predict", str(multilabel_dir), "-i", str(source), "-o", str(tmp_path / "out.csv"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = list(csv.DictReader((tmp_path / "out.csv").open(encoding="utf-8")))
    assert list(rows[0])[2:] == ["pred_labels", *(f"pred_prob_{n}" for n in LABELS.values()), "pred_error"]
    expected = hfsent.predict(["菜很好吃", "服务员态度很差"], str(multilabel_dir))
    for row, result in zip([rows[0], rows[2]], expected, strict=True):
        assert row["pred_labels"] == "|".join(result["labels"])
        assert [float(row[f"pred_prob_{n}"]) for n in LABELS.values()] == pytest.approx(
            list(result["scores"].values()), abs=1e-6
        )
    assert rows[1]["pred_error"] == "empty text"
    # the summary says the thresholds in a few words, not one number per label
    assert "(column 'review', thresholds 0.3 to 0.7 over 3 labels)" in proc.stdout + proc.stderr


def test_predict_command_reads_text_pairs(pair_dir, tmp_path):
    import json

    source = tmp_path / "in.jsonl"
    rows = [{"aspect": a, "review": t} for a, t in zip(ASPECTS, TEXTS, strict=True)]
    source.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "out.jsonl"
    args = ["predict", str(pair_dir), "-i", str(source), "-o", str(out), "--text-column", "aspect"]
    proc = run_cli(*args, "--text-pair-column", "review")
    assert proc.returncode == 0, proc.stderr[-2000:]
    written = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    expected = hfsent.predict(ASPECTS, str(pair_dir), text_pairs=TEXTS)
    got = [r["pred_positive_probability"] for r in written]
    assert got == pytest.approx([r["positive_probability"] for r in expected], abs=1e-6)
    assert "(columns 'aspect' and 'review', threshold 0.5)" in proc.stdout + proc.stderr

    missing = run_cli(*args)
    assert missing.returncode == 2 and "classifies text pairs: give --text-pair-column" in missing.stderr
    wrong = run_cli(*args, "--text-pair-column", "reviews")
    assert wrong.returncode == 2 and "'reviews' not found" in wrong.stderr
