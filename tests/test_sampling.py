"""``train_sampling_strategy: length_sorted_steps``: each optimizer step a random sample, cut by length."""

from __future__ import annotations

import random

import torch
from datasets import Dataset
from transformers import DataCollatorWithPadding

import hfsent
from hfsent.sampling import length_sorted_step_indices
from hfsent.training import HfSentTrainer, HfSentTrainingArguments

from .helpers import tiny_config


def test_each_step_is_the_random_samplers_step_sorted_by_length():
    lengths = [random.Random(0).randint(1, 128) for _ in range(203)]
    step = 32
    order = length_sorted_step_indices(lengths, step, torch.Generator().manual_seed(7))
    random_order = torch.randperm(len(lengths), generator=torch.Generator().manual_seed(7)).tolist()
    assert sorted(order) == list(range(len(lengths)))
    for start in range(0, len(lengths), step):
        got, want = order[start : start + step], random_order[start : start + step]
        assert set(got) == set(want)  # the same examples as random sampling's step
        assert [lengths[i] for i in got] == sorted((lengths[i] for i in got), reverse=True)


def _trainer(tmp_path, zh_tokenizer, **args) -> tuple[HfSentTrainer, list[int]]:
    rng = random.Random(1)
    texts = ["好" * rng.randint(1, 60) for _ in range(100)]
    data = Dataset.from_dict({"text": texts, "labels": [i % 2 for i in range(100)]}).map(
        lambda b: zh_tokenizer(b["text"]), batched=True, remove_columns=["text"]
    )
    model = hfsent.HfSentModel(tiny_config(len(zh_tokenizer)))
    training_args = HfSentTrainingArguments(
        output_dir=str(tmp_path), use_cpu=True, seed=3, eval_strategy="no", load_best_model_at_end=False, **args
    )
    trainer = HfSentTrainer(
        model=model, args=training_args, train_dataset=data, data_collator=DataCollatorWithPadding(zh_tokenizer)
    )
    return trainer, [len(t) + 2 for t in texts]


def test_trainer_micro_batches_are_length_sorted_within_each_optimizer_step(tmp_path, zh_tokenizer):
    trainer, lengths = _trainer(tmp_path, zh_tokenizer, per_device_train_batch_size=5, gradient_accumulation_steps=4)
    assert trainer.args.train_sampling_strategy == "length_sorted_steps"  # hfsent's default
    widths = [batch["input_ids"].shape[1] for batch in trainer.get_train_dataloader()]
    assert len(widths) == 20
    steps = [widths[i : i + 4] for i in range(0, 20, 4)]
    assert all(step == sorted(step, reverse=True) for step in steps)
    # padding: each micro-batch is as wide as its longest text, far below random batches' widths
    assert sum(widths) < 0.8 * len(widths) * max(lengths)
    # and the steps are not sorted among themselves: the whole epoch is not one long-to-short sweep
    assert [step[0] for step in steps] != sorted((step[0] for step in steps), reverse=True)


def _epoch(trainer: HfSentTrainer, epoch: int) -> list[list[int]]:
    loader = trainer.get_train_dataloader()
    loader.set_epoch(epoch)  # what the Trainer does at the start of each epoch
    return [batch["input_ids"].sum(dim=1).tolist() for batch in loader]


def test_epochs_reshuffle_and_the_same_seed_rebuilds_the_same_order(tmp_path, zh_tokenizer):
    settings = dict(per_device_train_batch_size=5, gradient_accumulation_steps=4)
    trainer, _ = _trainer(tmp_path, zh_tokenizer, **settings)
    first, second = _epoch(trainer, 0), _epoch(trainer, 1)
    assert first != second
    assert sorted(x for batch in first for x in batch) == sorted(x for batch in second for x in batch)
    again, _ = _trainer(tmp_path, zh_tokenizer, **settings)  # e.g. a resumed run
    assert _epoch(again, 1) == second
