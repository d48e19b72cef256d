"""The hfsent model: a BERT encoder with a single-logit binary-sentiment head.

This file is copied next to every saved checkpoint so that the checkpoint loads with
``trust_remote_code=True`` where hfsent is not installed: it must only import from
``torch``/``transformers`` and use relative imports for its siblings.
"""

from __future__ import annotations

import os

import torch
from torch import nn
from transformers.modeling_outputs import BaseModelOutputWithPoolingAndCrossAttentions, SequenceClassifierOutput
from transformers.models.bert.modeling_bert import BertModel, BertPreTrainedModel

from .configuration_hfsent import HfSentConfig


def validate_binary_labels(labels: torch.Tensor) -> torch.Tensor:
    """Return ``labels`` as a float tensor of 0/1, or raise a ValueError naming a bad value.

    Accepts integer, float and bool tensors of shape ``(batch,)`` or ``(batch, 1)``.
    """
    flat = labels.reshape(-1)
    if flat.dtype == torch.bool:
        return flat.float()
    flat = flat.float()
    bad = flat[(flat != 0) & (flat != 1)]
    if bad.numel():
        raise ValueError(
            f"hfsent labels must be 0 (neg) or 1 (pos); got label value {bad[0].item()!r} "
            f"({bad.numel()} bad value(s) in this batch of {flat.numel()})"
        )
    return flat


def run_encoder(
    bert: BertModel,
    input_ids: torch.Tensor | None,
    attention_mask: torch.Tensor | None,
    token_type_ids: torch.Tensor | None,
    position_ids: torch.Tensor | None,
    inputs_embeds: torch.Tensor | None,
    **kwargs,
) -> BaseModelOutputWithPoolingAndCrossAttentions:
    """Run ``bert`` for a head model's ``forward``: drops the Trainer's ``num_items_in_batch`` (the heads'
    losses are batch means) and ``return_dict``, and returns the encoder's output object."""
    kwargs.pop("num_items_in_batch", None)
    kwargs.pop("return_dict", None)
    return bert(
        input_ids,
        attention_mask=attention_mask,
        token_type_ids=token_type_ids,
        position_ids=position_ids,
        inputs_embeds=inputs_embeds,
        return_dict=True,
        **kwargs,
    )


class HfSentModel(BertPreTrainedModel):
    """BERT encoder + dropout + one linear logit ``z``, trained with ``BCEWithLogitsLoss``.

    ``P(pos) = sigmoid(z)``. The head has one output unit (the reference tutorial's design), but the
    ``logits`` the model exposes have TWO columns, ``[0, z]``: ``softmax([0, z]) == [1 - sigmoid(z),
    sigmoid(z)]``, so the stock ``pipeline("text-classification")`` prints ``neg``/``pos`` with exactly
    the BCE probabilities (with a single column it would apply a sigmoid and always print ``pos``).
    ``z`` itself is ``logits[:, 1]``.

    The pipeline decides at 0.5 (argmax). ``config.threshold`` (tuned on validation data by the
    fine-tuning recipe) is applied by `hfsent.predict`, the ``hfsent`` CLI, the server and the
    Inference Endpoints handler.

    Pooling (``config.pooling``): ``"cls"`` (default) uses the raw final-layer [CLS] vector, as the
    reference tutorial does; it needs no pooler, which checkpoints from MLM pretraining do not have.
    ``"pooler"`` uses BERT's tanh pooler instead.

    ``from_pretrained`` accepts any BERT checkpoint (BertModel, BertForMaskedLM, BertForPreTraining):
    the encoder weights load under ``bert.*`` and the head is newly initialised.
    """

    config_class = HfSentConfig
    # The loss is a mean over the batch: the Trainer must not pass `num_items_in_batch` and assume
    # the model normalised it (wrong under DDP and gradient accumulation).
    accepts_loss_kwargs = False
    _keys_to_ignore_on_load_unexpected = [r"^cls\.", r"^bert\.pooler\."]

    def __init__(self, config: HfSentConfig) -> None:
        super().__init__(config)
        self.bert = BertModel(config, add_pooling_layer=config.pooling == "pooler")
        dropout = config.classifier_dropout
        self.dropout = nn.Dropout(config.hidden_dropout_prob if dropout is None else dropout)
        self.classifier = nn.Linear(config.hidden_size, 1)
        self.post_init()

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **kwargs,
    ) -> SequenceClassifierOutput:
        """Return ``logits`` ``[0, z]`` of shape ``(batch, 2)`` and, given 0/1 ``labels``, the BCE loss."""
        outputs = run_encoder(
            self.bert, input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds, **kwargs
        )
        if self.config.pooling == "pooler":
            features = outputs.pooler_output
        else:
            features = outputs.last_hidden_state[:, 0]
        z = self.classifier(self.dropout(features)).squeeze(-1)
        logits = torch.stack([torch.zeros_like(z), z], dim=-1)

        loss = None
        if labels is not None:
            target = validate_binary_labels(labels).to(z.dtype)
            pos_weight = None
            if self.config.pos_weight is not None:
                pos_weight = torch.tensor(self.config.pos_weight, dtype=z.dtype, device=z.device)
            loss = nn.functional.binary_cross_entropy_with_logits(z, target, pos_weight=pos_weight)

        return SequenceClassifierOutput(
            loss=loss,
            logits=logits,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )

    def save_pretrained(self, save_directory: str | os.PathLike, *args, **kwargs) -> None:
        """`PreTrainedModel.save_pretrained`; the weight files get the default file mode (`give_default_mode`)."""
        super().save_pretrained(save_directory, *args, **kwargs)
        give_default_mode(save_directory)


def give_default_mode(save_directory: str | os.PathLike) -> None:
    """Give the ``*.safetensors`` files in ``save_directory`` the mode of its ``config.json`` (the umask's default).

    safetensors writes its files with mode 0600 (a private temporary file renamed into place) while every other
    file of a checkpoint gets the default mode (0644 under umask 022): a shared or published output folder would
    hold weights that only their writer can read.
    """
    config_file = os.path.join(save_directory, "config.json")  # written with open(): the default mode
    if not os.path.isfile(config_file):
        return
    mode = os.stat(config_file).st_mode & 0o777
    for name in os.listdir(save_directory):
        path = os.path.join(save_directory, name)
        if name.endswith(".safetensors") and os.path.isfile(path) and not os.path.islink(path):
            os.chmod(path, mode)


__all__ = ["HfSentModel", "give_default_mode", "run_encoder", "validate_binary_labels"]
