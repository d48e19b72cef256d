"""Checkpoints saved by earlier hfsent versions load and predict as they did when they were saved.

``tests/fixtures/checkpoints/binary-951aabe`` is a tiny binary checkpoint (with its tokenizer and the remote code
of that version) written by ``make_binary_951aabe.py`` at commit 951aabe, before multi-label heads existed;
``expected.json`` holds the probabilities that version computed.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer, pipeline

import hfsent

from ..fixtures.helpers import run_without_hfsent

BINARY_951AABE = Path(__file__).resolve().parents[1] / "fixtures" / "checkpoints" / "binary-951aabe"
EXPECTED = json.loads((BINARY_951AABE / "expected.json").read_text(encoding="utf-8"))


@pytest.fixture
def old_checkpoint(tmp_path) -> Path:
    """A copy of the saved checkpoint (loading must not write into the repository)."""
    return Path(shutil.copytree(BINARY_951AABE, tmp_path / "binary-951aabe"))


def test_old_binary_checkpoint_loads_with_no_missing_or_unexpected_key(old_checkpoint):
    model, info = AutoModelForSequenceClassification.from_pretrained(old_checkpoint, output_loading_info=True)
    assert isinstance(model, hfsent.HfSentModel)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    assert model.config.num_labels == 2
    assert model.config.id2label == {0: "neg", 1: "pos"}
    assert model.config.problem_type is None
    assert model.classifier.weight.shape == (1, model.config.hidden_size)
    assert model.config.threshold == pytest.approx(0.45)
    assert model.config.pos_weight == pytest.approx(1.5)


# The recorded probabilities came from one machine and one padded batch. Another CPU's kernels (AVX2 vs AVX-512) or
# another batch composition moves this tiny model's P(pos) by up to ~6e-5 (measured: the same texts scored one at a
# time vs padded together on one machine); a changed weight, pooling or head moves it by more than 1e-2. So: the
# recorded values within 1e-3, the decisions exactly (no text lies within 0.08 of the 0.45 threshold), and the old
# remote code vs today's hfsent on the same batch in the same machine within 1e-5.
ACROSS_MACHINES = 1e-3
SAME_MACHINE = 1e-5


def current_probabilities(path: Path, texts: list[str]) -> list[float]:
    """P(pos) of ``texts`` in one padded batch through today's hfsent (``AutoModel``)."""
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval()
    with torch.no_grad():
        logits = model(**tokenizer(texts, padding=True, return_tensors="pt")).logits
    assert logits.shape == (len(texts), 2)
    assert logits[:, 0].abs().max().item() == 0.0
    return torch.sigmoid(logits[:, 1]).tolist()


def test_old_binary_checkpoint_predicts_as_before(old_checkpoint):
    texts, expected = EXPECTED["texts"], EXPECTED["positive_probability"]
    assert current_probabilities(old_checkpoint, texts) == pytest.approx(expected, abs=ACROSS_MACHINES)

    # the pipeline and hfsent.predict batch (and so pad) differently
    rows = pipeline("text-classification", model=str(old_checkpoint))(texts, top_k=None)
    assert [next(d["score"] for d in row if d["label"] == "pos") for row in rows] == pytest.approx(
        expected, abs=ACROSS_MACHINES
    )
    assert [max(row, key=lambda d: d["score"])["label"] for row in rows] == [
        "pos" if p > 0.5 else "neg" for p in expected
    ]

    results = hfsent.predict(texts, str(old_checkpoint))
    assert [r["positive_probability"] for r in results] == pytest.approx(expected, abs=ACROSS_MACHINES)
    assert [r["label"] for r in results] == EXPECTED["labels"]  # at its threshold 0.45, no text within 0.08 of it


def test_old_binary_checkpoint_with_its_own_remote_code(old_checkpoint):
    code = """
    import torch
    from transformers import AutoModel, AutoTokenizer
    path, texts = sys.argv[1], json.loads(sys.argv[2])
    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=True)
    model = AutoModel.from_pretrained(path, trust_remote_code=True).eval()
    with torch.no_grad():
        z = model(**tokenizer(texts, padding=True, return_tensors="pt")).logits[:, 1]
    emit(torch.sigmoid(z).tolist())
    """
    texts = EXPECTED["texts"]
    probs = run_without_hfsent(code, str(old_checkpoint), json.dumps(texts))
    assert probs == pytest.approx(EXPECTED["positive_probability"], abs=ACROSS_MACHINES)
    # the 951aabe code and today's model compute the same function: same batch, same machine
    assert probs == pytest.approx(current_probabilities(old_checkpoint, texts), abs=SAME_MACHINE)
