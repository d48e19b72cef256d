"""`HfSentModel` over backbones other than BERT (`HfSentConfig.backbone_config`), from tiny configs.

Each family starts as fine-tuning starts: from the output folder of its language model (``*ForMaskedLM`` for the
encoders, ``*ForCausalLM`` for the decoders), whose backbone weights must load exactly; encoders are pooled at the
first token, decoders at the last real token (right and left padding alike).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForMaskedLM,
    AutoModelForSequenceClassification,
)

import hfsent
from hfsent.configuration_hfsent import BACKBONE_TYPES, DECODER_TYPES, ENCODER_TYPES

from ..fixtures.helpers import PROBABILITY_TOLERANCE, run_without_hfsent, tiny_backbone_sizes

FAMILIES = [t for t in BACKBONE_TYPES if t != "bert"]
PAD = 1  # RoBERTa's padding index; the other families take it as their pad token too
TINY = dict(tiny_backbone_sizes(), vocab_size=99, pad_token_id=PAD, bos_token_id=2, eos_token_id=3)


def language_model(model_type: str, directory: Path) -> torch.nn.Module:
    """Save a tiny ``*ForMaskedLM`` (encoders) or ``*ForCausalLM`` (decoders) of ``model_type`` to ``directory``."""
    torch.manual_seed(0)
    config = AutoConfig.for_model(model_type, **TINY)
    model_class = AutoModelForCausalLM if model_type in DECODER_TYPES else AutoModelForMaskedLM
    model = model_class.from_config(config)
    model.save_pretrained(directory)
    return model


@pytest.fixture(scope="module", params=FAMILIES)
def family(request, tmp_path_factory) -> tuple[str, Path, torch.nn.Module]:
    """(model_type, the saved language model's folder, that model)."""
    directory = tmp_path_factory.mktemp(request.param)
    return request.param, directory, language_model(request.param, directory)


def logits_of(model, input_ids, attention_mask=None) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=torch.tensor(input_ids), attention_mask=attention_mask).logits


def test_backbone_weights_load_from_the_language_model_and_the_head_is_new(family, caplog):
    model_type, directory, source = family
    with caplog.at_level(logging.INFO):
        model, info = hfsent.HfSentModel.from_pretrained(directory, output_loading_info=True)
    assert model.config.model_type == "hfsent" and model.config.backbone_type == model_type
    assert sorted(info["missing_keys"]) == ["classifier.bias", "classifier.weight"]
    backbone = model.base_model
    assert backbone is not model and type(backbone).__name__ == type(source.base_model).__name__
    source_state = source.base_model.state_dict()
    for key, value in backbone.state_dict().items():
        assert torch.equal(value, source_state[key]), key
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING and "Loading" in r.getMessage()]
    assert any("New sentiment head" in r.getMessage() for r in caplog.records)
    expected_pooling = "last" if model_type in DECODER_TYPES else "cls"
    assert model.config.pooling == expected_pooling
    assert model.config.hidden_size == 32 and model.classifier.in_features == 32


def test_padding_on_either_side_does_not_change_the_answer(family):
    model_type, directory, _ = family
    model = hfsent.HfSentModel.from_pretrained(directory).eval()
    with torch.no_grad():
        model.classifier.weight.normal_(0.0, 2.0)  # a head that tells hidden states apart (a new one is near 0)
    text = [5, 6, 7, 8, 9, 10]
    alone = logits_of(model, [text])[0]
    right = logits_of(model, [text + [PAD] * 3], torch.tensor([[1] * 6 + [0] * 3]))[0]
    assert right.tolist() == pytest.approx(alone.tolist(), abs=PROBABILITY_TOLERANCE)
    if model_type in DECODER_TYPES:  # decoders are batched with left padding too (generation's side)
        left = logits_of(model, [[PAD] * 3 + text], torch.tensor([[0] * 3 + [1] * 6]))[0]
        assert left.tolist() == pytest.approx(alone.tolist(), abs=PROBABILITY_TOLERANCE)
    # the pooled token has seen the whole text: another last token, or another first one, changes the answer
    for changed in ([*text[:-1], 11], [11, *text[1:]]):
        assert not torch.allclose(logits_of(model, [changed])[0], alone, atol=1e-4)
    assert alone[0].item() == 0.0  # the binary head: logits [0, z]


def test_saved_checkpoint_reloads_through_auto_classes_and_remote_code(family, tmp_path):
    model_type, directory, _ = family
    model = hfsent.HfSentModel.from_pretrained(directory).eval()
    with torch.no_grad():
        model.classifier.weight.normal_(0.0, 2.0)
    out = tmp_path / "hfsent"
    model.save_pretrained(out)
    ids = [[5, 6, 7, 8], [9, 10, PAD, PAD]]
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])
    expected = logits_of(model, ids, mask)
    for auto_class in (AutoModel, AutoModelForSequenceClassification):
        loaded, info = auto_class.from_pretrained(out, output_loading_info=True)
        assert isinstance(loaded, hfsent.HfSentModel)
        assert not info["missing_keys"] and not info["unexpected_keys"]
        assert torch.allclose(logits_of(loaded.eval(), ids, mask), expected, atol=1e-6)
    if model_type not in ("gpt2", "qwen2", "ernie"):
        return  # remote code: one encoder and both decoder kinds are enough
    result = run_without_hfsent(
        """
        import torch
        from transformers import AutoModelForSequenceClassification
        model = AutoModelForSequenceClassification.from_pretrained(sys.argv[1], trust_remote_code=True).eval()
        ids = torch.tensor(json.loads(sys.argv[2])); mask = torch.tensor(json.loads(sys.argv[3]))
        with torch.no_grad():
            logits = model(input_ids=ids, attention_mask=mask).logits
        emit({"module": type(model).__module__, "logits": logits.tolist()})
        """,
        str(out),
        str(ids),
        str(mask.tolist()),
    )
    assert not result["module"].startswith("hfsent")
    assert torch.allclose(torch.tensor(result["logits"]), expected, atol=1e-5)


