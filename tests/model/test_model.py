"""The hfsent model through transformers' public entry points (Auto classes, pipeline)."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForSequenceClassification,
    BertConfig,
    BertForMaskedLM,
    BertForPreTraining,
    BertModel,
    pipeline,
)

import hfsent

from ..fixtures.helpers import PROBABILITY_TOLERANCE, threshold_between, tiny_config


def _logits(model, tokenizer, texts):
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    model.eval()
    with torch.no_grad():
        return model(**batch).logits


def test_config_defaults_and_registration():
    config = AutoConfig.for_model("hfsent")
    assert isinstance(config, hfsent.HfSentConfig)
    assert config.id2label == {0: "neg", 1: "pos"}
    assert config.threshold == 0.5 and config.pos_weight is None and config.pooling == "cls"
    with pytest.raises(ValueError, match="threshold"):
        hfsent.HfSentConfig(threshold=1.5)
    with pytest.raises(ValueError, match="pooling"):
        hfsent.HfSentConfig(pooling="mean")


def test_save_load_through_both_auto_classes(tiny_checkpoint, zh_tokenizer, reviews):
    config = json.loads((tiny_checkpoint / "config.json").read_text())
    assert config["model_type"] == "hfsent"
    assert config["auto_map"]["AutoModel"] == "modeling_hfsent.HfSentModel"
    assert config["auto_map"]["AutoModelForSequenceClassification"] == "modeling_hfsent.HfSentModel"
    assert (tiny_checkpoint / "modeling_hfsent.py").is_file()
    assert (tiny_checkpoint / "configuration_hfsent.py").is_file()

    original = hfsent.HfSentModel.from_pretrained(tiny_checkpoint)
    via_auto = AutoModel.from_pretrained(tiny_checkpoint)
    via_cls = AutoModelForSequenceClassification.from_pretrained(tiny_checkpoint)
    assert type(via_auto) is hfsent.HfSentModel and type(via_cls) is hfsent.HfSentModel
    expected = _logits(original, zh_tokenizer, reviews)
    assert expected.shape == (len(reviews), 2)
    assert torch.equal(expected[:, 0], torch.zeros(len(reviews)))
    assert torch.equal(_logits(via_auto, zh_tokenizer, reviews), expected)
    assert torch.equal(_logits(via_cls, zh_tokenizer, reviews), expected)


def test_pipeline_prints_neg_with_bce_probability(tiny_checkpoint, zh_tokenizer):
    model = hfsent.HfSentModel.from_pretrained(tiny_checkpoint)
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.bias.fill_(-2.0)  # z = -2 for every text: clearly negative
    model.save_pretrained(tiny_checkpoint)
    clf = pipeline("text-classification", model=str(tiny_checkpoint))

    expected_neg = 1.0 - 1.0 / (1.0 + math.exp(2.0))  # 1 - sigmoid(-2)
    [top] = clf(["质量太差了"])
    assert top["label"] == "neg"
    assert top["score"] == pytest.approx(expected_neg, abs=1e-6)

    [both] = clf(["质量太差了"], top_k=None)
    assert {d["label"] for d in both} == {"neg", "pos"}
    assert sum(d["score"] for d in both) == pytest.approx(1.0, abs=1e-6)
    assert dict((d["label"], d["score"]) for d in both)["pos"] == pytest.approx(1 - expected_neg, abs=1e-6)


def test_predict_applies_threshold(tiny_checkpoint, reviews):
    model = hfsent.HfSentModel.from_pretrained(tiny_checkpoint)
    tokenizer = hfsent.load_model_and_tokenizer(str(tiny_checkpoint))[1]
    logits = _logits(model, tokenizer, reviews)
    probs = torch.sigmoid(logits[:, 1]).tolist()
    # a cut between two probabilities, each more than PROBABILITY_TOLERANCE from it: predict's batches of 5 (other
    # padding) move P(pos) in its last bits, never across the cut (a cut ON one text's P(pos) flipped its label)
    threshold = threshold_between(probs)
    expected = ["pos" if p >= threshold else "neg" for p in probs]
    assert set(expected) == {"neg", "pos"}
    results = hfsent.predict(reviews, model, tokenizer, threshold=threshold, batch_size=5)
    assert [r["positive_probability"] for r in results] == pytest.approx(probs, abs=PROBABILITY_TOLERANCE)
    assert [r["label"] for r in results] == expected
    # the threshold stored in the config is the default
    model.config.threshold = threshold
    default = hfsent.predict(reviews, model, tokenizer)
    assert [r["label"] for r in default] == expected
    assert [r["score"] for r in default] == pytest.approx([r["score"] for r in results], abs=PROBABILITY_TOLERANCE)
    with pytest.raises(TypeError, match="item 1"):
        hfsent.predict(["好", None], model, tokenizer)


def _tiny_bert_config(vocab_size: int) -> BertConfig:
    return BertConfig(
        vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64
    )


@pytest.mark.parametrize("source_cls", [BertForMaskedLM, BertModel, BertForPreTraining])
def test_loads_encoder_from_plain_bert_checkpoints(tmp_path, source_cls):
    torch.manual_seed(1)
    source = source_cls(_tiny_bert_config(120))
    source.save_pretrained(tmp_path)
    source_state = source.state_dict()
    encoder = source if source_cls is BertModel else source.bert

    model, info = hfsent.HfSentModel.from_pretrained(tmp_path, output_loading_info=True)
    assert isinstance(model.config, hfsent.HfSentConfig)
    assert sorted(info["missing_keys"]) == ["classifier.bias", "classifier.weight"]  # the head is new
    encoder_state = encoder.state_dict()
    loaded = model.bert.state_dict()
    compared = [k for k in loaded if not k.startswith("pooler.")]
    assert len(compared) == len([k for k in encoder_state if not k.startswith("pooler.")])
    for key in compared:
        assert torch.equal(loaded[key], encoder_state[key]), key
    assert len(source_state) > len(compared) or source_cls is BertModel


def test_pooler_pooling_loads_pooler_from_bert_model(tmp_path):
    source = BertModel(_tiny_bert_config(120))
    source.save_pretrained(tmp_path)
    model = hfsent.HfSentModel.from_pretrained(tmp_path, pooling="pooler")
    assert torch.equal(model.bert.pooler.dense.weight, source.pooler.dense.weight)


def test_loss_is_bce_with_and_without_pos_weight(zh_tokenizer, reviews):
    batch = zh_tokenizer(reviews, padding=True, return_tensors="pt")
    labels = torch.tensor([1] * 6 + [0] * 6)
    for pos_weight in (None, 3.0):
        torch.manual_seed(0)
        model = hfsent.HfSentModel(tiny_config(len(zh_tokenizer), pos_weight=pos_weight)).eval()
        out = model(**batch, labels=labels)
        z = out.logits[:, 1]
        weight = None if pos_weight is None else torch.tensor(pos_weight)
        expected = nn.BCEWithLogitsLoss(pos_weight=weight)(z, labels.float())
        assert out.loss.item() == pytest.approx(expected.item(), rel=1e-6)
        for same in (labels.float(), labels.bool(), labels.int(), labels.view(-1, 1)):
            assert model(**batch, labels=same).loss.item() == pytest.approx(expected.item(), rel=1e-6)


@pytest.mark.parametrize("bad", [2, -1, 0.5])
def test_label_outside_0_1_is_rejected(zh_tokenizer, reviews, bad):
    model = hfsent.HfSentModel(tiny_config(len(zh_tokenizer)))
    batch = zh_tokenizer(reviews[:3], padding=True, return_tensors="pt")
    labels = torch.tensor([1, bad, 0], dtype=torch.float if isinstance(bad, float) else torch.long)
    with pytest.raises(ValueError, match=rf"label value {float(bad)!r}"):
        model(**batch, labels=labels)


@pytest.mark.parametrize("pos_weight", [None, 3.0])
def test_training_step_compiles_as_one_graph(zh_tokenizer, reviews, pos_weight):
    """A training step has no host synchronisation of hfsent's own: ``torch.compile(fullgraph=True)`` takes the
    forward with labels whole (a data-dependent branch, as a label check that reads a value back, breaks the
    graph), with the same loss and gradients as eager; a bad label still fails inside the compiled step."""
    batch = zh_tokenizer(reviews, padding=True, return_tensors="pt")
    labels = torch.tensor([1] * 6 + [0] * 6)
    torch.manual_seed(0)
    model = hfsent.HfSentModel(tiny_config(len(zh_tokenizer), pos_weight=pos_weight)).eval()
    eager = model(**batch, labels=labels).loss
    eager.backward()
    eager_grad = model.classifier.weight.grad.clone()
    model.zero_grad()
    torch._dynamo.reset()
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    loss = compiled(**batch, labels=labels).loss
    loss.backward()
    assert loss.item() == pytest.approx(eager.item(), rel=1e-5)
    torch.testing.assert_close(model.classifier.weight.grad, eager_grad)
    with pytest.raises(RuntimeError, match="labels must be 0"):
        compiled(**batch, labels=torch.tensor([2] * 12))
