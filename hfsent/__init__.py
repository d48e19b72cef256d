"""hfsent: train, publish and serve BERT text-sentiment classifiers on the Hugging Face stack.

Importing hfsent registers the ``hfsent`` model type with transformers' Auto classes.
"""

from __future__ import annotations

from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification

from .configuration_hfsent import HfSentConfig
from .hub import HubError, push_to_hub
from .inference import load_backend, load_model_and_tokenizer, predict
from .modeling_hfsent import HfSentModel

__version__ = "0.1.0"

AutoConfig.register(HfSentConfig.model_type, HfSentConfig, exist_ok=True)
AutoModel.register(HfSentConfig, HfSentModel, exist_ok=True)
AutoModelForSequenceClassification.register(HfSentConfig, HfSentModel, exist_ok=True)
# Saved checkpoints carry their code (configuration_hfsent.py, modeling_hfsent.py); the config's
# default `auto_map` names both AutoModel and AutoModelForSequenceClassification.
HfSentConfig.register_for_auto_class()
HfSentModel.register_for_auto_class("AutoModelForSequenceClassification")

__all__ = [
    "HfSentConfig",
    "HfSentModel",
    "HubError",
    "__version__",
    "load_backend",
    "load_model_and_tokenizer",
    "predict",
    "push_to_hub",
]
