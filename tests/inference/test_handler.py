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


@pytest.fixture(scope="module")
def tiny_handler(tmp_path_factory):
    """handler.py's `EndpointHandler` on a tiny trained checkpoint (128 positions), as the toolkit builds it."""
    from hfsent.endpoint_handler import EndpointHandler

    from ..fixtures.helpers import review_tokenizer
    from ..fixtures.inference_helpers import one_torch_thread, save_trained_tiny_checkpoint

    model_dir = save_trained_tiny_checkpoint(tmp_path_factory.mktemp("handler") / "model", review_tokenizer())
    with one_torch_thread():
        yield EndpointHandler(str(model_dir)), model_dir


def test_handler_accepts_the_hosted_parameters_and_does_the_binary_thing(tiny_handler):
    """Issue 11 item 11: function_to_apply (sigmoid, softmax, none) and top_k, as huggingface_hub's
    TextClassificationParameters send them, on a model whose logits are [0, z]."""
    import math

    from ..fixtures.inference_helpers import review_texts

    handler, model_dir = tiny_handler
    texts = review_texts(8, seed=31)
    local = hfsent.predict(texts, str(model_dir))
    plain = handler({"inputs": texts, "parameters": {"top_k": None}})
    assert handler({"inputs": texts, "parameters": {"function_to_apply": "sigmoid", "top_k": None}}) == plain
    assert handler({"inputs": texts, "parameters": {"function_to_apply": "softmax", "top_k": None}}) == plain
    assert handler({"inputs": texts, "parameters": {"function_to_apply": None, "top_k": None}}) == plain
    raw = handler({"inputs": texts, "parameters": {"function_to_apply": "none", "top_k": 2}})
    for row, r in zip(raw, local, strict=True):
        z = math.log(r["positive_probability"] / (1 - r["positive_probability"]))
        assert row[0]["label"] == r["label"]  # decided at the threshold, as with probabilities
        assert {d["label"]: d["score"] for d in row} == {"pos": pytest.approx(z, abs=1e-4), "neg": 0.0}
    with pytest.raises(ValueError, match=r'"function_to_apply" must be one of \['):
        handler({"inputs": "好", "parameters": {"function_to_apply": "relu"}})


def test_handler_truncates_long_reviews_and_refuses_empty_ones(tiny_handler):
    """Long and empty inputs through handler.py (conformance): a review far past the model's 128 positions
    is scored on its first 128 tokens, even with truncation false; an empty or blank one is refused with the
    reason, as `hfsent predict` flags it."""
    handler = tiny_handler[0]
    long_review = "，".join([POSITIVE_REVIEWS[0]] * 400)  # ~10,000 characters
    head = handler.tokenizer.decode(handler.tokenizer(long_review, truncation=True, max_length=128)["input_ids"][1:-1])
    expected = handler({"inputs": head.replace(" ", "")})
    assert handler({"inputs": long_review}) == [
        {"label": expected[0]["label"], "score": pytest.approx(expected[0]["score"], abs=1e-6)}
    ]
    assert handler({"inputs": long_review, "parameters": {"truncation": False}})[0]["label"] == expected[0]["label"]
    for payload, message in (
        ({"inputs": ""}, '"inputs" is empty text'),
        ({"inputs": ["好", "  "]}, 'item 1 of "inputs" is empty text'),
        ({"inputs": "\ud800"}, "not valid Unicode"),
    ):
        with pytest.raises(ValueError, match=message):
            handler(payload)
