"""An hfsent checkpoint behaves like a stock transformers classifier on the paths users take.

Each test runs over the tiny checkpoint of every shipped recipe (see conftest.py: ``quickstart``,
``bert_base_chinese``, ``lora``, ``pretrained``): output types and ``return_dict``, dtype and attention
switches, gradient checkpointing, ``resize_token_embeddings``, every Auto class (in this process and in a
fresh one without hfsent), the stock ``pipeline("text-classification")`` on long and empty inputs, peft
with its defaults, ``AutoTokenizer``, and label overrides as for a stock model.
"""

from __future__ import annotations

import json
import logging
import warnings

import pytest
import torch
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    BertConfig,
    BertForSequenceClassification,
    pipeline,
)
from transformers.modeling_outputs import SequenceClassifierOutput

import hfsent
from hfsent import HfSentConfig, HfSentModel

from ..fixtures.helpers import REVIEWS, run_without_hfsent
from .conftest import KINDS, long_review, model_config, tokenizer_config

TEXTS = [REVIEWS[0], REVIEWS[-1], "好"]
LABELS = {"neg", "pos"}


def _load(path, **kwargs) -> HfSentModel:
    return HfSentModel.from_pretrained(path, **kwargs).eval()


def _batch(path, texts=TEXTS):
    return AutoTokenizer.from_pretrained(path)(texts, padding=True, truncation=True, return_tensors="pt")


def _stock_twin(model: HfSentModel) -> BertForSequenceClassification:
    """A stock BERT classifier of the same shape (2 labels), for comparing output structures."""
    config = BertConfig(**{k: v for k, v in model.config.to_dict().items() if k not in ("model_type", "auto_map")})
    return BertForSequenceClassification(config).eval()


# ----------------------------------------------------------------------------- the saved tokenizer (item 1)


def test_every_saved_tokenizer_truncates_to_the_model_positions(build):
    """The output folder, its checkpoint-* folders and a pretraining output all say model_max_length <= positions."""
    folders = [(run, f) for run in build.runs for f in (run, *sorted(run.glob("checkpoint-*")))]
    assert len(folders) > len(build.runs), "expected checkpoint-* folders too"
    for run, folder in folders:
        # LoRA's checkpoint-* folders hold adapters (no config.json): the run's model applies
        positions = model_config(folder if (folder / "config.json").is_file() else run)["max_position_embeddings"]
        saved = tokenizer_config(folder)
        assert saved["model_max_length"] <= positions, folder
        assert saved["tokenizer_class"] == "BertTokenizer", folder  # a stock class: no remote code needed
        assert AutoTokenizer.from_pretrained(folder).model_max_length <= positions


def test_hfsent_loading_fits_an_older_checkpoint_tokenizer(tiny_checkpoint):
    """A checkpoint saved as model + a 512-token tokenizer (128 positions) is fitted where hfsent loads it,
    so what hfsent writes from it (``hfsent export``'s folder) carries a fitted tokenizer."""
    assert tokenizer_config(tiny_checkpoint)["model_max_length"] > 128
    model, tokenizer = hfsent.load_model_and_tokenizer(str(tiny_checkpoint))
    assert tokenizer.model_max_length == model.config.max_position_embeddings == 128


def test_pipeline_truncates_long_input(checkpoint):
    clf = pipeline("text-classification", model=str(checkpoint))
    texts = [long_review(), REVIEWS[0]]
    results = clf(texts, truncation=True, top_k=None)
    expected = hfsent.predict(texts, str(checkpoint))  # hfsent's own path truncates to the same length
    for result, reference in zip(results, expected, strict=True):
        assert {r["label"] for r in result} == LABELS
        pos = next(r["score"] for r in result if r["label"] == "pos")
        assert pos == pytest.approx(reference["positive_probability"], abs=1e-5)


def test_long_input_without_truncation_names_the_fix(checkpoint):
    """Stock BERT fails deep in its embeddings ("size of tensor a (N) must match ..."); hfsent says what to do."""
    clf = pipeline("text-classification", model=str(checkpoint))
    with pytest.raises(ValueError, match=r"at most \d+ \(max_position_embeddings\).*truncation=True"):
        clf(long_review())


def test_pipeline_takes_empty_input(checkpoint):
    clf = pipeline("text-classification", model=str(checkpoint))
    assert clf("")[0]["label"] in LABELS
    results = clf(["", " ", "好"], truncation=True)
    assert len(results) == 3
    assert {r["label"] for r in results} <= LABELS


# ------------------------------------------------------------------------- outputs and switches (item 2)


