"""Model cards: the README.md that tells a checkpoint's whole story, rendered offline from data collected in training.

`SentimentModelCardData` holds what the card of a fine-tuned model says (base model, data, splits, label balance,
hyperparameters, training log, metrics, framework versions); `ModelCardCallback` collects it during
``Trainer.train()`` and writes ``README.md`` into every checkpoint and, through `ModelCardCallback.save`, into the
final output directory (with ``model_card_data.json``, from which ``hfsent push`` re-renders the card with the
repo id). Cards are rendered with `huggingface_hub.ModelCard.from_template` from the templates in
``model_card_templates/``; rendering never touches the network, and during training its errors are logged as
warnings, never raised. `render_pretrained_encoder_card` renders the card of an MLM-pretrained encoder.

`common` holds what every card needs, `sentiment` the fine-tuned model's card, `encoder` the pretrained encoder's.
"""

from ..outputs import CARD_DATA_FILE, CARD_FILE
from .common import (
    TEMPLATES_DIR,
    dataset_type,
    is_hub_id,
    is_local_path,
    public_value,
    resolve_base_model,
    write_card,
)
from .encoder import ENCODER_TEMPLATE, render_pretrained_encoder_card, write_encoder_card
from .sentiment import (
    SENTIMENT_TEMPLATE,
    ModelCardCallback,
    SentimentModelCardData,
    card_for_push,
    collect_finetuning_card_data,
)

__all__ = [
    "CARD_DATA_FILE",
    "CARD_FILE",
    "ENCODER_TEMPLATE",
    "SENTIMENT_TEMPLATE",
    "TEMPLATES_DIR",
    "ModelCardCallback",
    "SentimentModelCardData",
    "card_for_push",
    "collect_finetuning_card_data",
    "dataset_type",
    "is_hub_id",
    "is_local_path",
    "public_value",
    "render_pretrained_encoder_card",
    "resolve_base_model",
    "write_card",
    "write_encoder_card",
]
