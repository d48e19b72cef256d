"""The model trains with the stock transformers.Trainer (behaviour, not timing)."""

from __future__ import annotations

import torch
from datasets import Dataset
from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

import hfsent

from ..fixtures.helpers import NEGATIVE_REVIEWS, POSITIVE_REVIEWS, tiny_config


def test_trainer_learns_a_separable_toy_set(tmp_path, zh_tokenizer):
    texts = POSITIVE_REVIEWS + NEGATIVE_REVIEWS
    labels = [1] * len(POSITIVE_REVIEWS) + [0] * len(NEGATIVE_REVIEWS)
    data = Dataset.from_dict({"text": texts, "label": labels}).map(
        lambda b: zh_tokenizer(b["text"], truncation=True, max_length=64), batched=True, remove_columns=["text"]
    )
    torch.manual_seed(0)
    model = hfsent.HfSentModel(tiny_config(len(zh_tokenizer), hidden_dropout_prob=0.0))
    args = TrainingArguments(
        output_dir=str(tmp_path),
        per_device_train_batch_size=4,
        num_train_epochs=20,  # 60 steps
        learning_rate=3e-3,
        logging_steps=3,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        seed=0,
        disable_tqdm=True,
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=data,
        data_collator=DataCollatorWithPadding(zh_tokenizer),
    )
    trainer.train()
    losses = [log["loss"] for log in trainer.state.log_history if "loss" in log]
    assert trainer.state.global_step == 60
    assert losses[-1] < 0.5 * losses[0]

    results = hfsent.predict(texts, model, zh_tokenizer)
    assert [r["label"] for r in results] == ["pos" if y else "neg" for y in labels]
