"""Configuration of the hfsent sentiment model.

This file is copied next to every saved checkpoint so that the checkpoint loads with
``trust_remote_code=True`` where hfsent is not installed: it must only import from
``transformers`` (and use relative imports for its siblings).
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from transformers import BertConfig

ID2LABEL = {0: "neg", 1: "pos"}
LABEL2ID = {label: i for i, label in ID2LABEL.items()}
AUTO_MAP = {
    "AutoConfig": "configuration_hfsent.HfSentConfig",
    "AutoModel": "modeling_hfsent.HfSentModel",
    "AutoModelForSequenceClassification": "modeling_hfsent.HfSentModel",
}
# config.tokenizer_class: what the stock pipeline of transformers 4.51-4.53 needs to load the tokenizer (see __init__)
TOKENIZER_CLASS = "BertTokenizer"
POOLING_CHOICES = ("cls", "pooler")
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
        pooling: ``"cls"`` (default) feeds the raw final-layer [CLS] vector to the head, as the
            reference tutorial does, and works for encoders from MLM pretraining, which have no
            pooler; ``"pooler"`` uses BERT's tanh pooler (pretrained only by BERT's NSP task).
        classifier_dropout: dropout before the head (defaults to ``hidden_dropout_prob``).
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
        pooling: str = "cls",
        classifier_dropout: float | None = None,
        text_pairs: bool = False,
        **kwargs,
    ) -> None:
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
        kwargs["tokenizer_class"] = kwargs.get("tokenizer_class") or TOKENIZER_CLASS
        super().__init__(classifier_dropout=classifier_dropout, **kwargs)
        self.threshold = _per_label("threshold", threshold, lambda t: 0.0 < t < 1.0, "strictly between 0 and 1")
        self.pos_weight = _per_label("pos_weight", pos_weight, lambda w: w > 0, "a positive number or None")
        if pooling not in POOLING_CHOICES:
            raise ValueError(f"pooling must be one of {POOLING_CHOICES}, got {pooling!r}")
        self.pooling = pooling
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
        super().__setattr__(key, value)

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
        return config_dict, kwargs
