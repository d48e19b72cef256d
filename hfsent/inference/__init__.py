"""Batch inference: probabilities and thresholded labels from an hfsent checkpoint.

One package, one job each: `backends` (`TorchBackend`, `OnnxBackend`, `load_backend`), `batching` (length-sorted,
dynamically padded batches within a token budget), `labels` (threshold and label rules, shared with the Inference
Endpoints handler), `classify` (`predict`), `files` (``hfsent predict``: whole files, streamed), `server`
(``hfsent serve``: the Inference Endpoints API over HTTP) and `export` (``hfsent export --onnx``).
"""

from .backends import BACKENDS, InferenceBackend, OnnxBackend, TorchBackend, load_backend, load_model_and_tokenizer
from .classify import predict
from .labels import label_result, validate_threshold

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
