"""Configuration of the hfsent sentiment model.

This file is copied next to every saved checkpoint so that the checkpoint loads with
``trust_remote_code=True`` where hfsent is not installed: it must only import from
``transformers`` (and use relative imports for its siblings).
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from transformers import AutoConfig, BertConfig, PretrainedConfig

ID2LABEL = {0: "neg", 1: "pos"}
LABEL2ID = {label: i for i, label in ID2LABEL.items()}
AUTO_MAP = {
    "AutoConfig": "configuration_hfsent.HfSentConfig",
    "AutoModel": "modeling_hfsent.HfSentModel",
    "AutoModelForSequenceClassification": "modeling_hfsent.HfSentModel",
}
# config.tokenizer_class: what the stock pipeline of transformers 4.51-4.53 needs to load the tokenizer (see __init__)
TOKENIZER_CLASS = "BertTokenizer"
POOLING_CHOICES = ("cls", "pooler", "last")
# The backbones the head runs over, by ``model_type``: encoders read the first token ([CLS]); decoders the last real
# token (the reference tutorial's [Extract] position: the only one that has seen the whole text).
ENCODER_TYPES = ("bert", "roberta", "xlm-roberta", "ernie", "deberta-v2")
DECODER_TYPES = ("gpt2", "qwen2", "llama")
BACKBONE_TYPES = (*ENCODER_TYPES, *DECODER_TYPES)
# Encoders whose position embeddings start after the padding index (RoBERTa's): they take max_position_embeddings
# - pad_token_id - 1 tokens.
OFFSET_POSITION_TYPES = ("roberta", "xlm-roberta")
# Keys of a backbone config that describe its own task head or loading, not the network.
BACKBONE_DROPPED_KEYS = ("num_labels", "id2label", "label2id", "problem_type", "architectures", "auto_map")
MULTI_LABEL = "multi_label_classification"
LABEL_KEYS = ("num_labels", "id2label", "label2id")
# Keys of a plain BERT config that describe its own task head, not the encoder: dropped when a BERT
# config becomes an hfsent config.
BERT_HEAD_KEYS = (*LABEL_KEYS, "problem_type")


def _per_label(name: str, value: Any, check: Any, accepted: str) -> float | list[float] | None:
    """``value`` (a number or a list of numbers, each passing ``check``) as floats, or a ValueError naming it."""
    if value is None:
        return None
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    try:
        floats = [float(v) for v in values if not isinstance(v, bool)]
    except (TypeError, ValueError):
        floats = []
    if not values or len(floats) != len(values) or not all(check(v) for v in floats):
        raise ValueError(f"{name} must be {accepted} (one number, or a list with one per label), got {value!r}")
    return floats if isinstance(value, (list, tuple)) else floats[0]


class HfSentConfig(BertConfig):
    """BERT hyperparameters plus the sentiment head's settings.

    The labels mean what they mean for any transformers model (``num_labels``, ``id2label``, ``label2id``,
    ``problem_type``). Unset, they are hfsent's binary labels ``{0: "neg", 1: "pos"}``.

    - **Binary** (``num_labels == 2`` and ``problem_type`` is not ``"multi_label_classification"``): one
      logit ``z``, exposed as the logit columns ``[0, z]``, BCE loss on 0/1 labels; ``threshold`` and
      ``pos_weight`` are single numbers.
    - **Multi-label** (``problem_type="multi_label_classification"``, ``num_labels=K``, ``id2label`` naming
      the labels): K logits, each its own sigmoid, BCE on float 0/1 labels of shape ``(batch, K)``;
      ``threshold`` and ``pos_weight`` may be one number for all labels or a list with one per label.
    - Any other label count behaves as the stock ``BertForSequenceClassification`` (K logits; cross-entropy,
      MSE for a single regression output, BCE for float ``(batch, K)`` labels).

    Args:
        threshold: decision threshold on each label's probability used by `hfsent.predict`, the CLI, the server
            and the Inference Endpoints handler: 0.5 unless the fine-tuning recipe's ``threshold_tuning`` moved it
            (a list: one per label of a multi-label model).
        pos_weight: optional weight of positive examples in `BCEWithLogitsLoss` (for imbalanced data,
            typically ``n_negative / n_positive``; a list: one per label of a multi-label model).
        pooling: ``"cls"`` (default for encoders) feeds the raw final-layer [CLS] (first-token) vector to the head,
            as the reference tutorial does, and works for encoders from MLM pretraining, which have no
            pooler; ``"pooler"`` uses BERT's tanh pooler (pretrained only by BERT's NSP task); ``"last"`` (default
            and only choice for decoders) the last real token's vector (by the attention mask: right or left
            padding), the reference's GPT ``[Extract]`` position.
        classifier_dropout: dropout before the head (defaults to ``hidden_dropout_prob``).
        backbone_config: the backbone when it is not BERT: the config (or its dict) of a ``roberta``, ``xlm-roberta``,
            ``ernie``, ``deberta-v2``, ``gpt2``, ``qwen2`` or ``llama`` model (see `BACKBONE_TYPES`). ``None`` (the
            default): a BERT encoder whose settings are this config's own. The head's sizes (``hidden_size``,
            ``vocab_size``, ``max_position_embeddings``: the tokens it takes, ...) are copied from it.
        text_pairs: whether the model reads sentence pairs ``(text, text_pair)`` (``[CLS] text [SEP] text_pair
            [SEP]``, e.g. (aspect, review)): set by fine-tuning with ``text_pair_column``; inference then asks for
            pairs and refuses single texts, and the reverse.
        **kwargs: any `transformers.BertConfig` argument. A plain BERT config's own labels (its
            ``model_type`` is not ``"hfsent"``) are dropped.

    ``HfSentConfig.from_pretrained`` (and so ``HfSentModel.from_pretrained``) reads a plain BERT
    checkpoint's config as an hfsent config with the default head settings.
    """

    model_type = "hfsent"
    # `save_pretrained` copies this file next to the config and names it in auto_map (see AUTO_MAP).
    _auto_class = "AutoConfig"

    def __init__(
        self,
        threshold: float | list[float] = 0.5,
        pos_weight: float | list[float] | None = None,
        pooling: str | None = None,
        classifier_dropout: float | None = None,
        text_pairs: bool = False,
        backbone_config: PretrainedConfig | dict | None = None,
        **kwargs,
    ) -> None:
        backbone = backbone_from(backbone_config)
        if backbone is not None:
            kwargs.update(mirrored_sizes(backbone, kwargs))
        if kwargs.pop("model_type", self.model_type) != self.model_type:
            for key in BERT_HEAD_KEYS:  # another model type's head (a BERT config's LABEL_0/LABEL_1)
                kwargs.pop(key, None)
        if (
            kwargs.get("id2label") is None
            and kwargs.get("num_labels", 2) == 2
            and kwargs.get("problem_type") != MULTI_LABEL
        ):
            kwargs["id2label"] = dict(ID2LABEL)  # hfsent's binary labels by default
            kwargs.setdefault("label2id", dict(LABEL2ID))
        elif kwargs.get("id2label") is not None and kwargs.get("label2id") is None:
            kwargs["label2id"] = {name: int(i) for i, name in kwargs["id2label"].items()}
        auto_map = dict(AUTO_MAP)
        auto_map.update(kwargs.pop("auto_map", None) or {})
        kwargs["auto_map"] = auto_map
        # transformers < 4.54's pipeline() loads a tokenizer only for a model type it knows or a config that names
        # a tokenizer_class (else: "'NoneType' object is not callable"); the checkpoint's tokenizer_config.json,
        # which every version reads first, still decides the class. "BertTokenizer" (4.x: tried as
        # BertTokenizerFast first) is the encoder's own tokenizer on every version.
        kwargs["tokenizer_class"] = (
            kwargs.get("tokenizer_class") or getattr(backbone, "tokenizer_class", None) or TOKENIZER_CLASS
        )
        super().__init__(classifier_dropout=classifier_dropout, **kwargs)
        self.backbone_config = backbone
        self.threshold = _per_label("threshold", threshold, lambda t: 0.0 < t < 1.0, "strictly between 0 and 1")
        self.pos_weight = _per_label("pos_weight", pos_weight, lambda w: w > 0, "a positive number or None")
        self.pooling = pooling  # checked against the backbone by __setattr__
        self.text_pairs = bool(text_pairs)
        for name in ("threshold", "pos_weight"):
            value = getattr(self, name)
            if isinstance(value, list) and self.is_binary:
                raise ValueError(f"{name} of a binary (neg/pos) model is one number, got {value!r}")
            if isinstance(value, list) and len(value) != self.num_labels:
                raise ValueError(
                    f"{name} has {len(value)} values but the model has {self.num_labels} labels "
                    f"({', '.join(self.label_names)}): give one number, or one per label"
                )

    def __setattr__(self, key: str, value: Any) -> None:
        if key == "id2label" and isinstance(value, dict):  # JSON's (and from_pretrained kwargs') string keys
            with contextlib.suppress(TypeError, ValueError):
                value = {int(k): v for k, v in value.items()}
        if key == "pooling" and "backbone_config" in self.__dict__:
            # from_pretrained(..., pooling=...) sets it after __init__: checked against the backbone there too
            value = check_pooling(value, self.backbone_type)
        super().__setattr__(key, value)

    @property
    def backbone_type(self) -> str:
        """The backbone's ``model_type``: ``"bert"``, or that of `backbone_config`."""
        return "bert" if self.backbone_config is None else self.backbone_config.model_type

    @property
    def is_decoder_backbone(self) -> bool:
        """Whether the backbone is a decoder (causal attention; pooled at its last real token)."""
        return self.backbone_type in DECODER_TYPES

    @classmethod
    def from_backbone(cls, config: PretrainedConfig | dict, **kwargs: Any) -> HfSentConfig:
        """An hfsent config over the model of ``config`` (a BERT config: the encoder settings become this config's;
        an hfsent config: as it is; any of `BACKBONE_TYPES`: nested as `backbone_config`), with ``kwargs`` (the head's
        settings and labels). Any other ``model_type`` raises a ValueError listing those supported."""
        values = config.to_dict() if isinstance(config, PretrainedConfig) else dict(config)
        model_type = values.get("model_type")
        if model_type in ("bert", cls.model_type):
            return cls(**{**values, **kwargs})
        return cls(backbone_config=values, **kwargs)

    @property
    def is_binary(self) -> bool:
        """Whether the head is hfsent's binary one: a single logit ``z`` exposed as the columns ``[0, z]``."""
        return self.num_labels == 2 and self.problem_type != MULTI_LABEL

    @property
    def label_names(self) -> list[str]:
        """The label names in logit order."""
        return [self.id2label[i] for i in sorted(self.id2label)] if self.id2label else []

    def label_thresholds(self) -> list[float]:
        """One threshold per label of a multi-label model (``threshold`` repeated when it is one number);
        ``[threshold]`` for a binary model (the threshold on P(pos))."""
        if isinstance(self.threshold, list):
            return list(self.threshold)
        return [self.threshold] * (1 if self.is_binary else self.num_labels)

    def to_dict(self) -> dict[str, Any]:
        """The config as a dict; a BERT-backed one has no ``backbone_config`` key (its config.json is as before)."""
        output = super().to_dict()
        if output.get("backbone_config", 0) is None:
            del output["backbone_config"]
        return output

    @classmethod
    def get_config_dict(
        cls, pretrained_model_name_or_path: str | os.PathLike, **kwargs: Any
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The config dict of a checkpoint; a plain BERT checkpoint's reads as an hfsent config.

        Loading a BERT encoder (BertModel, BertForMaskedLM, ...) into `HfSentModel` is the intended way to
        start fine-tuning: its config keeps every encoder setting, drops its own task-head labels and
        takes ``model_type`` ``"hfsent"`` (so transformers does not warn about a model-type mismatch).
        """
        config_dict, kwargs = super().get_config_dict(pretrained_model_name_or_path, **kwargs)
        if config_dict.get("model_type") == "bert":
            config_dict = {k: v for k, v in config_dict.items() if k not in BERT_HEAD_KEYS}
            config_dict["model_type"] = cls.model_type
        elif config_dict.get("model_type") in BACKBONE_TYPES:  # a RoBERTa, GPT-2, Qwen2, ... checkpoint
            config_dict = {"model_type": cls.model_type, "backbone_config": config_dict}
        elif config_dict.get("model_type") not in (cls.model_type, None):
            raise ValueError(unsupported_backbone(config_dict.get("model_type")))
        return config_dict, kwargs


def unsupported_backbone(model_type: Any) -> str:
    """The one line refusing a ``model_type`` no backbone family handles."""
    return (
        f"hfsent has no backbone for model_type {model_type!r}; supported: "
        f"{', '.join(ENCODER_TYPES)} (encoders), {', '.join(DECODER_TYPES)} (decoders)"
    )


def backbone_from(value: PretrainedConfig | dict | None) -> PretrainedConfig | None:
    """The backbone config named by ``backbone_config`` (a config or its dict), without its own head keys, or None
    for BERT. A ValueError names a ``model_type`` no family handles."""
    if value is None:
        return None
    if not isinstance(value, (PretrainedConfig, dict)):
        raise ValueError(
            f"backbone_config must be a config or a dict with a model_type ({', '.join(BACKBONE_TYPES)}), got "
            f"{type(value).__name__} {str(value)[:60]!r}"
        )
    values = value.to_dict() if isinstance(value, PretrainedConfig) else dict(value)
    model_type = values.pop("model_type", None)
    if model_type == "bert":
        raise ValueError("a BERT backbone is hfsent's default: give its settings to HfSentConfig itself")
    if model_type not in BACKBONE_TYPES:
        raise ValueError(unsupported_backbone(model_type))
    for key in (*BACKBONE_DROPPED_KEYS, "transformers_version"):
        values.pop(key, None)
    try:
        return AutoConfig.for_model(model_type, **values)
    except Exception as err:  # a value of the wrong type (transformers 5 validates each field)
        raise ValueError(
            f"backbone_config of model_type {model_type!r} is invalid: {' '.join(str(err).split())}"
        ) from err


def reads_token_types(config: PretrainedConfig) -> bool:
    """Whether the model of ``config`` reads segment ids (``token_type_ids``, a text pair's 0/1): an encoder with more
    than one segment embedding (BERT's, ERNIE's); not RoBERTa's single segment, DeBERTa-v2's none, nor a decoder. An
    hfsent config answers for its backbone."""
    backbone = getattr(config, "backbone_config", None)
    if backbone is not None:
        return reads_token_types(backbone)
    return (getattr(config, "type_vocab_size", None) or 0) >= 2


def mirrored_sizes(backbone: PretrainedConfig, given: dict[str, Any]) -> dict[str, Any]:
    """The sizes hfsent reads from its own config, taken from ``backbone`` (``max_position_embeddings``: the tokens
    the backbone takes), and its special token ids where ``given`` has none."""
    sizes = {key: getattr(backbone, key) for key in ("hidden_size", "vocab_size", "num_hidden_layers")}
    sizes["num_attention_heads"] = getattr(backbone, "num_attention_heads", None)
    positions = getattr(backbone, "max_position_embeddings", None)
    if positions is not None and backbone.model_type in OFFSET_POSITION_TYPES:
        positions -= (backbone.pad_token_id or 0) + 1
    sizes["max_position_embeddings"] = positions
    sizes = {key: value for key, value in sizes.items() if value is not None}
    for key in ("pad_token_id", "bos_token_id", "eos_token_id"):  # the backbone's, None included (not BERT's 0)
        if given.get(key) is None:
            sizes[key] = getattr(backbone, key, None)
    return sizes


def check_pooling(pooling: str | None, backbone_type: str) -> str:
    """``pooling`` checked against the backbone (None: ``"last"`` for a decoder, else ``"cls"``); a ValueError names
    a choice the backbone cannot take."""
    decoder = backbone_type in DECODER_TYPES
    if pooling is None:
        return "last" if decoder else "cls"
    if pooling not in POOLING_CHOICES:
        raise ValueError(f"pooling must be one of {POOLING_CHOICES}, got {pooling!r}")
    if decoder and pooling != "last":
        raise ValueError(
            f"pooling {pooling!r} reads the first token, which a {backbone_type} decoder lets see only itself; "
            "use 'last' (the default for decoders)"
        )
    if pooling == "pooler" and backbone_type != "bert":
        raise ValueError(f"pooling 'pooler' is BERT's tanh pooler; a {backbone_type} backbone takes 'cls'")
    return pooling
