"""`BertForMaskedLM` that projects onto the vocabulary only at masked positions while training.

The stock model runs its LM head (transform + a ``hidden x vocab`` projection, 21,128 words for
bert-base-chinese) at every position, then ignores ~85 % of the result in the loss. For a small
encoder that projection is most of the compute. This subclass gathers the hidden states where
``labels != -100`` first: same loss, same gradients, far less work. Its weights, keys and saved
checkpoints are exactly the stock ones.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn
from transformers import BertForMaskedLM
from transformers.modeling_outputs import MaskedLMOutput

from ..modeling_hfsent import give_default_mode, run_encoder
from .masking import IGNORE_INDEX


class MaskedOnlyBertForMaskedLM(BertForMaskedLM):
    """`BertForMaskedLM` whose loss projects only the masked positions onto the vocabulary.

    With ``labels``, ``logits`` has shape ``(n_masked, vocab_size)``: the rows of the positions where
    ``labels != -100``, in row-major order (``labels[labels != -100]`` are their targets) and ``loss``
    is their mean cross-entropy (0 if nothing is masked). Without ``labels`` it is the stock model
    (logits at every position, as ``pipeline("fill-mask")`` needs).

    ``save_pretrained`` writes a standard ``BertForMaskedLM`` checkpoint (``architectures``
    ``["BertForMaskedLM"]``, stock weight names), which loads with ``AutoModelForMaskedLM``.
    """

    # The loss is a mean over the masked tokens of the batch: the Trainer must not pass
    # `num_items_in_batch` and assume the model normalised it (with DDP or gradient accumulation).
    accepts_loss_kwargs = False
    saved_architecture = "BertForMaskedLM"

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        masked_positions: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> MaskedLMOutput:
        """Masked-only loss with ``labels``; the stock full-vocabulary logits without.

        ``masked_positions`` (from `MLMCollator` with ``return_masked_positions``: flat indices of the masked
        tokens, padded with -1) gathers those rows without finding them on the device, so no host
        synchronisation per step; ``logits`` then has a row per entry, padding rows included.
        """
        outputs = run_encoder(
            self.bert, input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds, **kwargs
        )
        if labels is None:  # the stock model: logits at every position
            return MaskedLMOutput(
                logits=self.cls(outputs.last_hidden_state),
                hidden_states=outputs.hidden_states,
                attentions=outputs.attentions,
            )
        if masked_positions is not None:
            rows = masked_positions.clamp(min=0)
            hidden = outputs.last_hidden_state.flatten(0, 1).index_select(0, rows)
            logits = self.cls(hidden)
            targets = labels.reshape(-1).index_select(0, rows).masked_fill(masked_positions < 0, IGNORE_INDEX)
            total = nn.functional.cross_entropy(logits.float(), targets, ignore_index=IGNORE_INDEX, reduction="sum")
            # the mean over the masked tokens; 0 (still in the graph) when nothing is masked
            loss = total / (targets != IGNORE_INDEX).sum().clamp(min=1)
            return MaskedLMOutput(
                loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
            )
        selected = labels != IGNORE_INDEX
        logits = self.cls(outputs.last_hidden_state[selected])
        targets = labels[selected]
        if targets.numel():
            loss = nn.functional.cross_entropy(logits.float(), targets)
        else:  # nothing masked in this batch: a zero loss that still reaches the graph
            loss = logits.sum() * 0.0
        return MaskedLMOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )

    def save_pretrained(self, save_directory: str | os.PathLike, *args: Any, **kwargs: Any) -> None:
        """Save as a standard ``BertForMaskedLM`` checkpoint (the weights are the stock ones)."""
        super().save_pretrained(save_directory, *args, **kwargs)
        if kwargs.get("is_main_process", True):
            self.config.architectures = [self.saved_architecture]
            self.config.save_pretrained(save_directory)
            give_default_mode(save_directory)


__all__ = ["MaskedOnlyBertForMaskedLM"]
