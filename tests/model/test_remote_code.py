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


def test_config_names_a_tokenizer_class_old_pipelines_load(tiny_checkpoint):
    """transformers < 4.54's pipeline() loads a tokenizer for a remote-code model only when config.json names a
    ``tokenizer_class`` (else "'NoneType' object is not callable" on 4.51.3, the Inference Toolkit's version;
    `.ci/remote_code_matrix.py` runs it there). The class named must be the tokenizer saved beside the model."""
    import json

    from transformers import AutoTokenizer

    config = json.loads((tiny_checkpoint / "config.json").read_text(encoding="utf-8"))
    assert config["tokenizer_class"] == "BertTokenizer"
    assert type(AutoTokenizer.from_pretrained(tiny_checkpoint)).__name__ == config["tokenizer_class"]


def test_checkpoint_without_tokenizer_class_predicts_the_same(tiny_checkpoint, reviews):
    """A checkpoint saved before config.json named a ``tokenizer_class`` loads and predicts as before."""
    import json
    import shutil

    expected = [r["positive_probability"] for r in hfsent.predict(reviews, str(tiny_checkpoint))]
    old = tiny_checkpoint.parent / "saved-before"
    shutil.copytree(tiny_checkpoint, old)
    config = json.loads((old / "config.json").read_text(encoding="utf-8"))
    del config["tokenizer_class"]
    (old / "config.json").write_text(json.dumps(config), encoding="utf-8")

    got = [r["positive_probability"] for r in hfsent.predict(reviews, str(old))]
    assert got == pytest.approx(expected, abs=1e-6)
