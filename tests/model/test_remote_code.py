"""A saved checkpoint loads in a fresh process where hfsent is not importable (remote code)."""

from __future__ import annotations

import pytest

import hfsent

from ..fixtures.helpers import run_without_hfsent

LOAD_WITHOUT_HFSENT = """
import json
import torch
from transformers import AutoModel, AutoTokenizer, pipeline

try:
    import hfsent  # noqa: F401
    raise SystemExit("hfsent must not be importable here")
except ImportError:
    pass

path, texts = sys.argv[1], json.loads(sys.argv[2])
tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=True)
model = AutoModel.from_pretrained(path, trust_remote_code=True).eval()
with torch.no_grad():
    z = model(**tokenizer(texts, padding=True, return_tensors="pt")).logits[:, 1]
clf = pipeline("text-classification", model=path, trust_remote_code=True)
emit({
    "model_class": type(model).__module__ + "." + type(model).__name__,
    "auto_model_probs": torch.sigmoid(z).tolist(),
    "pipeline": clf(texts, top_k=None),
})
"""


def test_checkpoint_loads_without_hfsent(tiny_checkpoint, reviews):
    import json

    expected = [r["positive_probability"] for r in hfsent.predict(reviews, str(tiny_checkpoint))]
    out = run_without_hfsent(LOAD_WITHOUT_HFSENT, str(tiny_checkpoint), json.dumps(reviews))

    assert out["model_class"].startswith("transformers_modules.")
    assert out["model_class"].endswith("modeling_hfsent.HfSentModel")
    assert out["auto_model_probs"] == pytest.approx(expected, abs=1e-5)
    pipeline_pos = [next(d["score"] for d in row if d["label"] == "pos") for row in out["pipeline"]]
    assert pipeline_pos == pytest.approx(expected, abs=1e-5)
