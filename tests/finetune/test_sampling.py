"""``train_sampling_strategy: group_by_length_stratified``: length-grouped steps that keep the label mix."""

from __future__ import annotations

import random

import torch
from datasets import Dataset
from transformers import DataCollatorWithPadding

import hfsent
from hfsent import cli
from hfsent.finetune import HfSentTrainer, HfSentTrainingArguments
from hfsent.finetune.sampling import length_grouped_step_indices

from ..fixtures.helpers import tiny_config, tiny_recipe


def _skewed_data(n: int = 960, seed: int = 0) -> tuple[list[int], list[int]]:
    """Lengths and labels where length goes with the label, as in reviews: positives short, negatives long."""
    rng = random.Random(seed)
    labels = [int(rng.random() < 0.7) for _ in range(n)]
    lengths = [rng.randint(5, 40) if y else rng.randint(30, 128) for y in labels]
    return lengths, labels


def _steps(order: list[int], size: int) -> list[list[int]]:
    return [order[i : i + size] for i in range(0, len(order), size)]


def test_steps_keep_the_label_mix_and_pad_far_less_than_random_steps():
    lengths, labels = _skewed_data()
    order = length_grouped_step_indices(lengths, 32, torch.Generator().manual_seed(1), labels)
    assert sorted(order) == list(range(len(lengths)))
    steps = _steps(order, 32)
    share = sum(labels) / len(labels)
    for step in steps:
        assert [lengths[i] for i in step] == sorted((lengths[i] for i in step), reverse=True)
        assert abs(sum(labels[i] for i in step) / 32 - share) <= 2 / 32  # no label-skewed steps
    # within each label the steps are length groups: padding to each label's longest is far below random steps'
    random_steps = _steps(torch.randperm(len(lengths), generator=torch.Generator().manual_seed(1)).tolist(), 32)

    def padding(steps: list[list[int]]) -> int:
        return sum(
            len(part) * max(lengths[i] for i in part) - sum(lengths[i] for i in part)
            for step in steps
            for part in ([i for i in step if labels[i] == y] for y in (0, 1))
            if part
        )

    assert padding(steps) < 0.25 * padding(random_steps)
    # transformers' plain length grouping on the same data makes steps of one label (the skew this avoids)
    plain = _steps(length_grouped_step_indices(lengths, 32, torch.Generator().manual_seed(1)), 32)
    assert max(abs(sum(labels[i] for i in step) / 32 - share) for step in plain) > 0.25


def test_one_step_groups_are_the_random_samplers_steps():
    lengths, labels = _skewed_data(203)
    order = length_grouped_step_indices(lengths, 32, torch.Generator().manual_seed(7), labels, group_steps=1)
    random_order = torch.randperm(len(lengths), generator=torch.Generator().manual_seed(7)).tolist()
    assert {frozenset(step) for step in _steps(order, 32)} == {frozenset(step) for step in _steps(random_order, 32)}
    assert _steps(order, 32)[-1] == sorted(random_order[192:], key=lambda i: -lengths[i])  # the short tail last


def _trainer(tmp_path, zh_tokenizer, **args) -> HfSentTrainer:
    lengths, labels = _skewed_data(200, seed=2)
    data = Dataset.from_dict({"text": ["好" * (n - 2) for n in lengths], "labels": labels}).map(
        lambda b: zh_tokenizer(b["text"]), batched=True, remove_columns=["text"]
    )
    training_args = HfSentTrainingArguments(
        output_dir=str(tmp_path), use_cpu=True, seed=3, eval_strategy="no", load_best_model_at_end=False, **args
    )
    model = hfsent.HfSentModel(tiny_config(len(zh_tokenizer), max_position_embeddings=160))
    collator = DataCollatorWithPadding(zh_tokenizer)
    return HfSentTrainer(model=model, args=training_args, train_dataset=data, data_collator=collator)


def _epoch(trainer: HfSentTrainer, epoch: int) -> list[dict]:
    loader = trainer.get_train_dataloader()
    loader.set_epoch(epoch)  # what the Trainer does at the start of each epoch
    return list(loader)


def test_trainer_steps_are_length_groups_with_the_label_mix(tmp_path, zh_tokenizer):
    trainer = _trainer(tmp_path, zh_tokenizer, per_device_train_batch_size=10, gradient_accumulation_steps=2)
    assert trainer.args.train_sampling_strategy == "group_by_length_stratified"  # hfsent's default
    batches = _epoch(trainer, 0)
    assert len(batches) == 20
    share = sum(b["labels"].sum().item() for b in batches) / 200
    for first, second in zip(batches[::2], batches[1::2], strict=True):  # one optimizer step each
        assert first["input_ids"].shape[1] >= second["input_ids"].shape[1]  # micro-batches in length order
        positives = first["labels"].sum().item() + second["labels"].sum().item()
        assert abs(positives / 20 - share) <= 2 / 20
    # the steps come in random length order, not one long-to-short sweep over the epoch
    widths = [b["input_ids"].shape[1] for b in batches[::2]]
    assert widths != sorted(widths, reverse=True)


def test_epochs_reshuffle_and_the_same_seed_rebuilds_the_same_order(tmp_path, zh_tokenizer):
    settings = dict(per_device_train_batch_size=10, gradient_accumulation_steps=2)

    def rows(batches: list[dict]) -> list[list[int]]:
        return [b["input_ids"].sum(dim=1).tolist() for b in batches]

    trainer = _trainer(tmp_path, zh_tokenizer, **settings)
    first, second = rows(_epoch(trainer, 0)), rows(_epoch(trainer, 1))
    assert first != second
    assert sorted(x for batch in first for x in batch) == sorted(x for batch in second for x in batch)
    again = _trainer(tmp_path, zh_tokenizer, **settings)  # e.g. a resumed run
    assert rows(_epoch(again, 1)) == second


def test_length_group_steps_below_one_is_rejected_naming_the_key(tmp_path, tokenizer_dir, review_csv, capsys):
    recipe = tiny_recipe(tmp_path, tokenizer_dir, review_csv, length_group_steps=0)
    assert cli.main(["train", str(recipe)]) == 2
    assert "length_group_steps must be >= 1" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
