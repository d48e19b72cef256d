"""Packing documents into blocks: [SEP] at every document boundary, no token lost, word starts kept."""

from __future__ import annotations

import itertools
import random

import pytest
from datasets import Dataset

from hfsent.pretrain import frame_lines, pack_blocks
from hfsent.pretrain.packing import encode_corpus_batch

CLS, SEP = 101, 102


def _documents(seed: int, n: int = 60) -> list[list[int]]:
    """Documents whose tokens all carry their document's number (1000 + i); some are empty."""
    rng = random.Random(seed)
    return [[1000 + i] * rng.choice([0, 1, 2, 5, 13, 40, 90]) for i in range(n)]


def _stream(docs: list[list[int]]) -> list[int]:
    return [t for doc in docs if doc for t in [*doc, SEP]]


@pytest.mark.parametrize("block_size", [2, 8, 16, 33, 64])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_blocks_mark_every_document_boundary_and_lose_nothing(block_size, seed):
    docs = _documents(seed)
    blocks = pack_blocks(docs, block_size, CLS, SEP)["input_ids"]

    assert all(b[0] == CLS and CLS not in b[1:] for b in blocks)
    assert all(len(b) == block_size for b in blocks[:-1]) and 2 <= len(blocks[-1]) <= block_size
    for block in blocks:  # a change of document inside a block only ever happens right after a [SEP]
        for previous, token in itertools.pairwise(block[1:]):
            if token != SEP and previous not in (SEP, token):
                pytest.fail(f"block crosses from document {previous} to {token} without [SEP]: {block}")

    # Concatenating the blocks gives back every document and separator, in order; at most a
    # lone trailing [SEP] (which would make a block of [CLS] [SEP] only) is left out.
    packed = [t for b in blocks for t in b[1:]]
    expected = _stream(docs)
    assert packed == expected[: len(packed)] and expected[len(packed) :] in ([], [SEP])


def test_word_starts_travel_with_their_tokens():
    rng = random.Random(3)
    docs = _documents(3)
    starts = [[1 if j == 0 or rng.random() < 0.5 else 0 for j in range(len(d))] for d in docs]
    out = pack_blocks(docs, 16, CLS, SEP, word_starts=starts)
    assert [len(w) for w in out["word_starts"]] == [len(b) for b in out["input_ids"]]
    flat_starts = [s for d, ws in zip(docs, starts, strict=True) if d for s in [*ws, 1]]
    position = 0
    for ids, ws in zip(out["input_ids"], out["word_starts"], strict=True):
        assert ws[0] == 1 and ws[1] == 1  # [CLS], and the block's first token starts a word
        for token, start in zip(ids[2:], ws[2:], strict=True):
            assert start == flat_starts[position + 1] and (token != SEP or start == 1)
            position += 1
        position += 1


def test_line_by_line_frames_and_truncates_each_document():
    docs = _documents(4)
    rows = frame_lines(docs, 10, CLS, SEP)["input_ids"]
    non_empty = [d for d in docs if d]
    assert len(rows) == len(non_empty)
    for row, doc in zip(rows, non_empty, strict=True):
        assert row == [CLS, *doc[:8], SEP]


def test_packing_through_datasets_map_keeps_every_token(zh_tokenizer):
    texts = [f"第{i}条评论：" + "物流很快，质量很好。" * (i % 7) for i in range(50)]
    dataset = Dataset.from_dict({"text": texts})
    packed = dataset.map(
        encode_corpus_batch,
        batched=True,
        batch_size=7,  # several map batches, each with its own remainder
        fn_kwargs={"tokenizer": zh_tokenizer, "max_length": 24},
        remove_columns=["text"],
    )
    blocks = packed["input_ids"]
    content = [t for b in blocks for t in b[1:]]
    sep = zh_tokenizer.sep_token_id
    expected = [t for ids in zh_tokenizer(texts, add_special_tokens=False)["input_ids"] for t in [*ids, sep]]
    assert content == expected
    assert sum(len(b) < 24 for b in blocks) <= 8  # only each map batch's remainder is short
