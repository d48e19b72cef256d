"""A fine-tuned checkpoint of each backbone family on the ecosystem's paths.

For each family (BERT, RoBERTa, ERNIE, DeBERTa-v2 encoders; GPT-2, Qwen2 decoders) a tiny language model (2 layers,
hidden 32) is saved as a user's starting checkpoint (``*ForMaskedLM`` / ``*ForCausalLM`` with its tokenizer: GPT-2's
a byte-level BPE without a pad token, Qwen2's one that pads on the left), and ``hfsent train`` fine-tunes it once per
module. That output then goes through: the stock pipeline (long text, ``truncation=True``), the Auto classes and the
saved ``handler.py`` in a fresh process without hfsent (``trust_remote_code``), ``hfsent serve`` queried with
``huggingface_hub.InferenceClient``, ``hfsent predict``, ``hfsent export --onnx`` (its parity printed), peft LoRA with
its default targets, and ``hfsent push`` to the local fake Hub.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForMaskedLM, AutoTokenizer, pipeline

import hfsent
from hfsent.configuration_hfsent import DECODER_TYPES

from ..fixtures.helpers import (
    END_OF_TEXT,
    PROBABILITY_TOLERANCE,
    REVIEWS,
    byte_level_bpe,
    decisive,
    run_without_hfsent,
    tiny_backbone_sizes,
    tiny_recipe,
    write_review_csv,
)
from .conftest import long_review

FAMILIES = ("bert", "roberta", "ernie", "deberta-v2", "gpt2", "qwen2")
POSITIONS = 128
TEXTS = [REVIEWS[0], REVIEWS[-1], "好", long_review()]


def hfsent_cli(*args: str) -> int:
    from hfsent.cli import main

    return main(list(args))


def byte_level_tokenizer(pad: bool, padding_side: str = "right"):
    """A GPT-2/Qwen2-style byte-level BPE tokenizer trained on the test reviews (``<|endoftext|>`` its only special
    token; its pad token only with ``pad``)."""
    from transformers import PreTrainedTokenizerFast

    special = {"eos_token": END_OF_TEXT, "bos_token": END_OF_TEXT, "unk_token": END_OF_TEXT}
    if pad:
        special["pad_token"] = END_OF_TEXT
    return PreTrainedTokenizerFast(
        tokenizer_object=byte_level_bpe(REVIEWS * 4),
        model_max_length=POSITIONS,
        padding_side=padding_side,
        model_input_names=["input_ids", "attention_mask"],
        **special,
    )


def language_model(family: str, directory: Path) -> Path:
    """Save a tiny ``*ForMaskedLM`` (encoders) or ``*ForCausalLM`` (decoders) of ``family`` with its tokenizer."""
    from hfsent.tokenizer import train_wordpiece_tokenizer

    if family == "gpt2":
        tokenizer = byte_level_tokenizer(pad=False)  # as GPT-2's own: hfsent pads with the end-of-text token
    elif family == "qwen2":
        tokenizer = byte_level_tokenizer(pad=True, padding_side="left")
    else:
        tokenizer = train_wordpiece_tokenizer(REVIEWS * 4, vocab_size=500, model_max_length=POSITIONS)
    kwargs = dict(tiny_backbone_sizes(POSITIONS), vocab_size=len(tokenizer))
    kwargs["pad_token_id"] = tokenizer.pad_token_id  # GPT-2's: None
    if family in DECODER_TYPES:
        kwargs.update(bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id)
    if family == "roberta":  # positions start after the padding index; one segment, as RoBERTa's own
        kwargs.update(max_position_embeddings=POSITIONS + tokenizer.pad_token_id + 1, type_vocab_size=1)
    torch.manual_seed(0)
    config = AutoConfig.for_model(family, **kwargs)
    model = (AutoModelForCausalLM if family in DECODER_TYPES else AutoModelForMaskedLM).from_config(config)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def fine_tune(family: str, root: Path) -> Path:
    """``hfsent train`` (a tiny recipe) from the family's language model; return the output folder."""
    data = write_review_csv(root / "reviews.csv", n=160)
    source = language_model(family, root / family)
    recipe = tiny_recipe(
        root / "run",
        source,
        data,
        model_name_or_path=str(source),
        config_overrides=None,
        tokenizer_name=None,
        num_train_epochs=2,
        report_to="none",
    )
    assert hfsent_cli("train", str(recipe)) == 0
    return root / "run" / "out"


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Each family's fine-tuned output folder, trained once on first use (treat them read-only)."""

    class _Lazy(dict):
        def __missing__(self, family: str) -> Path:
            self[family] = fine_tune(family, tmp_path_factory.mktemp(f"backbone-{family}"))
            return self[family]

    return _Lazy()