def test_return_dict_false_returns_the_stock_tuple(checkpoint):
    model = _load(checkpoint)
    stock = _stock_twin(model)
    batch = _batch(checkpoint)
    labels = torch.tensor([1, 0, 1])

    output = model(**batch)
    assert isinstance(output, SequenceClassifierOutput)
    assert output.logits.shape == (3, 2)

    for kwargs in ({}, {"labels": labels}, {"labels": labels, "output_hidden_states": True}):
        ours = model(**batch, return_dict=False, **kwargs)
        theirs = stock(**batch, return_dict=False, **kwargs)
        assert isinstance(ours, tuple), kwargs
        assert [type(x) for x in ours] == [type(x) for x in theirs], kwargs
        torch.testing.assert_close(ours[1 if "labels" in kwargs else 0], output.logits)

    model.config.return_dict = False  # the config switch too, as stock
    stock.config.return_dict = False
    ours, theirs = model(**batch, labels=labels), stock(**batch, labels=labels)
    assert isinstance(ours, tuple) and len(ours) == len(theirs) == 2
    assert isinstance(model(**batch, return_dict=True), SequenceClassifierOutput)  # the argument wins


@pytest.mark.parametrize("argument", ["dtype", "torch_dtype"])
def test_bfloat16_loading(checkpoint, argument):
    reference = _load(checkpoint)(**_batch(checkpoint)).logits
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch_dtype is transformers' deprecated spelling
        model = _load(checkpoint, **{argument: torch.bfloat16})
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    logits = model(**_batch(checkpoint)).logits
    assert logits.dtype == torch.bfloat16
    torch.testing.assert_close(logits.float().softmax(-1), reference.softmax(-1), atol=0.03, rtol=0)


def test_eager_and_sdpa_attention_agree(checkpoint):
    eager = _load(checkpoint, attn_implementation="eager")
    sdpa = _load(checkpoint, attn_implementation="sdpa")
    assert eager.config._attn_implementation == "eager"
    assert sdpa.config._attn_implementation == "sdpa"
    batch = _batch(checkpoint)  # padded: the attention mask matters
    torch.testing.assert_close(eager(**batch).logits, sdpa(**batch).logits, atol=1e-5, rtol=1e-4)


@pytest.mark.filterwarnings("ignore:`gradient_checkpointing_enable` is deprecated:FutureWarning")
def test_gradient_checkpointing_gives_the_same_gradients(checkpoint):
    batch, labels = _batch(checkpoint), torch.tensor([1, 0, 1])

    def gradients(checkpointing: bool) -> dict[str, torch.Tensor]:
        model = _load(checkpoint).train()
        if checkpointing:
            model.gradient_checkpointing_enable()
            assert model.is_gradient_checkpointing
        torch.manual_seed(0)  # the same dropout masks (checkpointing replays the RNG state)
        model(**batch, labels=labels).loss.backward()
        return {name: p.grad for name, p in model.named_parameters() if p.grad is not None}

    plain, checkpointed = gradients(False), gradients(True)
    assert plain.keys() == checkpointed.keys()
    assert "classifier.weight" in plain and any(k.startswith("bert.encoder.") for k in plain)
    for name, grad in plain.items():
        torch.testing.assert_close(checkpointed[name], grad, atol=1e-6, rtol=1e-4, msg=name)


def test_resize_token_embeddings_round_trips(checkpoint, tmp_path):
    model = _load(checkpoint)
    n = model.config.vocab_size
    model.resize_token_embeddings(n + 8)
    assert model.config.vocab_size == n + 8
    ids = torch.tensor([[2, n + 7, 3]])  # a new token
    logits = model(input_ids=ids).logits
    model.save_pretrained(tmp_path)
    reloaded = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    assert reloaded.config.vocab_size == n + 8
    torch.testing.assert_close(reloaded(input_ids=ids).logits, logits)


# ------------------------------------------------------------------------------------------ Auto classes


def test_every_auto_class_loads_and_saves(checkpoint, tmp_path):
    config = AutoConfig.from_pretrained(checkpoint)
    assert type(config) is HfSentConfig
    batch = _batch(checkpoint)
    reference = _load(checkpoint)(**batch).logits
    for auto in (AutoModel, AutoModelForSequenceClassification):
        model = auto.from_pretrained(checkpoint).eval()
        assert type(model) is HfSentModel, auto
        torch.testing.assert_close(model(**batch).logits, reference)

    model.save_pretrained(tmp_path)
    AutoTokenizer.from_pretrained(checkpoint).save_pretrained(tmp_path)
    saved = model_config(tmp_path)
    assert set(saved["auto_map"]) == {"AutoConfig", "AutoModel", "AutoModelForSequenceClassification"}
    assert (tmp_path / "modeling_hfsent.py").is_file() and (tmp_path / "configuration_hfsent.py").is_file()
    torch.testing.assert_close(AutoModel.from_pretrained(tmp_path).eval()(**batch).logits, reference)


