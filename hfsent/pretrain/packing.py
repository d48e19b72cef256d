"""From documents to MLM training sequences: tokenization, jieba word boundaries, packing.

Packing (the default) concatenates the documents, each followed by ``[SEP]``, and cuts the stream
into blocks of ``max_length`` tokens, each starting with ``[CLS]``: no padding, and every document
boundary inside a block is marked by a ``[SEP]``. Line-by-line makes one ``[CLS] doc [SEP]`` sequence
per document, truncated to ``max_length``.

Memory stays bounded whatever the length of a document: `split_long_documents` first cuts long texts
into pieces of at most ``max_chars`` characters (at whitespace where there is some) that continue one
another (no ``[SEP]`` between them), so no document is ever tokenized whole.

With whole-word masking, each token also gets a *word start* flag (1 where a word begins) from a
Chinese word segmenter (jieba), so that the collator can mask all characters of a word together;
bert-base-chinese itself tokenizes one character per token and knows no words.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from transformers import PreTrainedTokenizerBase

from ..errors import RecipeError

Segmenter = Callable[[str], list[str]]


def jieba_segmenter() -> Segmenter:
    """Return ``jieba.lcut`` (quiet), or raise `RecipeError` saying how to install jieba."""
    try:
        import jieba
    except ImportError:
        raise RecipeError("whole_word_mask needs the jieba segmenter: pip install 'hfsent[pretrain]'") from None
    import logging

    jieba.setLogLevel(logging.WARNING)
    return jieba.lcut


def word_starts_from_offsets(text: str, offsets: Sequence[tuple[int, int]], segment: Segmenter) -> list[int]:
    """Flag each token (given by its character ``offsets`` in ``text``) with 1 if it begins a word.

    Words are the pieces ``segment(text)`` returns; a token belongs to the word holding its first
    character, so word pieces of one word (``ip``, ``##hone``) share it.
    """
    char_word: list[int] = []
    for index, word in enumerate(segment(text)):
        char_word.extend([index] * len(word))
    del char_word[len(text) :]
    # characters a segmenter did not return (jieba returns them all): one word each
    first_free = char_word[-1] + 1 if char_word else 0
    char_word.extend(range(first_free, first_free + len(text) - len(char_word)))
    starts, previous = [], None
    for start, _ in offsets:
        word = char_word[min(start, len(text) - 1)]
        starts.append(int(word != previous))
        previous = word
    return starts


def tokenize_documents(
    texts: Sequence[str],
    tokenizer: PreTrainedTokenizerBase,
    whole_word_mask: bool = False,
    segment: Segmenter | None = None,
) -> dict[str, list[list[int]]]:
    """Tokenize documents without special tokens or truncation.

    Returns ``input_ids`` and, with ``whole_word_mask``, ``word_starts`` (jieba word boundaries, or
    those of ``segment``); whole-word masking needs a fast tokenizer (character offsets).
    """
    if whole_word_mask and not tokenizer.is_fast:
        raise RecipeError("whole_word_mask needs a fast tokenizer (with a tokenizer.json)")
    encoded = tokenizer(
        list(texts),
        add_special_tokens=False,
        return_attention_mask=False,
        return_token_type_ids=False,
        return_offsets_mapping=whole_word_mask,
        verbose=False,  # documents longer than model_max_length are expected: they are cut into blocks
    )
    out = {"input_ids": encoded["input_ids"]}
    if whole_word_mask:
        segment = segment or jieba_segmenter()
        out["word_starts"] = [
            word_starts_from_offsets(text, offsets, segment)
            for text, offsets in zip(texts, encoded["offset_mapping"], strict=True)
        ]
    return out


def chars_per_piece(max_length: int) -> int:
    """How many characters `split_long_documents` puts in one piece for sequences of ``max_length`` tokens."""
    return max(1024, 8 * max_length)


def split_long_documents(batch: dict[str, list[Any]], max_chars: int, keep_rest: bool = True) -> dict[str, list[Any]]:
    """`datasets.map` function (batched): cut texts longer than ``max_chars`` into pieces.

    Returns ``text`` and ``continues`` (True where the next piece continues the same document). A cut
    falls on the last whitespace of the second half of a window if there is one (so words stay whole),
    else after ``max_chars`` characters (Chinese text is tokenized one character per token, so such a
    cut changes no token). ``keep_rest=False`` keeps each document's first piece only (line-by-line
    sequences are truncated far before its end).
    """
    texts: list[str] = []
    continues: list[bool] = []
    for text in batch["text"]:
        start = 0
        while len(text) - start > max_chars:
            end = start + max_chars
            space = max(text.rfind(" ", start + max_chars // 2, end), text.rfind("\n", start + max_chars // 2, end))
            end = space + 1 if space > start else end
            texts.append(text[start:end])
            continues.append(keep_rest)
            start = end
            if not keep_rest:
                break
        else:
            texts.append(text[start:])
            continues.append(False)
    return {"text": texts, "continues": continues}


def pack_blocks(
    input_ids: Sequence[Sequence[int]],
    block_size: int,
    cls_token_id: int | None,
    sep_token_id: int,
    word_starts: Sequence[Sequence[int]] | None = None,
    continues: Sequence[bool] | None = None,
    full_blocks_only: bool = False,
) -> dict[str, list[list[int]]]:
    """Pack tokenized documents into ``[CLS]``-led blocks of ``block_size`` tokens.

    The stream ``doc1 [SEP] doc2 [SEP] ...`` is cut into pieces of ``block_size - 1`` tokens, each
    prefixed with ``[CLS]``. Documents may span blocks; no token is dropped: the last block keeps
    the remainder and is shorter (the collator pads it). Empty documents are skipped. With
    ``word_starts``, the flags travel with their tokens; special tokens and the first token of a
    block count as word starts. ``continues[i]`` (see `split_long_documents`): piece ``i`` is followed
    by more of the same document, so no ``[SEP]`` after it.

    Causal LM (run_clm.py's ``group_texts``): ``cls_token_id=None`` prefixes nothing (pieces of
    ``block_size`` tokens; ``sep_token_id`` is then the EOS between documents) and ``full_blocks_only``
    drops the shorter last block, so every block is full and nothing is padded.
    """
    if block_size < 2:
        raise ValueError(f"block_size must be at least 2, got {block_size}")
    stream: list[int] = []
    starts: list[int] = []
    for index, ids in enumerate(input_ids):
        if not ids:
            continue
        stream.extend(ids)
        ends = not (continues is not None and continues[index])
        if ends:
            stream.append(sep_token_id)
        if word_starts is not None:
            starts.extend(word_starts[index])
            if ends:
                starts.append(1)
    prefix = [] if cls_token_id is None else [cls_token_id]
    step = block_size - len(prefix)
    offsets = range(0, len(stream), step)
    if offsets and stream[offsets[-1] :] == [sep_token_id]:  # a lone trailing separator carries nothing
        offsets = offsets[:-1]
    if full_blocks_only and offsets and len(stream) - offsets[-1] < step:
        offsets = offsets[:-1]
    out: dict[str, list[list[int]]] = {"input_ids": [[*prefix, *stream[i : i + step]] for i in offsets]}
    if word_starts is not None:
        out["word_starts"] = [[1, 1, *starts[i + 1 : i + step]] for i in offsets]
    return out


def frame_lines(
    input_ids: Sequence[Sequence[int]],
    max_length: int,
    cls_token_id: int,
    sep_token_id: int,
    word_starts: Sequence[Sequence[int]] | None = None,
) -> dict[str, list[list[int]]]:
    """One ``[CLS] doc [SEP]`` sequence per non-empty document, truncated to ``max_length``."""
    keep = max_length - 2
    rows = [i for i, ids in enumerate(input_ids) if ids]
    out: dict[str, list[list[int]]] = {"input_ids": [[cls_token_id, *input_ids[i][:keep], sep_token_id] for i in rows]}
    if word_starts is not None:
        out["word_starts"] = [[1, *word_starts[i][:keep], 1] for i in rows]
    return out


def encode_corpus_batch(
    batch: dict[str, list[Any]],
    tokenizer: PreTrainedTokenizerBase,
    max_length: int,
    line_by_line: bool = False,
    whole_word_mask: bool = False,
    causal: bool = False,
) -> dict[str, list[list[int]]]:
    """`datasets.map` function (batched): ``text`` documents -> packed blocks or framed lines.

    With a ``continues`` column (`split_long_documents`), packing joins the pieces of a document. ``causal``:
    full blocks of ``max_length`` tokens, the tokenizer's EOS between documents, no ``[CLS]`` (see `pack_blocks`).
    """
    continues = batch.get("continues")
    encoded = tokenize_documents(batch["text"], tokenizer, whole_word_mask)
    ids, starts = encoded["input_ids"], encoded.get("word_starts")
    if causal:
        return pack_blocks(ids, max_length, None, tokenizer.eos_token_id, continues=continues, full_blocks_only=True)
    if line_by_line:
        return frame_lines(ids, max_length, tokenizer.cls_token_id, tokenizer.sep_token_id, word_starts=starts)
    return pack_blocks(
        ids, max_length, tokenizer.cls_token_id, tokenizer.sep_token_id, word_starts=starts, continues=continues
    )


__all__ = [
    "chars_per_piece",
    "encode_corpus_batch",
    "frame_lines",
    "jieba_segmenter",
    "pack_blocks",
    "split_long_documents",
    "tokenize_documents",
    "word_starts_from_offsets",
]