@pytest.fixture(scope="module", params=FAMILIES)
def family(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def run(runs, family) -> Path:
    """This family's fine-tuned output folder."""
    return runs[family]


@pytest.fixture(scope="module")
def expected(run) -> list[float]:
    """P(pos) of `TEXTS` by hfsent.predict (the reference every other path is held to)."""
    return [r["positive_probability"] for r in hfsent.predict(TEXTS, str(run))]


def test_train_output_names_its_backbone(run, family):
    config = json.loads((run / "config.json").read_text())
    assert config["model_type"] == "hfsent"
    if family == "bert":
        assert "backbone_config" not in config or config["backbone_config"] is None
    else:
        assert config["backbone_config"]["model_type"] == family
    assert config["pooling"] == ("last" if family in DECODER_TYPES else "cls")
    assert (run / "handler.py").is_file() and (run / "modeling_hfsent.py").is_file()
    card = (run / "README.md").read_text(encoding="utf-8")
    assert f"- {family}\n" in card.split("---")[1]  # the card's tags
    if family != "bert":
        assert f"| backbone | {family} |" in card
    results = json.loads((run / "all_results.json").read_text())
    assert results["test_accuracy"] > 0.5  # separable reviews: the run learned something
    # a generic fast tokenizer (GPT-2's byte-level BPE here) is saved under a class transformers 4 loads too
    tokenizer_class = json.loads((run / "tokenizer_config.json").read_text())["tokenizer_class"]
    assert tokenizer_class != "TokenizersBackend"


def test_pipeline_truncates_long_input(run, expected):
    clf = pipeline("text-classification", model=str(run))
    results = clf(TEXTS, truncation=True, top_k=None)
    got = [next(r["score"] for r in result if r["label"] == "pos") for result in results]
    assert got == pytest.approx(expected, abs=PROBABILITY_TOLERANCE)
    assert {r["label"] for result in results for r in result} == {"neg", "pos"}


WITHOUT_HFSENT = """
import importlib.util, torch
from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer
paths, texts = json.loads(sys.argv[1]), json.loads(sys.argv[2])
answers = {}
for family, path in paths.items():
    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=True)  # its config is custom code
    batch = tokenizer(texts, padding=True, truncation=True, return_tensors="pt")
    out = answers[family] = {"padding_side": tokenizer.padding_side}
    for auto in (AutoModel, AutoModelForSequenceClassification):
        model = auto.from_pretrained(path, trust_remote_code=True).eval()
        with torch.no_grad():
            out[auto.__name__] = [type(model).__module__, model(**batch).logits[:, 1].sigmoid().tolist()]
    spec = importlib.util.spec_from_file_location("handler", path + "/handler.py")
    handler = importlib.util.module_from_spec(spec)
    sys.modules["handler"] = handler  # as the Inference Endpoints toolkit imports it
    spec.loader.exec_module(handler)
    out["handler"] = handler.EndpointHandler(path)({"inputs": texts, "parameters": {"top_k": None}})
emit(answers)
"""


@pytest.fixture(scope="module")
def without_hfsent(runs) -> dict[str, dict]:
    """Every family's checkpoint loaded in one fresh process where hfsent cannot be imported (remote code)."""
    paths = {family: str(runs[family]) for family in FAMILIES}
    return run_without_hfsent(WITHOUT_HFSENT, json.dumps(paths), json.dumps(TEXTS, ensure_ascii=False))


def test_auto_classes_and_handler_without_hfsent(without_hfsent, family, expected):
    answer = without_hfsent[family]
    if family == "qwen2":
        assert answer["padding_side"] == "left"  # the batch below is padded on the left
    for auto in ("AutoModel", "AutoModelForSequenceClassification"):
        module, probabilities = answer[auto]
        assert module.startswith("transformers_modules.") and module.endswith("modeling_hfsent")
        assert probabilities == pytest.approx(expected, abs=PROBABILITY_TOLERANCE)
    scores = [next(r["score"] for r in ranked if r["label"] == "pos") for ranked in answer["handler"]]
    assert scores == pytest.approx(expected, abs=PROBABILITY_TOLERANCE)
    decided = [ranked[0]["label"] for ranked in answer["handler"]]
    assert [d for d, p in zip(decided, expected, strict=True) if decisive([p])[0]] == [
        "pos" if p >= 0.5 else "neg" for p in expected if decisive([p])[0]
    ]


def test_serve_answers_the_inference_client(run, expected, local_http_client, tmp_path):
    from huggingface_hub import InferenceClient

    from ..inference.test_serve import start_server, stop_server

    proc, url, lines = start_server(run, log_path=tmp_path / "serve.log")
    try:
        client = InferenceClient(model=url, timeout=30)
        for text, p in zip(TEXTS, expected, strict=True):
            top = client.text_classification(text)  # huggingface_hub 2.4: the decided label, first of the answer
            assert (top.score if top.label == "pos" else 1 - top.score) == pytest.approx(p, abs=PROBABILITY_TOLERANCE)
            if decisive([p])[0]:
                assert top.label == ("pos" if p >= 0.5 else "neg")
    finally:
        stop_server(proc, lines)


def test_predict_command(run, expected, tmp_path):
    source = tmp_path / "in.csv"
    with source.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows([["review"], *([t] for t in TEXTS)])
    assert hfsent_cli("predict", str(run), "-i", str(source), "-o", str(tmp_path / "out.jsonl")) == 0
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["pred_positive_probability"] for r in rows] == pytest.approx(expected, abs=PROBABILITY_TOLERANCE)