WITHOUT_HFSENT = """
import builtins, json, torch
from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification, AutoTokenizer, pipeline

prompts = []
builtins.input = lambda *a, **k: prompts.append(a) or "n"  # record any "run the custom code? [y/N]"
paths, texts, long_text = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
out = {}
for kind, path in paths.items():
    row = {}
    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=False)  # a stock tokenizer: no code needed
    row["tokenizer"] = [type(tokenizer).__name__, tokenizer.model_max_length]
    row["remote_tokenizer"] = type(AutoTokenizer.from_pretrained(path, trust_remote_code=True)).__name__
    row["config"] = type(AutoConfig.from_pretrained(path, trust_remote_code=True)).__name__
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    for auto in (AutoModel, AutoModelForSequenceClassification):
        model = auto.from_pretrained(path, trust_remote_code=True).eval()
        with torch.no_grad():
            row[auto.__name__] = [type(model).__module__ + "." + type(model).__name__, model(**batch).logits.tolist()]
    clf = pipeline("text-classification", model=path, trust_remote_code=True)
    row["pipeline_long"] = clf(long_text, truncation=True)
    out[kind] = row
emit({"rows": out, "prompts": len(prompts)})
"""


@pytest.fixture(scope="session")
def without_hfsent(builds):
    """Every kind loaded in one fresh process where hfsent cannot be imported (remote code)."""
    paths = {kind: str(builds[kind].path) for kind in KINDS}
    return run_without_hfsent(WITHOUT_HFSENT, json.dumps(paths), json.dumps(TEXTS), long_review())


def test_every_auto_class_loads_without_hfsent(without_hfsent, checkpoint, kind):
    row = without_hfsent["rows"][kind]
    reference = _load(checkpoint)(**_batch(checkpoint)).logits
    assert row["config"] == "HfSentConfig"
    for auto in ("AutoModel", "AutoModelForSequenceClassification"):
        name, logits = row[auto]
        assert name.startswith("transformers_modules.") and name.endswith("modeling_hfsent.HfSentModel")
        torch.testing.assert_close(torch.tensor(logits), reference, atol=1e-5, rtol=1e-4)
    assert row["pipeline_long"][0]["label"] in LABELS  # Hub-hosted inference on a long review


def test_autotokenizer_gives_the_stock_tokenizer_without_hfsent(without_hfsent, checkpoint, kind):
    row = without_hfsent["rows"][kind]
    assert row["tokenizer"] == ["BertTokenizer", tokenizer_config(checkpoint)["model_max_length"]]
    assert row["remote_tokenizer"] == "BertTokenizer"
    assert without_hfsent["prompts"] == 0  # trust_remote_code given: never asked


def test_autotokenizer_needs_no_remote_code_with_hfsent(checkpoint, monkeypatch):
    asked = []
    monkeypatch.setattr("builtins.input", lambda *a, **k: asked.append(a) or "n")
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    assert type(tokenizer).__name__ == "BertTokenizer"
    assert tokenizer.model_max_length <= model_config(checkpoint)["max_position_embeddings"]
    assert asked == []


# ------------------------------------------------------------------------------------------ peft (item 3)


def test_peft_lora_with_default_targets(checkpoint, tmp_path):
    from peft import LoraConfig, PeftModel, get_peft_model

    model = _load(checkpoint)
    batch, labels = _batch(checkpoint), torch.tensor([1, 0, 1])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        peft_model = get_peft_model(model, LoraConfig(task_type="SEQ_CLS"))  # no target_modules
    assert not [w for w in caught if "is_gradient_checkpointing" in str(w.message)]
    adapted = {name.rsplit(".", 1)[-1] for name, m in peft_model.named_modules() if hasattr(m, "lora_A")}
    assert adapted == {"query", "value"}  # peft's defaults for BERT
    head_before = peft_model.base_model.model.classifier.modules_to_save["default"].weight.detach().clone()

    peft_model.train()
    optimizer = torch.optim.SGD([p for p in peft_model.parameters() if p.requires_grad], lr=0.5)
    peft_model(**batch, labels=labels).loss.backward()
    optimizer.step()
    peft_model.eval()
    head_after = peft_model.base_model.model.classifier.modules_to_save["default"].weight
    assert not torch.equal(head_before, head_after)  # the head is trained (SEQ_CLS modules_to_save)

    peft_model.save_pretrained(tmp_path)
    expected = peft_model(**batch).logits
    reloaded = PeftModel.from_pretrained(_load(checkpoint), tmp_path).eval()
    torch.testing.assert_close(reloaded(**batch).logits, expected)  # the head was saved with the adapters
    merged = reloaded.merge_and_unload()
    assert type(merged) is HfSentModel
    torch.testing.assert_close(merged(**batch).logits, expected, atol=1e-5, rtol=1e-4)


# ------------------------------------------------------------------------------- label space (item 5)


