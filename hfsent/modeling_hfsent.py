"""The hfsent model: a BERT encoder (or another backbone) with a BCE head (one logit for binary sentiment, K for K
labels).

This file is copied next to every saved checkpoint so that the checkpoint loads with
``trust_remote_code=True`` where hfsent is not installed: it must only import from
``torch``/``transformers`` and use relative imports for its siblings.
"""

from __future__ import annotations

import inspect
import logging as _logging
import os
from contextlib import contextmanager
from typing import TypedDict

import torch
from torch import nn
from transformers import AutoModel, PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import BaseModelOutputWithPoolingAndCrossAttentions, SequenceClassifierOutput
from transformers.models.bert.modeling_bert import BertModel, BertPreTrainedModel
from transformers.utils import logging
from transformers.utils.generic import can_return_tuple

from .configuration_hfsent import MULTI_LABEL, HfSentConfig, reads_token_types

try:  # transformers >= 4.54
    from transformers.processing_utils import Unpack
    from transformers.utils import TransformersKwargs
except ImportError:  # older transformers: the same annotation, spelled here
    from typing_extensions import Unpack

    class TransformersKwargs(TypedDict, total=False):
        """The keyword arguments ``forward`` passes on to the encoder."""

        output_attentions: bool | None
        output_hidden_states: bool | None


logger = logging.get_logger(__name__)
# transformers' logger of `from_pretrained`, whose multi-line "LOAD REPORT" `HfSentModel.from_pretrained` replaces
_LOADING_LOGGER = "transformers.modeling_utils"


def validate_binary_labels(labels: torch.Tensor, num_labels: int = 1) -> torch.Tensor:
    """Return ``labels`` as a float tensor of 0/1, or raise a ValueError naming a bad value.

    With ``num_labels == 1`` (a binary model) accepts integer, float and bool tensors of shape ``(batch,)`` or
    ``(batch, 1)`` and returns shape ``(batch,)``; with K labels (a multi-label model) shape ``(batch, K)``,
    returned as it is. On an accelerator, or inside ``torch.compile``, the check runs on the device without
    waiting for it (no host synchronisation per training step): a bad value fails there as a device-side
    assertion, with a shorter message.
    """
    if num_labels == 1:
        flat = labels.reshape(-1)
        meaning = "0 (neg) or 1 (pos)"
    else:
        if labels.dim() != 2 or labels.shape[-1] != num_labels:
            raise ValueError(
                f"hfsent multi-label labels must have shape (batch, {num_labels}), one 0/1 column per label; "
                f"got shape {tuple(labels.shape)}"
            )
        flat = labels
        meaning = "0 or 1 for each label"
    if flat.dtype == torch.bool:
        return flat.float()
    flat = flat.float()
    valid = (flat == 0) | (flat == 1)
    if flat.device.type != "cpu" or torch.compiler.is_compiling():
        torch._assert_async(valid.all(), f"hfsent labels must be {meaning}")
        return flat
    if not bool(valid.all()):
        bad = flat[~valid]
        raise ValueError(
            f"hfsent labels must be {meaning}; got label value {bad[0].item()!r} "
            f"({bad.numel()} bad value(s) in this batch of {flat.numel()})"
        )
    return flat