def test_onnx_export_keeps_parity(run, family, expected, tmp_path, capsys):
    from hfsent.inference import load_backend

    code = hfsent_cli("export", str(run), str(tmp_path / "onnx"), "--onnx", "--parity-samples", "64", "--threads", "1")
    printed = capsys.readouterr()
    with capsys.disabled():
        print(f"\n[{family}] hfsent export:\n{printed.out}{printed.err}", end="")
    assert code == 0, printed.err
    assert "model.onnx: max |P(pos) - torch| = " in printed.out and "labels agree on 64/64" in printed.out
    onnx = load_backend(str(tmp_path / "onnx"), threads=1)
    assert onnx.name == "onnx"
    assert onnx.positive_probabilities(TEXTS) == pytest.approx(expected, abs=1e-4)


def test_peft_lora_with_default_targets(run, family, tmp_path):
    from peft import LoraConfig, PeftModel, get_peft_model
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as DEFAULTS

    model = hfsent.HfSentModel.from_pretrained(run).eval()
    tokenizer = AutoTokenizer.from_pretrained(run)
    batch = tokenizer(TEXTS[:3], padding=True, return_tensors="pt")
    peft_model = get_peft_model(model, LoraConfig(task_type="SEQ_CLS", r=4))  # no target_modules
    adapted = {name.rsplit(".", 1)[-1] for name, m in peft_model.named_modules() if hasattr(m, "lora_A")}
    # peft's own defaults for the family (ERNIE, which peft does not list, has BERT's module names)
    assert adapted == set(DEFAULTS.get(family, DEFAULTS["bert"]))
    peft_model.train()
    optimizer = torch.optim.SGD([p for p in peft_model.parameters() if p.requires_grad], lr=0.5)
    before = peft_model(**batch).logits.detach()
    peft_model(**batch, labels=torch.tensor([1, 0, 1])).loss.backward()
    optimizer.step()
    peft_model.eval()
    expected = peft_model(**batch).logits.detach()
    assert not torch.allclose(expected, before)
    peft_model.save_pretrained(tmp_path)
    with torch.no_grad():
        reloaded = PeftModel.from_pretrained(hfsent.HfSentModel.from_pretrained(run), tmp_path).eval()
        torch.testing.assert_close(reloaded(**batch).logits, expected)
        torch.testing.assert_close(reloaded.merge_and_unload()(**batch).logits, expected, atol=1e-5, rtol=1e-4)


def test_push_to_the_local_hub(run, family, hub, expected):
    from huggingface_hub import ModelCard, snapshot_download

    repo = f"user/backbone-{family}"
    assert hfsent_cli("push", str(run), repo) == 0
    files = hub.repo(repo).files
    assert {"config.json", "model.safetensors", "handler.py", "modeling_hfsent.py", "README.md"} <= set(files)
    card = ModelCard(files["README.md"].decode())
    assert family in card.data.tags and "hfsent" in card.data.tags
    downloaded = snapshot_download(repo)
    got = [r["positive_probability"] for r in hfsent.predict(TEXTS, downloaded)]
    assert got == pytest.approx(expected, abs=PROBABILITY_TOLERANCE)
