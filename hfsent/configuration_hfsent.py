"""Configuration of the hfsent sentiment model.

This file is copied next to every saved checkpoint so that the checkpoint loads with
``trust_remote_code=True`` where hfsent is not installed: it must only import from
``transformers`` (and use relative imports for its siblings).
"""

from __future__ import annotations

from transformers import BertConfig

ID2LABEL = {0: "neg", 1: "pos"}
AUTO_MAP = {
    "AutoConfig": "configuration_hfsent.HfSentConfig",
    "AutoModel": "modeling_hfsent.HfSentModel",
    "AutoModelForSequenceClassification": "modeling_hfsent.HfSentModel",
}
POOLING_CHOICES = ("cls", "pooler")


class HfSentConfig(BertConfig):
    """BERT hyperparameters plus the binary-sentiment head's settings.

    Args:
        threshold: decision threshold on P(pos) used by `hfsent.predict`, the CLI, the server and
            the Inference Endpoints handler. Tuned on validation data by the fine-tuning recipe.
        pos_weight: optional weight of positive examples in `BCEWithLogitsLoss` (for imbalanced
            data, typically ``n_negative / n_positive``).
        pooling: ``"cls"`` (default) feeds the raw final-layer [CLS] vector to the head, as the
            reference tutorial does, and works for encoders from MLM pretraining, which have no
            pooler; ``"pooler"`` uses BERT's tanh pooler (pretrained only by BERT's NSP task).
        classifier_dropout: dropout before the head (defaults to ``hidden_dropout_prob``).
        **kwargs: any `transformers.BertConfig` argument.
    """

    model_type = "hfsent"

    def __init__(
        self,
        threshold: float = 0.5,
        pos_weight: float | None = None,
        pooling: str = "cls",
        classifier_dropout: float | None = None,
        **kwargs,
    ) -> None:
        # The label space is fixed: two columns for the pipeline, named neg/pos.
        kwargs["id2label"] = dict(ID2LABEL)
        kwargs["label2id"] = {v: k for k, v in ID2LABEL.items()}
        kwargs.pop("num_labels", None)
        kwargs.pop("model_type", None)  # e.g. "bert" when built from a plain BERT config
        auto_map = dict(AUTO_MAP)
        auto_map.update(kwargs.pop("auto_map", None) or {})
        kwargs["auto_map"] = auto_map
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