def classification_loss(config: HfSentConfig, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The loss of a head with ``config.num_labels`` logit columns (not the binary head), as the stock
    ``BertForSequenceClassification`` computes it, with hfsent's ``pos_weight`` and 0/1 check for multi-label.

    ``problem_type`` unset is inferred as transformers does (and recorded in ``config``): one label is a
    regression, integer labels a single-label classification, anything else multi-label.
    """
    num_labels = logits.shape[-1]
    if config.problem_type is None:
        if num_labels == 1:
            config.problem_type = "regression"
        elif labels.dtype in (torch.long, torch.int):
            config.problem_type = "single_label_classification"
        else:
            config.problem_type = MULTI_LABEL
    if config.problem_type == "regression":
        if num_labels == 1:
            return nn.functional.mse_loss(logits.squeeze(), labels.squeeze().to(logits.dtype))
        return nn.functional.mse_loss(logits, labels.to(logits.dtype))
    if config.problem_type == "single_label_classification":
        return nn.functional.cross_entropy(logits.view(-1, num_labels), labels.view(-1))
    target = validate_binary_labels(labels, num_labels).to(logits.dtype)
    pos_weight = None
    if config.pos_weight is not None:
        weights = config.pos_weight if isinstance(config.pos_weight, list) else [config.pos_weight] * num_labels
        if len(weights) != num_labels:
            raise ValueError(f"pos_weight has {len(weights)} values but the model has {num_labels} labels")
        pos_weight = torch.tensor(weights, dtype=logits.dtype, device=logits.device)
    return nn.functional.binary_cross_entropy_with_logits(logits, target, pos_weight=pos_weight)


def check_sequence_length(
    config: HfSentConfig,
    input_ids: torch.Tensor | None,
    inputs_embeds: torch.Tensor | None,
    position_ids: torch.Tensor | None,
) -> None:
    """Raise a ValueError naming the fix when the input is longer than the model's position embeddings.

    Stock BERT fails there with "The size of tensor a (N) must match the size of tensor b (M)"; this says
    which limit was hit and that ``truncation=True`` (with the checkpoint's tokenizer, whose
    ``model_max_length`` is at most ``max_position_embeddings``) is the fix. Skipped while tracing or
    compiling (ONNX export, torch.compile), where the sequence length is symbolic.
    """
    if position_ids is not None or torch.jit.is_tracing() or torch.compiler.is_compiling():
        return
    tensor = input_ids if input_ids is not None else inputs_embeds
    if tensor is None or tensor.dim() < 2:
        return
    length, limit = tensor.shape[1], config.max_position_embeddings
    if length > limit:
        raise ValueError(
            f"the input has {length} tokens but this model takes at most {limit} (max_position_embeddings); "
            "truncate it, e.g. tokenizer(..., truncation=True) or pipeline(...)(text, truncation=True)"
        )


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


def build_backbone(config: PretrainedConfig, attn_implementation: str | None = None) -> PreTrainedModel:
    """The backbone model of a ``backbone_config`` (``AutoModel.from_config``), without a pooler where the family has
    an optional one (the head reads the first or last token's hidden state)."""
    kwargs = {}
    model_class = AutoModel._model_mapping[type(config)]
    if "add_pooling_layer" in inspect.signature(model_class.__init__).parameters:
        kwargs["add_pooling_layer"] = False
    if attn_implementation == "sdpa" and not getattr(model_class, "_supports_sdpa", False):
        # transformers 4.x sets SDPA, its default, on the outer (BERT-based) model before it is built: a backbone
        # without SDPA (ERNIE's, DeBERTa-v2's there) takes its own default, as a stock model of its family does
        attn_implementation = None
    if attn_implementation is not None:
        kwargs["attn_implementation"] = attn_implementation
    return AutoModel.from_config(config, **kwargs)


def backbone_inputs(config: PretrainedConfig, backbone: PreTrainedModel, token_type_ids: torch.Tensor | None) -> dict:
    """The segment ids a backbone takes: only an encoder with more than one segment embedding reads them (RoBERTa's
    single segment and a decoder's token embeddings would be misread by BERT's 0/1 ids)."""
    if token_type_ids is None or not reads_token_types(config):
        return {}
    if "token_type_ids" not in inspect.signature(backbone.forward).parameters:
        return {}
    return {"token_type_ids": token_type_ids}


def last_token_states(
    hidden: torch.Tensor,
    attention_mask: torch.Tensor | None,
    input_ids: torch.Tensor | None = None,
    pad_token_id: int | None = None,
) -> torch.Tensor:
    """The hidden state of each sequence's last real token (the reference's GPT ``[Extract]`` position): the last
    position the attention mask keeps (right or left padding), else the last non-pad token, else the last one."""
    positions = torch.arange(hidden.shape[1], device=hidden.device)
    if attention_mask is not None:
        keep = attention_mask.to(positions.dtype)
    elif input_ids is not None and pad_token_id is not None:
        keep = (input_ids != pad_token_id).to(positions.dtype)
    else:
        keep = torch.ones(hidden.shape[:2], dtype=positions.dtype, device=hidden.device)
    last = (positions * keep).argmax(-1)
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]


class HfSentModel(BertPreTrainedModel):
    """BERT encoder + dropout + a linear head trained with ``BCEWithLogitsLoss``: one logit per label.

    **Binary** (the default, `HfSentConfig.is_binary`): one logit ``z``, ``P(pos) = sigmoid(z)``. The head has
    one output unit (the reference tutorial's design), but the ``logits`` the model exposes have TWO columns,
    ``[0, z]``: ``softmax([0, z]) == [1 - sigmoid(z), sigmoid(z)]``, so the stock
    ``pipeline("text-classification")`` prints ``neg``/``pos`` with exactly the BCE probabilities (with a
    single column it would apply a sigmoid and always print ``pos``). ``z`` itself is ``logits[:, 1]``.

    **Multi-label** (``problem_type="multi_label_classification"``, K labels): K logits ``(batch, K)``, each
    label its own sigmoid; the stock pipeline applies that sigmoid (``top_k=None``: every label and its score).

    Any other label count is the stock ``BertForSequenceClassification``'s head and loss.

    The pipeline decides at 0.5 (argmax for binary). ``config.threshold`` (tuned on validation data by the
    fine-tuning recipe; one per label for a multi-label model) is applied by `hfsent.predict`, the ``hfsent``
    CLI, the server and the Inference Endpoints handler.

    Pooling (``config.pooling``): ``"cls"`` (default) uses the raw final-layer [CLS] vector, as the
    reference tutorial does; it needs no pooler, which checkpoints from MLM pretraining do not have.
    ``"pooler"`` uses BERT's tanh pooler instead; ``"last"`` (decoders) the last real token's vector.

    **Backbone**: BERT (``self.bert``) unless ``config.backbone_config`` names another family (RoBERTa/XLM-R, ERNIE,
    DeBERTa-v2 encoders; GPT-2, Qwen2, Llama decoders), built by ``AutoModel.from_config`` and held under its family's
    own ``base_model_prefix`` (``roberta``, ``ernie``, ``deberta``, ``transformer``, ``model``), as transformers'
    ``*ForSequenceClassification`` classes hold it.

    ``from_pretrained`` accepts a checkpoint of any of those families (BertModel, BertForMaskedLM, GPT2LMHeadModel,
    Qwen2ForCausalLM, ErnieForMaskedLM, ...): the backbone weights load and the head is newly initialised. That is
    the intended way to start fine-tuning, so it is reported in one INFO line, not as a warning (see
    `from_pretrained`).

    Like the stock ``BertForSequenceClassification``, ``forward`` returns a tuple ``(loss?, logits, ...)``
    with ``return_dict=False`` (argument or ``config.return_dict``).
    """

    config_class = HfSentConfig
    # `save_pretrained` copies this file and configuration_hfsent.py next to the weights and names the class in
    # config.auto_map (the config adds AutoModel), so the checkpoint also loads where hfsent is not installed.
    _auto_class = "AutoModelForSequenceClassification"
    # The loss is a mean over the batch: the Trainer must not pass `num_items_in_batch` and assume
    # the model normalised it (wrong under DDP and gradient accumulation).
    accepts_loss_kwargs = False
    # language-model heads and poolers of the checkpoints fine-tuning starts from
    _keys_to_ignore_on_load_unexpected = [
        r"^cls\.",
        r"^bert\.pooler\.",
        r"^lm_head\.",
        r"^lm_predictions\.",
        r"^(roberta|ernie)\.pooler\.",
    ]

    def __init__(self, config: HfSentConfig) -> None:
        requested = getattr(config, "_attn_implementation_internal", None)  # given by the caller, else None
        super().__init__(config)
        if config.backbone_config is None:
            self.bert = BertModel(config, add_pooling_layer=config.pooling == "pooler")
        else:
            backbone = build_backbone(config.backbone_config, requested)
            config.backbone_config = backbone.config  # one object: what the backbone changes is saved
            self.base_model_prefix = backbone.base_model_prefix
            setattr(self, self.base_model_prefix, backbone)
        dropout = config.classifier_dropout
        self.dropout = nn.Dropout(config.hidden_dropout_prob if dropout is None else dropout)
        self.classifier = nn.Linear(config.hidden_size, 1 if config.is_binary else config.num_labels)
        self.post_init()

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike | None, *model_args, **kwargs):
        """`PreTrainedModel.from_pretrained`, with the loading report of a BERT encoder in one plain line.

        From an hfsent checkpoint nothing is missing and nothing is logged. From a plain BERT checkpoint
        (BertModel, BertForMaskedLM, ...) the new head is logged at INFO; anything else missing, unused or
        mismatched is one WARNING line (instead of transformers' multi-line "LOAD REPORT" table); weights
        re-initialised by ``ignore_mismatched_sizes`` (e.g. a new label count) are said on transformers' loading
        logger, in its words too ("Reinit due to size mismatch"). When loading fails, transformers' report is
        logged as usual before the error.
        """
        output_loading_info = kwargs.pop("output_loading_info", False)
        try:
            with _held_back_load_report() as reports:
                model, info = super().from_pretrained(
                    pretrained_model_name_or_path, *model_args, output_loading_info=True, **kwargs
                )
        except Exception:
            for record in reports:  # the error says "look at the above report": show it
                _logging.getLogger(_LOADING_LOGGER).handle(record)
            raise
        model._log_loading_info(pretrained_model_name_or_path, info)
        return (model, info) if output_loading_info else model

    def _log_loading_info(self, source: str | os.PathLike | None, info: dict) -> None:
        """Log what `from_pretrained` did not load from ``source``: a new head at INFO, anything else as a warning."""
        missing = set(info.get("missing_keys") or ())
        from_encoder = "HfSentModel" not in (self.config.architectures or [])
        head = {k for k in missing if k.startswith(("classifier.", "bert.pooler."))}
        if from_encoder and head:
            kind = "decoder" if self.config.is_decoder_backbone else "encoder"
            logger.info("New sentiment head on the %s from %s: initialised %s", kind, source, ", ".join(sorted(head)))
            missing -= head
        unexpected = sorted(info.get("unexpected_keys") or ())
        mismatched = [k[0] if isinstance(k, (tuple, list)) else k for k in info.get("mismatched_keys") or ()]
        problems = [
            f"{label}: {', '.join(sorted(keys))}"
            for label, keys in (
                ("newly initialised (missing from the checkpoint)", missing),
                ("unused (not in the model)", unexpected),
                ("re-initialised (shape mismatch; Reinit due to size mismatch)", mismatched),
            )
            if keys
        ]
        if problems:  # a re-initialised weight is said where transformers says it for a stock model
            target = _logging.getLogger(_LOADING_LOGGER) if mismatched else logger
            target.warning("Loading %s into HfSentModel: %s", source, "; ".join(problems))

    @property
    def is_gradient_checkpointing(self) -> bool:
        """Whether activation (gradient) checkpointing is on.

        peft reads this name; transformers 5 deprecated it (FutureWarning) for ``is_activation_checkpointing``.
        Answering here keeps LoRA set-up quiet on every transformers version.
        """
        return any(getattr(module, "gradient_checkpointing", False) for module in self.modules())

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> SequenceClassifierOutput:
        """Return the ``logits`` and, given ``labels``, the loss.

        Binary: ``logits`` ``[0, z]`` of shape ``(batch, 2)``, BCE on 0/1 ``labels`` of shape ``(batch,)``.
        Multi-label: ``(batch, K)`` logits, BCE on 0/1 ``labels`` of shape ``(batch, K)``. Other heads: as
        `classification_loss`. A `SequenceClassifierOutput`, or with ``return_dict=False`` the tuple
        ``(loss, logits, ...)`` (``loss`` only when ``labels`` are given), as the stock BERT classifier returns.
        """
        check_sequence_length(self.config, input_ids, inputs_embeds, position_ids)
        if self.config.backbone_config is None:
            outputs = run_encoder(
                self.bert, input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds, **kwargs
            )
        else:
            outputs = self._run_backbone(
                input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds, **kwargs
            )
        if self.config.pooling == "pooler":
            features = outputs.pooler_output
        elif self.config.pooling == "last":
            features = last_token_states(outputs.last_hidden_state, attention_mask, input_ids, self.config.pad_token_id)
        else:
            features = outputs.last_hidden_state[:, 0]
        scores = self.classifier(self.dropout(features))

        loss = None
        if not self.config.is_binary:
            logits = scores
            if labels is not None:
                loss = classification_loss(self.config, logits, labels)
        else:
            z = scores.squeeze(-1)
            logits = torch.stack([torch.zeros_like(z), z], dim=-1)
            if labels is not None:
                target = validate_binary_labels(labels).to(z.dtype)
                pos_weight = None
                if self.config.pos_weight is not None:
                    # made on the device (no host-to-device copy per step)
                    pos_weight = torch.full((), self.config.pos_weight, dtype=z.dtype, device=z.device)
                loss = nn.functional.binary_cross_entropy_with_logits(z, target, pos_weight=pos_weight)

        return SequenceClassifierOutput(
            loss=loss,
            logits=logits,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )

    def _run_backbone(
        self,
        input_ids: torch.Tensor | None,
        attention_mask: torch.Tensor | None,
        token_type_ids: torch.Tensor | None,
        position_ids: torch.Tensor | None,
        inputs_embeds: torch.Tensor | None,
        **kwargs,
    ):
        """Run a non-BERT backbone (`HfSentConfig.backbone_config`) and return its output object."""
        backbone = self.base_model
        kwargs.pop("num_items_in_batch", None)
        kwargs.pop("return_dict", None)
        if self.config.is_decoder_backbone:
            kwargs.setdefault("use_cache", False)  # no past key values to keep: one pass over the whole text
            if position_ids is None and attention_mask is not None and attention_mask.dim() == 2:
                # positions count real tokens, so that left padding reads as right padding does (GPT-2's absolute
                # positions would otherwise start at the padding)
                position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
        return backbone(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            return_dict=True,
            **backbone_inputs(self.config.backbone_config, backbone, token_type_ids),
            **kwargs,
        )

    def save_pretrained(self, save_directory: str | os.PathLike, *args, **kwargs) -> None:
        """`PreTrainedModel.save_pretrained`; the weight files get the default file mode (`give_default_mode`)."""
        super().save_pretrained(save_directory, *args, **kwargs)
        give_default_mode(save_directory)


