"""Multi-label hfsent models: K labels, each its own logit and sigmoid, through transformers' entry points."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForSequenceClassification, BertForSequenceClassification, pipeline

import hfsent

from ..fixtures.helpers import run_without_hfsent, tiny_config

ASPECTS = {0: "food:pos", 1: "food:neg", 2: "service:pos"}
MULTI = dict(problem_type="multi_label_classification", id2label=ASPECTS)


@pytest.fixture
def multilabel_checkpoint(tmp_path, zh_tokenizer):
    torch.manual_seed(0)
    model = hfsent.HfSentModel(tiny_config(len(zh_tokenizer), threshold=[0.3, 0.5, 0.7], **MULTI))
    with torch.no_grad():
        model.classifier.weight.normal_(0.0, 2.0)
    out = tmp_path / "multi"
    model.save_pretrained(out)
    zh_tokenizer.save_pretrained(out)
    return out


def test_multilabel_config_and_head(zh_tokenizer):
    config = tiny_config(len(zh_tokenizer), pos_weight=[1.0, 2.0, 3.0], **MULTI)
    assert config.num_labels == 3 and not config.is_binary
    assert config.label2id == {"food:pos": 0, "food:neg": 1, "service:pos": 2}
    assert config.label_thresholds() == [0.5, 0.5, 0.5]
    model = hfsent.HfSentModel(config)
    assert model.classifier.weight.shape == (3, config.hidden_size)
    batch = zh_tokenizer(["好吃", "服务差"], padding=True, return_tensors="pt")
    labels = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    out = model(**batch, labels=labels)
    assert out.logits.shape == (2, 3)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(
        out.logits, labels, pos_weight=torch.tensor([1.0, 2.0, 3.0])
    )
    torch.testing.assert_close(out.loss, expected)


@pytest.mark.parametrize(
    "labels, message",
    [
        (torch.tensor([[1.0, 2.0, 0.0]]), r"0 or 1 for each label; got label value 2\.0"),
        (torch.tensor([[1.0, 0.0]]), r"shape \(batch, 3\).*got shape \(1, 2\)"),
    ],
)
def test_multilabel_bad_labels_name_the_value(zh_tokenizer, labels, message):
    model = hfsent.HfSentModel(tiny_config(len(zh_tokenizer), **MULTI))
    with pytest.raises(ValueError, match=message):
        model(**zh_tokenizer(["好吃"], return_tensors="pt"), labels=labels)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"threshold": [0.5, 0.5]}, "threshold has 2 values but the model has 3 labels"),
        ({"threshold": [0.5, 1.0, 0.5]}, "threshold must be strictly between 0 and 1"),
        ({"pos_weight": [1.0, -1.0, 1.0]}, "pos_weight must be a positive number"),
    ],
)
def test_multilabel_per_label_settings_are_checked(kwargs, message):
    with pytest.raises(ValueError, match=message):
        hfsent.HfSentConfig(**MULTI, **kwargs)
    with pytest.raises(ValueError, match="binary"):
        hfsent.HfSentConfig(threshold=[0.4, 0.6])


def test_other_label_counts_match_stock_bert(zh_tokenizer):
    """Single-label and regression heads compute the stock BertForSequenceClassification's losses."""
    batch = zh_tokenizer(["好吃", "服务差"], padding=True, return_tensors="pt")
    for num_labels, problem_type, labels in [
        (3, None, torch.tensor([0, 2])),
        (1, None, torch.tensor([0.3, -1.0])),
        (4, "multi_label_classification", torch.tensor([[1.0, 0, 0, 1], [0, 0, 0, 0]])),
    ]:
        config = tiny_config(len(zh_tokenizer), num_labels=num_labels, problem_type=problem_type, pooling="pooler")
        torch.manual_seed(0)
        ours = hfsent.HfSentModel(config).eval()
        stock = BertForSequenceClassification(config).eval()
        stock.load_state_dict(ours.state_dict())
        mine, theirs = ours(**batch, labels=labels), stock(**batch, labels=labels)
        torch.testing.assert_close(mine.logits, theirs.logits)
        torch.testing.assert_close(mine.loss, theirs.loss)


def test_multilabel_pipeline_gives_every_label_its_sigmoid(multilabel_checkpoint, zh_tokenizer):
    texts = ["菜很好吃", "服务员态度很差"]
    model = AutoModelForSequenceClassification.from_pretrained(multilabel_checkpoint).eval()
    with torch.no_grad():
        probs = torch.sigmoid(model(**zh_tokenizer(texts, padding=True, return_tensors="pt")).logits)
    rows = pipeline("text-classification", model=str(multilabel_checkpoint))(texts, top_k=None)
    for row, expected in zip(rows, probs.tolist(), strict=True):
        assert {d["label"] for d in row} == set(ASPECTS.values())
        scores = {d["label"]: d["score"] for d in row}
        assert [scores[ASPECTS[i]] for i in range(3)] == pytest.approx(expected, abs=1e-4)


def test_multilabel_checkpoint_loads_without_hfsent(multilabel_checkpoint):
    code = """
    from transformers import AutoModelForSequenceClassification, pipeline
    path = sys.argv[1]
    model = AutoModelForSequenceClassification.from_pretrained(path, trust_remote_code=True)
    rows = pipeline("text-classification", model=path, trust_remote_code=True)(["菜很好吃"], top_k=None)
    emit({"labels": model.config.id2label, "threshold": model.config.threshold, "n": len(rows[0]),
          "shape": list(model.classifier.weight.shape)})
    """
    out = run_without_hfsent(code, str(multilabel_checkpoint))
    assert out["labels"] == {str(k): v for k, v in ASPECTS.items()}
    assert out["threshold"] == [0.3, 0.5, 0.7]
    assert out["n"] == 3 and out["shape"][0] == 3
