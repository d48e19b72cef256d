"""Batch inference: probabilities and thresholded labels from an hfsent checkpoint.

One package, one job each: `backends` (`TorchBackend`, `OnnxBackend`, `load_backend`), `batching` (length-sorted,
dynamically padded batches within a token budget), `labels` (threshold and label rules, shared with the Inference
Endpoints handler), `classify` (`predict`), `files` (``hfsent predict``: whole files, streamed), `server`
(``hfsent serve``: the Inference Endpoints API over HTTP), `export` (``hfsent export --onnx``) and `defaults` (the
commands' choices and defaults). The names below load on first use, so that `defaults` is read without torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# public name -> module that defines it, imported on first access (PEP 562)
_LAZY = {
    "BACKENDS": ".defaults",
    "InferenceBackend": ".backends",
    "OnnxBackend": ".backends",
    "TorchBackend": ".backends",
    "load_backend": ".backends",
    "load_model_and_tokenizer": ".backends",
    "predict": ".classify",
    "label_result": ".labels",
    "validate_threshold": ".labels",
}

if TYPE_CHECKING:
    from .backends import InferenceBackend, OnnxBackend, TorchBackend, load_backend, load_model_and_tokenizer
    from .classify import predict
    from .defaults import BACKENDS
    from .labels import label_result, validate_threshold


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "BACKENDS",
    "InferenceBackend",
    "OnnxBackend",
    "TorchBackend",
    "label_result",
    "load_backend",
    "load_model_and_tokenizer",
    "predict",
    "validate_threshold",
]
