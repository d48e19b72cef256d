"""The fine-tuning batch collator: dynamic padding without the tokenizer's per-batch ``pad`` machinery.

`PaddingCollator` is `transformers.DataCollatorWithPadding` with a fast path for what hfsent's tokenized
splits hold (``input_ids`` and ``attention_mask``, maybe ``token_type_ids`` (0/1 for sentence pairs) and
``special_tokens_mask``, as lists of ints, and a label: a number, or a multi-label row's list of 0/1 floats): each
key is padded by `hfsent.padding.pad_rows`, a seventh of ``tokenizer.pad``'s time per batch
(bench/bench_step_overhead.py). Anything else (other keys, tensors, a left-padding tokenizer) goes through
``DataCollatorWithPadding`` unchanged. Both paths give the same batch.

``pad_to_multiple_of`` rounds the padded length up, so that a GPU (and ``torch.compile`` or CUDA graphs)
sees a few distinct shapes only; `pad_multiple_for` picks hfsent's default for the device.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from transformers import DataCollatorWithPadding

from ..padding import pad_rows, padded_length

# the padding value of each per-token key the fast path knows (None: the tokenizer's pad token id / type id)
_TOKEN_KEYS: dict[str, int | None] = {
    "input_ids": None,
    "attention_mask": 0,
    "token_type_ids": None,
    "special_tokens_mask": 1,
}
_LABEL_KEYS = {"label": "labels", "labels": "labels", "label_ids": "labels"}
# hfsent's padding multiple on an accelerator: at max_length 128 a batch takes one of 8 lengths
ACCELERATOR_PAD_MULTIPLE = 16


def pad_multiple_for(on_accelerator: bool, requested: int | None = None) -> int | None:
    """The padding multiple to use: ``requested`` if set (1 or 0: none), else 16 on an accelerator and none on a CPU.

    On a CPU every padded token costs arithmetic and few shapes buy nothing, so batches pad to their longest row.
    """
    if requested is not None:
        return requested if requested > 1 else None
    return ACCELERATOR_PAD_MULTIPLE if on_accelerator else None


@dataclass
class PaddingCollator(DataCollatorWithPadding):
    """`DataCollatorWithPadding` (``padding="longest"``, ``return_tensors="pt"``), fast for token-id lists."""

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        """Pad ``features`` into a batch of tensors (labels under ``labels``)."""
        if not self._fast_path_applies(features):
            return super().__call__(features)
        length = padded_length([f["input_ids"] for f in features], self.pad_to_multiple_of)
        batch: dict[str, Any] = {}
        for key in features[0]:
            if key in _LABEL_KEYS:
                batch[_LABEL_KEYS[key]] = torch.tensor([f[key] for f in features])
                continue
            pad = _TOKEN_KEYS[key]
            if pad is None:
                pad = self.tokenizer.pad_token_id if key == "input_ids" else self.tokenizer.pad_token_type_id
            batch[key] = pad_rows([f[key] for f in features], pad, length)
        return batch

    def _fast_path_applies(self, features: list[dict[str, Any]]) -> bool:
        if not features or self.padding not in (True, "longest") or self.return_tensors != "pt":
            return False
        if self.max_length is not None or self.tokenizer.padding_side != "right":
            return False
        if self.tokenizer.pad_token_id is None:
            return False
        keys = features[0].keys()
        if (
            "input_ids" not in keys
            or "attention_mask" not in keys
            or any(k not in _TOKEN_KEYS and k not in _LABEL_KEYS for k in keys)
        ):
            return False
        if sum(k in _LABEL_KEYS for k in keys) > 1:
            return False
        for f in features:
            if f.keys() != keys:
                return False
            for key in keys:
                value = f[key]
                if key in _LABEL_KEYS:  # a number, or a multi-label row's list of 0/1 floats
                    if not isinstance(value, (int, float)) and not (
                        isinstance(value, list) and all(isinstance(v, (int, float)) for v in value)
                    ):
                        return False
                elif not isinstance(value, list) or len(value) != len(f["input_ids"]):
                    return False
        return True


__all__ = ["ACCELERATOR_PAD_MULTIPLE", "PaddingCollator", "pad_multiple_for"]