def test_label_count_overrides_behave_as_for_stock_bert(checkpoint):
    """A new label count is a new head: refused without ``ignore_mismatched_sizes``, re-initialised with it."""
    with pytest.raises(RuntimeError):
        AutoModelForSequenceClassification.from_pretrained(checkpoint, num_labels=3)
    model = AutoModelForSequenceClassification.from_pretrained(checkpoint, ignore_mismatched_sizes=True, num_labels=3)
    assert model.config.id2label == {i: f"LABEL_{i}" for i in range(3)}
    assert model.classifier.weight.shape == (3, model.config.hidden_size)
    batch = AutoTokenizer.from_pretrained(checkpoint)(TEXTS, padding=True, return_tensors="pt")
    assert model.eval()(**batch).logits.shape == (len(TEXTS), 3)


def test_one_label_reads_the_binary_logit(checkpoint):
    """``num_labels=1`` (one output, as transformers means it) is the binary head's own logit ``z``: same shape,
    so it loads (where a stock two-column head would be re-initialised) and gives ``z`` as its one column."""
    batch = AutoTokenizer.from_pretrained(checkpoint)(TEXTS, padding=True, return_tensors="pt")
    binary = _load(checkpoint)
    one = AutoModelForSequenceClassification.from_pretrained(checkpoint, num_labels=1).eval()
    assert one.config.num_labels == 1 and not one.config.is_binary
    with torch.no_grad():
        torch.testing.assert_close(one(**batch).logits[:, 0], binary(**batch).logits[:, 1])


def test_label_names_of_a_binary_model_can_be_renamed(checkpoint):
    model = AutoModelForSequenceClassification.from_pretrained(
        checkpoint, id2label={"0": "negative", "1": "positive"}, label2id={"negative": 0, "positive": 1}
    )
    assert model.config.id2label == {0: "negative", 1: "positive"}
    assert model.config.is_binary and model.classifier.weight.shape[0] == 1  # the same head, other names
    model.config.num_labels = 4  # as on any transformers config
    assert model.config.id2label == {i: f"LABEL_{i}" for i in range(4)}


def test_labels_that_restate_neg_pos_load(checkpoint):
    model = AutoModelForSequenceClassification.from_pretrained(
        checkpoint, num_labels=2, id2label={"0": "neg", "1": "pos"}, label2id={"neg": 0, "pos": 1}
    )
    assert model.config.id2label == {0: "neg", 1: "pos"}
    assert model.config.num_labels == 2


# --------------------------------------------------------------------------- quiet loading (item 13)


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_loading_a_bert_encoder_is_one_info_line(bert_encoder):
    handler = _Records()
    loggers = [logging.getLogger(), logging.getLogger("transformers")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = HfSentModel.from_pretrained(bert_encoder)
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(level)
    assert model.config.model_type == "hfsent"
    loud = [r.getMessage() for r in handler.records if r.levelno >= logging.WARNING]
    assert loud == [] and not caught
    head = [r.getMessage() for r in handler.records if "sentiment head" in r.getMessage()]
    assert len(head) == 1 and "classifier.weight" in head[0] and "\x1b[" not in head[0]


def test_fine_tuning_runs_are_quiet(build, kind):
    """No model-type mismatch message, no LOAD REPORT table, no peft FutureWarning in a recipe run."""
    noisy = [line for line in build.logs if "to instantiate a model of type" in line or "LOAD REPORT" in line]
    assert noisy == []
    assert not [line for line in build.logs if "\x1b[" in line]
    assert not [w for w in build.warnings if "is_gradient_checkpointing" in w]


def test_mismatched_weights_are_still_reported(checkpoint, tmp_path):
    """Quiet loading keeps real problems loud: a checkpoint with a different head is one warning line."""
    from safetensors.torch import load_file, save_file

    for path in checkpoint.iterdir():
        if path.is_file() and path.suffix in (".json", ".py", ".safetensors"):
            (tmp_path / path.name).write_bytes(path.read_bytes())
    weights = load_file(tmp_path / "model.safetensors")
    weights["classifier.weight"] = torch.zeros(3, weights["classifier.weight"].shape[1])
    save_file(weights, tmp_path / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(RuntimeError, match="ignore_mismatched_sizes"):
        HfSentModel.from_pretrained(tmp_path)
    handler = _Records()
    loggers = [logging.getLogger(), logging.getLogger("transformers")]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        HfSentModel.from_pretrained(tmp_path, ignore_mismatched_sizes=True)
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
    # one record, seen once whichever of the two loggers it reaches (both when transformers' propagates)
    records = {id(r): r for r in handler.records}.values()
    warned = [r.getMessage() for r in records if r.levelno >= logging.WARNING]
    assert len(warned) == 1 and "classifier.weight" in warned[0] and "shape mismatch" in warned[0]
