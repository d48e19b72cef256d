"""pytest fixtures for hfsent's tests (helpers live in tests/fixtures/helpers.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

import hfsent

from .fixtures.helpers import REVIEWS, review_tokenizer, tiny_config, tiny_recipe, write_review_csv
from .fixtures.hub_server import HubServer, running_hub


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


@pytest.fixture
def hub(tmp_path_factory, monkeypatch) -> Iterator[HubServer]:
    """A fresh in-process fake Hugging Face Hub that the real ``huggingface_hub`` client talks to.

    Yields a started `tests.fixtures.hub_server.HubServer`: ``.url``, ``.token`` (valid write token of ``"user"``),
    ``.repos``/``.repo(id)`` (commits and files, for assertions), ``.requests`` (every request: method, path,
    headers, body), ``.find_uploaded(needle)``, ``.fail_next(route_or_substring, times=, status=, disconnect=)``,
    ``.add_repo(...)``, ``.add_token(...)``, ``.env``.

    ``HF_ENDPOINT``, ``HF_HOME`` (fresh tmp dir), ``HF_TOKEN=hub.token``, ``HF_HUB_DISABLE_XET=1`` and
    ``HF_HUB_OFFLINE=0`` are set with ``monkeypatch.setenv``, so subprocesses inherit them (give a child its own
    empty cache with ``env={**os.environ, "HF_HOME": ...}``). ``huggingface_hub`` reads them once at import, so in
    this process their import-time copies are monkeypatched too (``constants.ENDPOINT``, the cache/token paths,
    ``huggingface_hub.hf_api.api.endpoint``, ...): see `tests.fixtures.hub_server.configure_client`. All undone
    afterwards.
    """
    with running_hub(tmp_path_factory.mktemp("hub"), monkeypatch) as server:
        yield server


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory, zh_tokenizer):
    """The review tokenizer saved to a folder (a valid ``tokenizer_name``)."""
    out = tmp_path_factory.mktemp("tokenizer")
    zh_tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def review_csv(tmp_path_factory):
    """A CSV of 200 separable synthetic reviews (cat, label, review)."""
    return write_review_csv(tmp_path_factory.mktemp("data") / "reviews.csv")


@pytest.fixture(scope="session")
def finetuned_dir(tmp_path_factory, tokenizer_dir, review_csv):
    """The output directory of a tiny model fine-tuned once per session by ``hfsent train`` (treat it read-only).

    Holds what a real run writes: model, tokenizer, results, plots, model card, handler.py and two checkpoints.
    """
    from hfsent.cli import main as hfsent_main

    root = tmp_path_factory.mktemp("finetuned")
    assert hfsent_main(["train", str(tiny_recipe(root, tokenizer_dir, review_csv, num_train_epochs=2))]) == 0
    return root / "out"


@pytest.fixture
def local_http_client(monkeypatch):
    """Let huggingface_hub clients talk to a server on 127.0.0.1 even where HF_HUB_OFFLINE=1 (as in CI)."""
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
