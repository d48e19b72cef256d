"""A short offline demo of the hfsent model: build, save, reload through transformers, classify.

Runs with no network. The model is untrained (random head): this shows the plumbing, not accuracy.
"""

from __future__ import annotations

import tempfile

from transformers import pipeline

import hfsent
from hfsent.tokenizer import train_wordpiece_tokenizer

TEXTS = ["物流很快，质量很好，非常满意", "太差了，用两天就坏了", "还可以吧，一般般"]

with tempfile.TemporaryDirectory() as out:
    tokenizer = train_wordpiece_tokenizer(TEXTS * 10, vocab_size=300)
    config = hfsent.HfSentConfig(
        vocab_size=len(tokenizer), hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128
    )
    hfsent.HfSentModel(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    clf = pipeline("text-classification", model=out)
    for text, row, pred in zip(TEXTS, clf(TEXTS), hfsent.predict(TEXTS, out), strict=True):
        print(f"{text}\tpipeline={row['label']} {row['score']:.3f}\thfsent.predict={pred['label']}")
