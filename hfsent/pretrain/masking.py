"""The MLM collator: `DataCollatorForLanguageModeling` plus Chinese whole-word masking.

Token-level masking is the stock collator's: each eligible token is selected with probability
``mlm_probability``; of the selected, ``mask_replace_prob`` become ``[MASK]``, ``random_replace_prob``
a random token, the rest stay as they are (80/10/10 by default). Special tokens and padding are
never selected.

Whole-word masking (``whole_word_mask=True``) selects *words* instead: the examples carry a
``word_starts`` feature (1 where a jieba word begins, see `hfsent.pretrain.packing`); each word is
selected with probability ``mlm_probability`` (so about that share of tokens is selected, as
without it) and the 80/10/10 choice is made per word, so all characters of a chosen word are
replaced the same way and the model cannot read half a word to guess the other half. This
replaces the stock ``whole_word_mask``, which finds words from whitespace offsets (a Chinese
sentence would be one word) and drops the 80/10/10 split.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from datasets import Dataset
from transformers import DataCollatorForLanguageModeling
from transformers.data.data_collator import pad_without_fast_tokenizer_warning

from ..padding import pad_rows, padded_length

IGNORE_INDEX = -100
# masked_positions are padded to a multiple of this: few distinct shapes for the LM head
MASKED_POSITIONS_MULTIPLE = 8


def masked_positions(labels: torch.Tensor) -> torch.Tensor:
    """Flat (row-major) indices of ``labels != -100``, padded with -1 to a multiple of `MASKED_POSITIONS_MULTIPLE`."""
    found = (labels.reshape(-1) != IGNORE_INDEX).nonzero().squeeze(1)
    size = -(-len(found) // MASKED_POSITIONS_MULTIPLE) * MASKED_POSITIONS_MULTIPLE
    return torch.cat([found, found.new_full((size - len(found),), -1)])


@dataclass
class MLMCollator(DataCollatorForLanguageModeling):
    """`DataCollatorForLanguageModeling` for hfsent's pretraining data (PyTorch tensors only).

    - ``whole_word_mask=True`` masks whole words given by each example's ``word_starts``
      (see the module docstring), keeping the 80/10/10 split.
    - Special tokens are found by id (``tokenizer.all_special_ids``, vectorised); padding is never
      selected.
    - Examples that already carry ``labels`` (a pre-masked evaluation set, see `premask`) are
      padded (labels with -100), not masked again.
    - ``return_masked_positions=True`` adds ``masked_positions``: the flat indices (row-major) of the
      masked tokens, padded with -1 to a multiple of `MASKED_POSITIONS_MULTIPLE`, found here on the CPU so
      that `MaskedOnlyBertForMaskedLM` gathers them without a host synchronisation on the GPU.
    """

    return_masked_positions: bool = False

    def __post_init__(self) -> None:
        # The parent would take whole_word_mask as its offset-based variant and force
        # mask_replace_prob=1; ours keeps the 80/10/10 split.
        whole_word_mask, self.whole_word_mask = self.whole_word_mask, False
        super().__post_init__()
        self.whole_word_mask = whole_word_mask
        if self.return_tensors != "pt" or not self.mlm:
            raise ValueError("MLMCollator supports return_tensors='pt' with mlm=True only")

    def torch_call(self, examples: list[Any]) -> dict[str, Any]:
        """Pad ``examples`` into a batch and mask it (or only pad pre-masked examples)."""
        if self.seed is not None and (self.generator is None or self._generator_pid != os.getpid()):
            self.create_rng("pt")
        examples = [e if isinstance(e, Mapping) else {"input_ids": e} for e in examples]
        extra = {key: [e[key] for e in examples] for key in ("labels", "word_starts") if key in examples[0]}
        features = [{k: v for k, v in e.items() if k not in extra} for e in examples]
        batch = self._pad(features)
        length = batch["input_ids"].shape[1]
        if "labels" in extra:
            batch["labels"] = pad_rows(extra["labels"], IGNORE_INDEX, length)
            return batch
        special = batch.pop("special_tokens_mask", None)
        never = torch.isin(batch["input_ids"], torch.tensor(self.tokenizer.all_special_ids))
        if special is not None:
            never |= special.bool()
        if "attention_mask" in batch:
            never |= batch["attention_mask"] == 0
        if self.whole_word_mask:
            if "word_starts" not in extra:
                raise ValueError("whole_word_mask needs examples with 'word_starts' (tokenize with whole_word_mask)")
            word_starts = pad_rows(extra["word_starts"], 1, length)
            batch["input_ids"], batch["labels"] = self.mask_whole_words(batch["input_ids"], word_starts, never)
        else:
            batch["input_ids"], batch["labels"] = self.torch_mask_tokens(batch["input_ids"], special_tokens_mask=never)
        if self.return_masked_positions:
            batch["masked_positions"] = masked_positions(batch["labels"])
        return batch

    def _pad(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        """``tokenizer.pad``'s batch (``input_ids`` and ``attention_mask``); rows of token-id lists alone (hfsent's
        packed blocks) are padded by `pad_rows`, anything else by the tokenizer."""
        if self.tokenizer.padding_side == "right" and all(
            f.keys() == {"input_ids"} and isinstance(f["input_ids"], list) for f in features
        ):
            rows = [f["input_ids"] for f in features]
            length = padded_length(rows, self.pad_to_multiple_of)
            return {
                "input_ids": pad_rows(rows, self.tokenizer.pad_token_id, length),
                "attention_mask": pad_rows([[1] * len(row) for row in rows], 0, length),
            }
        return pad_without_fast_tokenizer_warning(
            self.tokenizer, features, return_tensors="pt", pad_to_multiple_of=self.pad_to_multiple_of
        )

    def mask_whole_words(
        self, inputs: torch.Tensor, word_starts: torch.Tensor, never: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Select whole words (``word_starts`` 1 where a word begins) and apply 80/10/10 per word.

        Random replacements are drawn from the vocabulary without its special tokens.

        ``never`` flags tokens that must not be selected (special tokens, padding). Returns the
        corrupted inputs and the labels (the original id at selected tokens, -100 elsewhere).
        """
        labels = inputs.clone()
        inputs = inputs.clone()
        batch, length = inputs.shape
        word_id = torch.cumsum(word_starts.long(), dim=1)  # 0..length: one uniform draw per word
        pick = torch.rand((batch, length + 1), generator=self.generator).gather(1, word_id)
        how = torch.rand((batch, length + 1), generator=self.generator).gather(1, word_id)
        selected = (pick < self.mlm_probability) & ~never
        labels[~selected] = IGNORE_INDEX
        to_mask = selected & (how < self.mask_replace_prob)
        to_random = selected & ~to_mask & (how < self.mask_replace_prob + self.random_replace_prob)
        inputs[to_mask] = self.tokenizer.mask_token_id
        special = torch.tensor(self.tokenizer.all_special_ids)
        pool = torch.arange(len(self.tokenizer))
        pool = pool[~torch.isin(pool, special)]
        random_ids = pool[torch.randint(len(pool), inputs.shape, generator=self.generator)]
        inputs[to_random] = random_ids[to_random]
        return inputs, labels


def premask(dataset: Dataset, collator: MLMCollator, seed: int, batch_size: int = 256) -> Dataset:
    """Mask ``dataset`` once with ``collator``'s settings and a fixed ``seed``; return it with ``labels``.

    Evaluating on a pre-masked set makes held-out loss, perplexity and accuracy comparable between
    evaluations and runs (the collator only pads such examples).
    """
    masker = dataclasses.replace(collator, seed=seed)

    def mask_batch(batch: dict[str, list[Any]]) -> dict[str, list[list[int]]]:
        rows = [dict(zip(batch, values, strict=True)) for values in zip(*batch.values(), strict=True)]
        masked = masker(rows)
        lengths = [len(ids) for ids in batch["input_ids"]]
        return {
            "input_ids": [masked["input_ids"][i, :n].tolist() for i, n in enumerate(lengths)],
            "labels": [masked["labels"][i, :n].tolist() for i, n in enumerate(lengths)],
        }

    return dataset.map(
        mask_batch, batched=True, batch_size=batch_size, remove_columns=dataset.column_names, desc="Masking eval set"
    )


__all__ = ["IGNORE_INDEX", "MASKED_POSITIONS_MULTIPLE", "MLMCollator", "masked_positions", "premask"]
