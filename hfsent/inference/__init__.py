"""Batch inference: probabilities and thresholded labels from an hfsent checkpoint.

One package, one job each: `backends` (`TorchBackend`, `OnnxBackend`, `load_backend`), `batching` (length-sorted,
dynamically padded batches within a token budget), `labels` (threshold and label rules, shared with the Inference
Endpoints handler), `classify` (`predict`), `files` (``hfsent predict``: whole files, streamed), `server`
(``hfsent serve``: the Inference Endpoints API over HTTP), `export` (``hfsent export --onnx``) and `defaults` (the
commands' choices and defaults). The names below load on first use, so that `defaults` is read without torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import lazy_attributes

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

__getattr__, __dir__ = lazy_attributes(__name__, _LAZY)


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
