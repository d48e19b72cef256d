"""Helpers for the inference tests (predict, export, serve): a small trained model and review-like texts."""

from __future__ import annotations

import contextlib
import random
import re
from collections.abc import Iterator
from pathlib import Path

import torch

import hfsent

from .helpers import NEGATIVE_REVIEWS, POSITIVE_REVIEWS, tiny_config

# The clauses of the test reviews, by sentiment: review-like texts are built from them.
POSITIVE_CLAUSES = [c for r in POSITIVE_REVIEWS for c in re.split("[，。]", r) if c]
NEGATIVE_CLAUSES = [c for r in NEGATIVE_REVIEWS for c in re.split("[，。]", r) if c]


def scored_review_texts(n: int, seed: int = 0) -> tuple[list[str], list[float]]:
    """``n`` review-like texts of 1 to 4 clauses, positive and negative mixed, and each text's share of
    positive clauses."""
    rng = random.Random(seed)
    texts, shares = [], []
    for _ in range(n):
        k = rng.randint(1, 4)
        positive = rng.randint(0, k)
        clauses = rng.choices(POSITIVE_CLAUSES, k=positive) + rng.choices(NEGATIVE_CLAUSES, k=k - positive)
        rng.shuffle(clauses)
        texts.append("，".join(clauses))
        shares.append(positive / k)
    return texts, shares


def review_texts(n: int, seed: int = 0) -> list[str]:
    """``n`` review-like texts (see `scored_review_texts`)."""
    return scored_review_texts(n, seed)[0]


def save_trained_tiny_checkpoint(out: Path, tokenizer, steps: int = 40) -> Path:
    """Save a tiny hfsent model (and ``tokenizer``) trained for a few steps to predict a text's share of
    positive clauses: its probabilities spread over (0, 1), where a random model's sit at one value."""
    torch.manual_seed(0)
    model = hfsent.HfSentModel(tiny_config(len(tokenizer)))
    texts, shares = scored_review_texts(steps * 32, seed=1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    with one_torch_thread():
        for step in range(steps):
            batch = tokenizer(texts[step * 32 : (step + 1) * 32], padding=True, return_tensors="pt")
            z = model(**batch).logits[:, 1]
            target = torch.tensor(shares[step * 32 : (step + 1) * 32])
            torch.nn.functional.binary_cross_entropy_with_logits(z, target).backward()
            optimizer.step()
            optimizer.zero_grad()
    model.eval()
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """Run torch on one intra-op thread: tiny models are fastest so, and shared CI cores are not oversubscribed."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
