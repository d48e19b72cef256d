"""pytest fixtures for hfsent's tests (helpers live in tests/helpers.py)."""

from __future__ import annotations

import pytest
import torch

import hfsent

from .helpers import REVIEWS, review_tokenizer, tiny_config


@pytest.fixture(scope="session")
def zh_tokenizer():
    """The bert-base-chinese tokenizer (or a stand-in trained on the test reviews)."""
    return review_tokenizer()


@pytest.fixture
def tiny_checkpoint(tmp_path, zh_tokenizer):
    """A saved tiny hfsent checkpoint (model + tokenizer) with a non-trivial head."""
    torch.manual_seed(0)
    model = hfsent.HfSentModel(tiny_config(len(zh_tokenizer)))
    with torch.no_grad():
        model.classifier.weight.normal_(0.0, 2.0)
    out = tmp_path / "ckpt"
    model.save_pretrained(out)
    zh_tokenizer.save_pretrained(out)
    return out


@pytest.fixture
def reviews():
    """Chinese product reviews, half positive then half negative."""
    return list(REVIEWS)