def test_peft_default_lora_targets_fit_every_backbone(family):
    from peft import LoraConfig, get_peft_model

    _, directory, _ = family
    model = hfsent.HfSentModel.from_pretrained(directory)
    peft_model = get_peft_model(model, LoraConfig(task_type="SEQ_CLS", r=4))
    adapted = {name for name, module in peft_model.named_modules() if hasattr(module, "lora_A")}
    assert adapted and all(not name.endswith("classifier") for name in adapted)
    trainable = {name for name, p in peft_model.named_parameters() if p.requires_grad}
    assert any("lora_" in name for name in trainable) and any("classifier" in name for name in trainable)


def test_peft_default_lora_targets_of_a_bert_model_are_query_and_value():
    from peft import LoraConfig, get_peft_model

    config = hfsent.HfSentConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=2)
    peft_model = get_peft_model(hfsent.HfSentModel(config), LoraConfig(task_type="SEQ_CLS", r=4))
    adapted = {name.rsplit(".", 1)[-1] for name, module in peft_model.named_modules() if hasattr(module, "lora_A")}
    assert adapted == {"query", "value"}


def test_a_model_type_no_family_handles_is_refused_in_one_line(tmp_path):
    config = AutoConfig.for_model("t5", d_model=32, num_layers=1, num_heads=2, d_ff=37, vocab_size=99)
    config.save_pretrained(tmp_path)
    with pytest.raises(ValueError) as err:
        hfsent.HfSentConfig.from_pretrained(tmp_path)
    message = str(err.value)
    assert "\n" not in message and "'t5'" in message
    assert all(t in message for t in (*ENCODER_TYPES, *DECODER_TYPES))


def test_a_decoder_is_not_pooled_at_its_first_token():
    with pytest.raises(ValueError, match=r"pooling 'cls'.*use 'last'"):
        hfsent.HfSentConfig(backbone_config=AutoConfig.for_model("gpt2", **TINY).to_dict(), pooling="cls")
    with pytest.raises(ValueError, match="pooling 'pooler' is BERT's"):
        hfsent.HfSentConfig(backbone_config=AutoConfig.for_model("roberta", **TINY).to_dict(), pooling="pooler")


def test_first_token_pooling_is_refused_when_loading_a_decoder_checkpoint_too(tmp_path):
    language_model("gpt2", tmp_path)
    with pytest.raises(ValueError, match=r"pooling 'cls'.*use 'last'"):
        hfsent.HfSentModel.from_pretrained(tmp_path, pooling="cls")
    assert hfsent.HfSentModel.from_pretrained(tmp_path).config.pooling == "last"


def test_a_bert_config_still_makes_the_bert_model():
    config = hfsent.HfSentConfig(vocab_size=99, hidden_size=32, num_hidden_layers=1, num_attention_heads=2)
    assert config.backbone_config is None and config.backbone_type == "bert" and config.pooling == "cls"
    assert "backbone_config" not in config.to_diff_dict()
    assert hasattr(hfsent.HfSentModel(config), "bert")


def test_gradient_checkpointing_and_attention_implementations_give_the_same_training_step(family):
    """What decoder (and encoder) users switch on: gradient checkpointing and SDPA, against eager attention."""
    model_type, directory, _ = family
    ids = torch.tensor([[5, 6, 7, 8, 9], [9, 10, 11, PAD, PAD]])
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    labels = torch.tensor([1, 0])

    def step(checkpointing: bool = False, **kwargs) -> tuple[float, torch.Tensor]:
        torch.manual_seed(0)
        model = hfsent.HfSentModel.from_pretrained(directory, **kwargs)
        assert model.base_model.config._attn_implementation == kwargs["attn_implementation"]
        model.train()
        if checkpointing:
            model.gradient_checkpointing_enable()
            assert model.is_gradient_checkpointing
        for module in model.modules():  # no dropout: the runs must compute the same function
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.0
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        return loss.item(), model.get_input_embeddings().weight.grad.clone()

    eager_loss, eager_grad = step(attn_implementation="eager")
    backbone_class = AutoModel._model_mapping[type(AutoConfig.for_model(model_type))]
    runs = [{"attn_implementation": "eager", "checkpointing": True}]
    if getattr(backbone_class, "_supports_sdpa", False):
        runs.append({"attn_implementation": "sdpa"})
    for kwargs in runs:
        loss, grad = step(**kwargs)
        assert loss == pytest.approx(eager_loss, abs=1e-5), kwargs
        assert torch.allclose(grad, eager_grad, atol=1e-5), kwargs
