"""The masked-only MLM head without a host synchronisation: masked positions found by the collator."""

from __future__ import annotations

import pytest
import torch
from transformers import BertConfig

from hfsent.pretrain import MaskedOnlyBertForMaskedLM, MLMCollator
from hfsent.pretrain.masking import MASKED_POSITIONS_MULTIPLE

from ..fixtures.helpers import REVIEWS


def _model_and_batch(zh_tokenizer, probability: float = 0.15):
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(zh_tokenizer),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    model = MaskedOnlyBertForMaskedLM(config)
    rows = [{"input_ids": ids} for ids in zh_tokenizer(REVIEWS, truncation=True, max_length=40)["input_ids"]]
    collator = MLMCollator(zh_tokenizer, seed=0, mlm_probability=probability, return_masked_positions=True)
    return model, collator(rows)


def _loss_and_grads(model, batch):
    model.zero_grad()
    loss = model(**batch).loss
    loss.backward()
    return loss.detach(), [p.grad.clone() for p in model.parameters() if p.grad is not None]


@pytest.mark.parametrize("probability", [0.15, 1e-9])
def test_masked_positions_give_the_same_loss_and_gradients(zh_tokenizer, probability):
    """The collator's ``masked_positions`` (padded with -1 to a multiple of 8) select exactly the tokens
    the labels select: same loss and gradients as the boolean selection; nothing masked gives a zero loss."""
    model, batch = _model_and_batch(zh_tokenizer, probability)
    positions = batch["masked_positions"]
    assert positions.dim() == 1 and len(positions) % MASKED_POSITIONS_MULTIPLE == 0
    found = positions[positions >= 0]
    assert torch.equal(found, (batch["labels"].reshape(-1) != -100).nonzero().squeeze(1))
    loss, grads = _loss_and_grads(model, batch)
    plain = {k: v for k, v in batch.items() if k != "masked_positions"}
    expected_loss, expected_grads = _loss_and_grads(model, plain)
    torch.testing.assert_close(loss, expected_loss)
    for grad, expected in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(grad, expected)
    if not len(found):
        assert loss.item() == 0.0


def test_masked_only_step_with_positions_compiles_as_one_graph(zh_tokenizer):
    """With ``masked_positions`` the training forward has no data-dependent shape (what a host sync per step
    would be on a GPU): ``torch.compile(fullgraph=True)`` takes it whole."""
    model, batch = _model_and_batch(zh_tokenizer)
    expected, _ = _loss_and_grads(model, batch)
    torch._dynamo.reset()
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(**batch).loss, expected)
