"""Batch padding of fine-tuning: hfsent's collator, and the padded lengths a recipe's training steps see."""

from __future__ import annotations

import pytest
import torch
from transformers import DataCollatorWithPadding, TrainerCallback

from hfsent.finetune import DataArguments, HfSentTrainingArguments, ModelArguments, finetune
from hfsent.finetune.collator import PaddingCollator
from hfsent.recipe import RecipeParser

from ..fixtures.helpers import TINY_OVERRIDES, tiny_recipe


@pytest.mark.parametrize("multiple", [None, 8, 16])
@pytest.mark.parametrize("keys", [("input_ids", "token_type_ids", "attention_mask", "labels"), ("input_ids", "label")])
def test_collator_gives_the_batch_of_data_collator_with_padding(zh_tokenizer, reviews, multiple, keys):
    encoded = zh_tokenizer(reviews, truncation=True, max_length=40)
    features = [{k: (i % 2 if k in ("labels", "label") else encoded[k][i]) for k in keys} for i in range(len(reviews))]
    expected = DataCollatorWithPadding(zh_tokenizer, pad_to_multiple_of=multiple)(features)
    batch = PaddingCollator(zh_tokenizer, pad_to_multiple_of=multiple)(features)
    assert batch.keys() == expected.keys()
    for key, value in expected.items():
        assert batch[key].dtype == value.dtype and torch.equal(batch[key], value), key
    if multiple:
        assert batch["input_ids"].shape[1] % multiple == 0


class BatchShapes(TrainerCallback):
    """Records the shape of every batch the model is called with during training."""

    def __init__(self) -> None:
        self.shapes: list[tuple[int, ...]] = []
        self.losses: list[float] = []

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        model.register_forward_pre_hook(self.record, with_kwargs=True)

    def record(self, module, args, kwargs):
        if module.training:
            self.shapes.append(tuple(kwargs["input_ids"].shape))

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self.losses.append(float(logs["loss"]))


def _train(tmp_path, tokenizer_dir, review_csv, name: str, *cli: str) -> BatchShapes:
    recipe = tiny_recipe(
        tmp_path / name,
        tokenizer_dir,
        review_csv,
        # no dropout: padded positions then change nothing, whatever the padded length
        config_overrides=TINY_OVERRIDES + ",hidden_dropout_prob=0.0,attention_probs_dropout_prob=0.0",
        num_train_epochs=1,
        eval_strategy="no",
        save_strategy="no",
        load_best_model_at_end=False,
        logging_steps=1,
        threshold_tuning="none",
        max_length=64,
    )
    parser = RecipeParser((ModelArguments, DataArguments, HfSentTrainingArguments))
    model_args, data_args, training_args = parser.parse_recipe([str(recipe), *cli])
    shapes = BatchShapes()
    finetune(model_args, data_args, training_args, callbacks=[shapes])
    return shapes


def test_recipe_pads_to_the_multiple_asked_and_trains_alike(tmp_path, tokenizer_dir, review_csv):
    """``pad_to_multiple_of: 16`` (a GPU's few shapes) gives batches of multiples of 16 and the same training; on a
    CPU the default pads each batch to its longest review only (every padded token costs arithmetic there),
    also where the recipe does not say use_cpu."""
    exact = _train(tmp_path, tokenizer_dir, review_csv, "exact", "--use_cpu", "false")
    padded = _train(tmp_path, tokenizer_dir, review_csv, "padded", "--pad_to_multiple_of", "16")
    assert exact.shapes and len(padded.shapes) == len(exact.shapes)
    assert all(length % 16 == 0 for _, length in padded.shapes)
    assert any(length % 8 for _, length in exact.shapes), exact.shapes  # the longest review of each batch
    for (rows, length), (padded_rows, padded_length) in zip(exact.shapes, padded.shapes, strict=True):
        assert padded_rows == rows and padded_length == -(-length // 16) * 16
    assert padded.losses == pytest.approx(exact.losses, rel=1e-4)


@pytest.mark.parametrize("multiple", [None, 16])
def test_mlm_collator_pads_as_the_tokenizer_does(zh_tokenizer, reviews, multiple):
    """The MLM collator pads packed rows itself (fast): the same ids, mask and shape as ``tokenizer.pad``,
    only masked positions differ."""
    from hfsent.pretrain import MLMCollator

    rows = [{"input_ids": ids} for ids in zh_tokenizer(reviews, truncation=True, max_length=40)["input_ids"]]
    expected = zh_tokenizer.pad(rows, return_tensors="pt", pad_to_multiple_of=multiple)
    batch = MLMCollator(zh_tokenizer, seed=0, pad_to_multiple_of=multiple)(rows)
    assert batch["input_ids"].shape == expected["input_ids"].shape
    assert torch.equal(batch["attention_mask"], expected["attention_mask"])
    kept = batch["labels"] == -100
    assert torch.equal(batch["input_ids"][kept], expected["input_ids"][kept])
    assert (batch["labels"][~kept] == expected["input_ids"][~kept]).all() and (~kept).any()
