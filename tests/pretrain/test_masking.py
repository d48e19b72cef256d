"""MLM masking statistics: 15 % selected, 80/10/10, never special tokens or padding, whole words."""

from __future__ import annotations

import jieba
import pytest
import torch

from hfsent.pretrain import MLMCollator, frame_lines, pack_blocks, premask, tokenize_documents

from ..fixtures.helpers import REVIEWS

P = 0.15
TOL_SELECTED = 0.01  # the selected share of ~20k eligible tokens: sd ~0.003 (tokens) / ~0.004 (words)
TOL_SPLIT = 0.03  # 80/10/10 among ~3k selected tokens (~1.8k words): sd <= 0.01


def _corpus_texts() -> list[str]:
    return [a + b for a in REVIEWS for b in REVIEWS] * 4  # 576 documents, ~20k characters


def _features(tokenizer, whole_word_mask: bool, line_by_line: bool) -> list[dict]:
    texts = _corpus_texts()
    encoded = tokenize_documents(texts, tokenizer, whole_word_mask=whole_word_mask)
    shape = frame_lines if line_by_line else pack_blocks
    rows = shape(
        encoded["input_ids"],
        48,
        tokenizer.cls_token_id,
        tokenizer.sep_token_id,
        word_starts=encoded.get("word_starts"),
    )
    return [dict(zip(rows, values, strict=True)) for values in zip(*rows.values(), strict=True)]


def _word_ids(features: list[dict], length: int) -> torch.Tensor:
    starts = torch.ones(len(features), length, dtype=torch.long)
    for i, f in enumerate(features):
        starts[i, : len(f["word_starts"])] = torch.tensor(f["word_starts"])
    return torch.cumsum(starts, dim=1)


def _original_ids(features: list[dict], length: int, pad_id: int) -> torch.Tensor:
    ids = torch.full((len(features), length), pad_id)
    for i, f in enumerate(features):
        ids[i, : len(f["input_ids"])] = torch.tensor(f["input_ids"])
    return ids


@pytest.mark.parametrize("whole_word_mask", [False, True], ids=["tokens", "whole-words"])
def test_selection_share_and_80_10_10_split(zh_tokenizer, whole_word_mask):
    features = _features(zh_tokenizer, whole_word_mask, line_by_line=True)  # ragged: the batch has padding
    collator = MLMCollator(zh_tokenizer, mlm_probability=P, whole_word_mask=whole_word_mask, seed=0)
    batch = collator(features)
    original = _original_ids(features, batch["input_ids"].shape[1], zh_tokenizer.pad_token_id)
    selected = batch["labels"] != -100
    special = torch.isin(original, torch.tensor(zh_tokenizer.all_special_ids))
    padding = batch["attention_mask"] == 0
    assert padding.any() and special.any()

    # never special tokens or padding; labels are the original ids
    assert not (selected & (special | padding)).any()
    assert torch.equal(batch["labels"][selected], original[selected])
    # everything else is untouched
    assert torch.equal(batch["input_ids"][~selected], original[~selected])

    eligible = ~(special | padding)
    share = selected.sum().item() / eligible.sum().item()
    assert abs(share - P) < TOL_SELECTED, share

    chosen_inputs, chosen_targets = batch["input_ids"][selected], original[selected]
    masked = (chosen_inputs == zh_tokenizer.mask_token_id).float().mean().item()
    kept = (chosen_inputs == chosen_targets).float().mean().item()
    replaced = 1.0 - masked - kept
    assert abs(masked - 0.8) < TOL_SPLIT and abs(kept - 0.1) < TOL_SPLIT and abs(replaced - 0.1) < TOL_SPLIT


def test_packed_blocks_are_masked_without_padding(zh_tokenizer):
    features = _features(zh_tokenizer, whole_word_mask=False, line_by_line=False)
    batch = MLMCollator(zh_tokenizer, seed=1)(features[:-1])  # the last block is the shorter remainder
    assert batch["input_ids"].shape == (len(features) - 1, 48)
    assert bool(batch["attention_mask"].all())
    assert not (batch["labels"][:, 0] != -100).any()  # [CLS] never selected


def test_whole_word_masking_masks_every_character_of_a_chosen_word(zh_tokenizer):
    features = _features(zh_tokenizer, whole_word_mask=True, line_by_line=False)
    batch = MLMCollator(zh_tokenizer, mlm_probability=P, whole_word_mask=True, seed=2)(features)
    length = batch["input_ids"].shape[1]
    words = _word_ids(features, length)
    original = _original_ids(features, length, zh_tokenizer.pad_token_id)
    selected = batch["labels"] != -100
    is_mask = batch["input_ids"] == zh_tokenizer.mask_token_id
    multi_char_words = chosen_words = 0
    for row in range(len(features)):
        for word in words[row].unique():
            at = words[row] == word
            if at.sum() < 2 or torch.isin(original[row][at], torch.tensor(zh_tokenizer.all_special_ids)).any():
                continue
            multi_char_words += 1
            assert selected[row][at].all() or not selected[row][at].any()  # all characters or none
            if selected[row][at].any():
                chosen_words += 1
                # the 80/10/10 choice is per word: all [MASK], or none of them
                assert is_mask[row][at].all() or not is_mask[row][at].any()
    assert multi_char_words > 1000 and abs(chosen_words / multi_char_words - P) < 0.03


def test_word_starts_follow_jieba(zh_tokenizer):
    texts = [*REVIEWS[:4], "我买了iPhone 13，物流很快"]
    encoded = tokenize_documents(texts, zh_tokenizer, whole_word_mask=True)
    offsets = zh_tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    for text, starts, spans in zip(texts, encoded["word_starts"], offsets, strict=True):
        words: list[str] = []
        for start, (begin, end) in zip(starts, spans, strict=True):
            if start:
                words.append("")
            words[-1] += text[begin:end]
        expected = [w.lower() for w in jieba.lcut(text) if w.strip()]
        assert [w.lower() for w in words] == expected


def test_premasked_examples_are_padded_not_masked_again(zh_tokenizer):
    from datasets import Dataset

    features = _features(zh_tokenizer, whole_word_mask=True, line_by_line=True)[:40]
    dataset = Dataset.from_list(features)
    collator = MLMCollator(zh_tokenizer, whole_word_mask=True)
    once, again = premask(dataset, collator, seed=3), premask(dataset, collator, seed=3)
    assert once["input_ids"] == again["input_ids"] and once["labels"] == again["labels"]  # reproducible
    assert any(label != -100 for row in once["labels"] for label in row)
    batch = collator(list(once))
    for i, row in enumerate(once):
        n = len(row["input_ids"])
        assert batch["input_ids"][i, :n].tolist() == row["input_ids"]
        assert batch["labels"][i, :n].tolist() == row["labels"]
        assert (batch["labels"][i, n:] == -100).all()


def test_whole_word_mask_needs_word_starts(zh_tokenizer):
    collator = MLMCollator(zh_tokenizer, whole_word_mask=True)
    with pytest.raises(ValueError, match="word_starts"):
        collator([{"input_ids": [zh_tokenizer.cls_token_id, 100, 101, zh_tokenizer.sep_token_id]}])
