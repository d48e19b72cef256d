"""handler.py: the Inference Endpoints handler, loaded from the downloaded snapshot as the toolkit does."""

from __future__ import annotations

import json

import pytest

import hfsent
from hfsent.endpoint_handler import format_predictions, parse_payload

from ..fixtures.helpers import NEGATIVE_REVIEWS, POSITIVE_REVIEWS, run_without_hfsent

# What the Inference Endpoints toolkit does with a repository that has a handler.py (no hfsent installed).
TOOLKIT = """
import importlib.util
from huggingface_hub import snapshot_download

try:
    import hfsent  # noqa: F401
    raise SystemExit("hfsent must not be importable here")
except ImportError:
    pass

model_dir = snapshot_download(sys.argv[1])
texts = json.loads(sys.argv[2])
sys.path.insert(0, model_dir)
spec = importlib.util.spec_from_file_location("handler", f"{model_dir}/handler.py")
module = importlib.util.module_from_spec(spec)
sys.modules["handler"] = module
spec.loader.exec_module(module)
handler = module.EndpointHandler(model_dir)

answers = {
    "single": handler({"inputs": texts[0]}),
    "batch": handler({"inputs": texts}),
    "batch_both": handler({"inputs": texts, "parameters": {"top_k": None}}),
    "single_both": handler({"inputs": texts[0], "parameters": {"top_k": 2}}),
    "truncated": handler({"inputs": texts[0] * 50, "parameters": {"max_length": 16}}),
}
errors = {}
for name, payload in {
    "not an object": ["text"],
    "no inputs": {"text": "好"},
    "number input": {"inputs": 3},
    "mixed list": {"inputs": ["好", None]},
    "bad top_k": {"inputs": "好", "parameters": {"top_k": 0}},
    "unknown parameter": {"inputs": "好", "parameters": {"temperature": 1}},
}.items():
    try:
        handler(payload)
        errors[name] = None
    except ValueError as err:
        errors[name] = str(err)
emit({"answers": answers, "errors": errors})
"""


def test_handler_from_the_pushed_snapshot_answers_like_the_hosted_task(hub, finetuned_dir, tmp_path):
    hfsent.push_to_hub(finetuned_dir, "user/hfsent")
    texts = ["，".join(POSITIVE_REVIEWS[:2]), "，".join(NEGATIVE_REVIEWS[:2]), POSITIVE_REVIEWS[3]]
    local = hfsent.predict(texts, str(finetuned_dir))  # at config.threshold, like the handler
    expected = [{"label": r["label"], "score": pytest.approx(r["score"], abs=1e-5)} for r in local]

    out = run_without_hfsent(
        TOOLKIT, "user/hfsent", json.dumps(texts, ensure_ascii=False), env={"HF_HOME": str(tmp_path / "cache")}
    )
    answers, errors = out["answers"], out["errors"]
    assert answers["single"] == expected[:1]
    assert answers["batch"] == expected
    assert [row[0] for row in answers["batch_both"]] == expected  # the decided label first
    for row, r in zip(answers["batch_both"], local, strict=True):
        assert {d["label"] for d in row} == {"neg", "pos"}
        assert sum(d["score"] for d in row) == pytest.approx(1.0)
        assert next(d["score"] for d in row if d["label"] == "pos") == pytest.approx(r["positive_probability"])
    assert answers["single_both"] == answers["batch_both"][0]
    assert answers["truncated"][0]["label"] in ("neg", "pos")

    assert "JSON object" in errors["not an object"]
    assert '"inputs"' in errors["no inputs"]
    assert "string or a list of strings" in errors["number input"] and "int" in errors["number input"]
    assert "item 1 is null" in errors["mixed list"]
    assert "top_k" in errors["bad top_k"]
    assert "temperature" in errors["unknown parameter"] and "top_k" in errors["unknown parameter"]


def test_payload_parsing_and_formatting_are_reusable():
    request = parse_payload({"inputs": ["好", "坏"], "parameters": {"top_k": None, "threshold": 0.3}})
    assert (request.texts, request.batched, request.top_k, request.threshold) == (["好", "坏"], True, 2, 0.3)
    assert parse_payload({"inputs": "好"}).batched is False
    assert format_predictions([0.4, 0.2], threshold=0.3) == [
        {"label": "pos", "score": 0.4},
        {"label": "neg", "score": 0.8},
    ]
    assert format_predictions([0.4], threshold=0.5, top_k=2, batched=False) == [
        {"label": "neg", "score": pytest.approx(0.6)},
        {"label": "pos", "score": 0.4},
    ]
    assert format_predictions([], threshold=0.5) == []
    for bad in ({"inputs": "x", "parameters": {"threshold": 1.5}}, {"inputs": "x", "parameters": []}):
        with pytest.raises(ValueError, match=r"threshold|parameters"):
            parse_payload(bad)
