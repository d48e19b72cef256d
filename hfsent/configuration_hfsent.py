"""Configuration of the hfsent sentiment model.

This file is copied next to every saved checkpoint so that the checkpoint loads with
``trust_remote_code=True`` where hfsent is not installed: it must only import from
``transformers`` (and use relative imports for its siblings).
"""

from __future__ import annotations

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
LABEL_KEYS = ("num_labels", "id2label", "label2id")
# Keys of a plain BERT config that describe its own task head, not the encoder: dropped when a BERT
# config becomes an hfsent config.
BERT_HEAD_KEYS = (*LABEL_KEYS, "problem_type")


def check_labels(
    num_labels: int | None = None,
    id2label: dict[Any, str] | None = None,
    label2id: dict[str, Any] | None = None,
) -> None:
    """Raise a ValueError unless the given label settings describe hfsent's fixed labels ``{0: neg, 1: pos}``.

    hfsent's head is one logit ``z``, returned as the two logit columns ``[0, z]``: ``num_labels`` is 2,
    ``id2label`` is ``{0: "neg", 1: "pos"}`` (JSON's string keys accepted) and ``label2id`` its inverse.
    """
    problems = []
    if num_labels is not None and num_labels != len(ID2LABEL):
        problems.append(f"num_labels={num_labels!r}")
    if id2label is not None:
        try:
            same = {int(k): v for k, v in id2label.items()} == ID2LABEL
        except (AttributeError, TypeError, ValueError):
            same = False
        if not same:
            problems.append(f"id2label={id2label!r}")
    if label2id is not None:
        try:
            same = {k: int(v) for k, v in label2id.items()} == LABEL2ID
        except (AttributeError, TypeError, ValueError):
            same = False
        if not same:
            problems.append(f"label2id={label2id!r}")
    if problems:
        raise ValueError(
            f"hfsent models have a fixed label space, num_labels=2 with id2label={ID2LABEL} (one logit z, "
            f"returned as the logit columns [0, z]); got {', '.join(problems)}. Leave the labels unset, or "
            "fine-tune a stock BertForSequenceClassification for other classes"
        )


class HfSentConfig(BertConfig):
    """BERT hyperparameters plus the binary-sentiment head's settings.

    Args:
        threshold: decision threshold on P(pos) used by `hfsent.predict`, the CLI, the server and
            the Inference Endpoints handler: 0.5 unless the fine-tuning recipe's ``threshold_tuning`` moved it.
        pos_weight: optional weight of positive examples in `BCEWithLogitsLoss` (for imbalanced
            data, typically ``n_negative / n_positive``).
        pooling: ``"cls"`` (default) feeds the raw final-layer [CLS] vector to the head, as the
            reference tutorial does, and works for encoders from MLM pretraining, which have no
            pooler; ``"pooler"`` uses BERT's tanh pooler (pretrained only by BERT's NSP task).
        classifier_dropout: dropout before the head (defaults to ``hidden_dropout_prob``).
        **kwargs: any `transformers.BertConfig` argument. ``num_labels``, ``id2label`` and ``label2id``
            may only restate the fixed labels (`check_labels`); a plain BERT config's own labels (its
            ``model_type`` is not ``"hfsent"``) are dropped.

    ``HfSentConfig.from_pretrained`` (and so ``HfSentModel.from_pretrained``) reads a plain BERT
    checkpoint's config as an hfsent config with the default head settings.
    """

    model_type = "hfsent"
    # `save_pretrained` copies this file next to the config and names it in auto_map (see AUTO_MAP).
    _auto_class = "AutoConfig"

    def __init__(
        self,
        threshold: float = 0.5,
        pos_weight: float | None = None,
        pooling: str = "cls",
        classifier_dropout: float | None = None,
        **kwargs,
    ) -> None:
        # The label space is fixed: two columns for the pipeline, named neg/pos.
        if kwargs.pop("model_type", self.model_type) == self.model_type:
            check_labels(kwargs.get("num_labels"), kwargs.get("id2label"), kwargs.get("label2id"))
        for key in LABEL_KEYS:  # checked above, or another model type's labels (a BERT config's LABEL_0/LABEL_1)
            kwargs.pop(key, None)
        kwargs["id2label"] = dict(ID2LABEL)
        kwargs["label2id"] = dict(LABEL2ID)
        auto_map = dict(AUTO_MAP)
        auto_map.update(kwargs.pop("auto_map", None) or {})
        kwargs["auto_map"] = auto_map
        # transformers < 4.54's pipeline() loads a tokenizer only for a model type it knows or a config that names
        # a tokenizer_class (else: "'NoneType' object is not callable"); the checkpoint's tokenizer_config.json,
        # which every version reads first, still decides the class. "BertTokenizer" (4.x: tried as
        # BertTokenizerFast first) is the encoder's own tokenizer on every version.
        kwargs["tokenizer_class"] = kwargs.get("tokenizer_class") or TOKENIZER_CLASS
        super().__init__(classifier_dropout=classifier_dropout, **kwargs)
        if not 0.0 < float(threshold) < 1.0:
            raise ValueError(f"threshold must be strictly between 0 and 1, got {threshold!r}")
        if pos_weight is not None and not float(pos_weight) > 0:
            raise ValueError(f"pos_weight must be a positive number or None, got {pos_weight!r}")
        if pooling not in POOLING_CHOICES:
            raise ValueError(f"pooling must be one of {POOLING_CHOICES}, got {pooling!r}")
        self.threshold = float(threshold)
        self.pos_weight = None if pos_weight is None else float(pos_weight)
        self.pooling = pooling

    @property
    def num_labels(self) -> int | None:
        """Always 2 (the logit columns ``[0, z]``); setting anything else raises a ValueError."""
        return len(self.id2label) if self.id2label is not None else None

    @num_labels.setter
    def num_labels(self, num_labels: int) -> None:
        """Accept only 2 (neg/pos): anything else raises a ValueError naming the value."""
        check_labels(num_labels=num_labels)

    def __setattr__(self, key: str, value: Any) -> None:
        if key in ("id2label", "label2id") and value is not None:
            check_labels(**{key: value})
            value = dict(ID2LABEL) if key == "id2label" else dict(LABEL2ID)  # JSON's string keys made ints
        super().__setattr__(key, value)

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
