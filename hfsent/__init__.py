"""hfsent: train, publish and serve BERT text-sentiment classifiers on the Hugging Face stack.

Importing hfsent registers the ``hfsent`` model type with transformers' Auto classes (and peft's LoRA
defaults); the registration is made when transformers' Auto modules load (`hfsent.registration`), so
``import hfsent`` itself imports neither torch nor transformers. The names below load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import registration
from .lazy import lazy_attributes

__version__ = "0.1.0"

# public name -> module that defines it, imported on first access (PEP 562)
_LAZY = {
    "HfSentConfig": ".configuration_hfsent",
    "HfSentModel": ".modeling_hfsent",
    "HubError": ".hub",
    "push_to_hub": ".hub",
    "load_backend": ".inference",
    "load_model_and_tokenizer": ".inference",
    "predict": ".inference",
}

if TYPE_CHECKING:
    from .configuration_hfsent import HfSentConfig
    from .hub import HubError, push_to_hub
    from .inference import load_backend, load_model_and_tokenizer, predict
    from .modeling_hfsent import HfSentModel

__getattr__, __dir__ = lazy_attributes(__name__, _LAZY)


registration.install()

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