# transformers reads the annotation of forward's **kwargs (an object, not the string `from __future__ import
# annotations` makes of it) to know that the model takes output_attentions (its SDPA/attention tests, as for BERT).
getattr(HfSentModel.forward, "__wrapped__", HfSentModel.forward).__annotations__["kwargs"] = Unpack[TransformersKwargs]


@contextmanager
def _held_back_load_report():
    """Hold back transformers' "LOAD REPORT" warning while loading; yields the held-back records."""
    records: list[_logging.LogRecord] = []

    def hold_back(record: _logging.LogRecord) -> bool:
        if "LOAD REPORT" in str(record.msg):
            records.append(record)
            return False
        return True

    loading_logger = _logging.getLogger(_LOADING_LOGGER)
    loading_logger.addFilter(hold_back)
    try:
        yield records
    finally:
        loading_logger.removeFilter(hold_back)


def give_default_mode(save_directory: str | os.PathLike) -> None:
    """Give the ``*.safetensors`` files in ``save_directory`` the mode of its ``config.json`` (a LoRA adapter's
    folder: ``adapter_config.json``), the umask's default.

    safetensors writes its files with mode 0600 (a private temporary file renamed into place) while every other
    file of a checkpoint gets the default mode (0644 under umask 022): a shared or published output folder would
    hold weights that only their writer can read.
    """
    # written with open(): the default mode
    references = [os.path.join(save_directory, name) for name in ("config.json", "adapter_config.json")]
    reference = next((path for path in references if os.path.isfile(path)), None)
    if reference is None:
        return
    mode = os.stat(reference).st_mode & 0o777
    for name in os.listdir(save_directory):
        path = os.path.join(save_directory, name)
        if name.endswith(".safetensors") and os.path.isfile(path) and not os.path.islink(path):
            os.chmod(path, mode)


__all__ = [
    "HfSentModel",
    "build_backbone",
    "check_sequence_length",
    "classification_loss",
    "give_default_mode",
    "last_token_states",
    "run_encoder",
    "validate_binary_labels",
]
