"""Inference backends: a loaded model, its tokenizer and config, turning texts into P(pos).

`TorchBackend` runs an hfsent checkpoint with PyTorch, `OnnxBackend` a folder written by ``hfsent export --onnx``
with ONNX Runtime (CPU); both implement `InferenceBackend` and score through `hfsent.inference.batching`, so
`hfsent.predict`, ``hfsent predict`` and ``hfsent serve`` run on either. `load_backend` picks one by name.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from ..configuration_hfsent import HfSentConfig, reads_token_types
from ..outputs import WEIGHT_FILES
from ..tokenizer import check_vocabulary, fit_tokenizer_to_model, load_tokenizer
from .batching import available_cpus, batched_logits, batched_positive_probabilities, max_input_length
from .defaults import BACKENDS

ONNX_FILE = "model.onnx"
INT8_FILE = "model_int8.onnx"
# ONNX Runtime graph rewrites left out. SkipLayerNormFusion merges residual Add + LayerNormalization into its
# SkipLayerNormalization kernel, which on CPU (onnxruntime 1.32, x86-64) took 31 % of the int8 model's time,
# far more than the two ops it replaces. Without it the int8 model scored 1.34x as many reviews per second
# (zh-mini, the 2,000 reviews of bench/bench_predict.py, 2 cores).
DISABLED_OPTIMIZERS = ("SkipLayerNormFusion",)


@runtime_checkable
class InferenceBackend(Protocol):
    """Anything that turns texts into P(pos): a loaded model plus its tokenizer and config. The backends here
    (`TorchBackend`, `OnnxBackend`) also take text pairs (``pairs=``) and give a model's logits (``logits``), which
    multi-label and text-pair models need."""

    name: str
    config: PretrainedConfig
    tokenizer: PreTrainedTokenizerBase
    workers: int  # how many batches run at once (the server runs one batching thread per worker)

    def positive_probabilities(
        self, texts: Sequence[str], batch_size: int = 64, max_length: int | None = None
    ) -> list[float]:
        """Return P(pos) for each text, in input order."""
        ...


def load_model_and_tokenizer(
    name_or_path: str, device: str | torch.device | None = None, **kwargs: Any
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load an hfsent checkpoint (Hub id or local folder) and its tokenizer, in eval mode; a ValueError for a tokenizer
    larger than the model's vocabulary (`hfsent.tokenizer.check_vocabulary`)."""
    config = AutoConfig.from_pretrained(name_or_path)
    if config.model_type != HfSentConfig.model_type:  # a GPT-2 LM (causal-LM pretraining's), a BERT encoder, ...
        raise ValueError(
            f"{str(name_or_path)!r} is a {config.model_type!r} checkpoint, not an hfsent classifier (model_type "
            f"'hfsent'): fine-tune it first (hfsent train, model_name_or_path: {str(name_or_path)!r})"
        )
    model = AutoModelForSequenceClassification.from_pretrained(name_or_path, config=config, **kwargs)
    model.eval()
    if device is not None:
        model.to(device)
    tokenizer = load_tokenizer(name_or_path)
    check_vocabulary(tokenizer, model.config, str(name_or_path))
    return model, fit_tokenizer_to_model(tokenizer, model.config)


def detect_backend(name_or_path: str) -> str:
    """The backend for ``name_or_path``: ``"onnx"`` for an ``.onnx`` file or a folder with an ONNX graph
    (written by ``hfsent export --onnx``) and no torch weights, else ``"torch"`` (checkpoints and Hub ids)."""
    path = Path(name_or_path)
    if path.is_file() and path.suffix == ".onnx":
        return "onnx"
    onnx_graph = path.is_dir() and any((path / f).is_file() for f in (ONNX_FILE, INT8_FILE))
    if onnx_graph and not any((path / f).is_file() for f in WEIGHT_FILES):
        return "onnx"
    return "torch"


def load_backend(name_or_path: str, backend: str | None = None, threads: int | None = None) -> InferenceBackend:
    """Load a model for inference: ``backend="torch"`` (an hfsent checkpoint) or ``"onnx"``; None (the
    default) picks it with `detect_backend`.

    For ``"onnx"``, ``name_or_path`` is a folder written by ``hfsent export --onnx`` or one ``.onnx``
    file in it (see `OnnxBackend`). ``threads``: how many batches run at once on the CPU, each on one core
    (default: one per available CPU; see `TorchBackend` and `OnnxBackend`).
    """
    if backend is None:
        backend = detect_backend(name_or_path)
    if backend == "torch":
        model, tokenizer = load_model_and_tokenizer(name_or_path)
        return TorchBackend(model, tokenizer, workers=threads or available_cpus())
    if backend == "onnx":
        return OnnxBackend(name_or_path, threads=threads)
    raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")


class _BatchedBackend:
    """What the backends share: P(pos) by `batched_positive_probabilities` and logits by `batched_logits` over the
    backend's ``_logits``, its batches run ``workers`` at once on ``_pool`` (None: one at a time)."""

    tokenizer: PreTrainedTokenizerBase
    config: PretrainedConfig
    workers: int
    _pool: ThreadPoolExecutor | None

    def _logits(
        self, input_ids: np.ndarray, attention_mask: np.ndarray, token_type_ids: np.ndarray | None = None
    ) -> np.ndarray:
        raise NotImplementedError

    def positive_probabilities(
        self,
        texts: Sequence[str],
        batch_size: int = 64,
        max_length: int | None = None,
        pairs: Sequence[str] | None = None,
    ) -> list[float]:
        """Return P(pos) for each text (or text pair, with ``pairs``: one second text per text), in input order
        (texts longer than the model accepts are truncated)."""
        limit = max_input_length(self.tokenizer, self.config, max_length)
        return batched_positive_probabilities(
            texts, self.tokenizer, self._logits, batch_size, limit, pool=self._pool, workers=self.workers, pairs=pairs
        )

    def logits(
        self,
        texts: Sequence[str],
        batch_size: int = 64,
        max_length: int | None = None,
        pairs: Sequence[str] | None = None,
    ) -> np.ndarray:
        """The model's logits ``(len(texts), num_labels)`` in float32, in input order: a multi-label model's K logits
        (sigmoid: each label's probability), a neg/pos model's ``[0, z]``; text pairs with ``pairs``."""
        if not texts:
            return np.zeros((0, self.config.num_labels), dtype=np.float32)
        limit = max_input_length(self.tokenizer, self.config, max_length)
        return batched_logits(
            texts, self.tokenizer, self._logits, batch_size, limit, pool=self._pool, workers=self.workers, pairs=pairs
        )


class TorchBackend(_BatchedBackend):
    """An `InferenceBackend` running a loaded hfsent `PreTrainedModel` with PyTorch.

    Args:
        model: the loaded model.
        tokenizer: its tokenizer.
        workers: on a CPU, how many batches run at once, each on one core: with more than one, batches run on
            a pool of threads that each run PyTorch on one intra-op thread (as for `OnnxBackend`, a small model's
            ops are too short to share well between cores, and one thread per batch holds up on a busy
            machine). The calling thread keeps its own setting. Ignored on an accelerator.
    """

    name = "torch"

    def __init__(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, workers: int = 1) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.config = model.config
        self.workers = workers if model.device.type == "cpu" else 1
        self._pool = None
        if self.workers > 1:
            torch.get_num_threads()  # fixes the calling thread's intra-op setting before the pool's threads change
            # the default that threads started later inherit
            self._pool = ThreadPoolExecutor(
                self.workers, "hfsent-torch", initializer=torch.set_num_threads, initargs=(1,)
            )

    @torch.inference_mode()
    def _logits(
        self, input_ids: np.ndarray, attention_mask: np.ndarray, token_type_ids: np.ndarray | None = None
    ) -> np.ndarray:
        device = self.model.device
        batch = {"input_ids": torch.from_numpy(input_ids), "attention_mask": torch.from_numpy(attention_mask)}
        if token_type_ids is not None:
            batch["token_type_ids"] = torch.from_numpy(token_type_ids)
        logits = self.model(**{k: v.to(device) for k, v in batch.items()}).logits
        return logits.float().cpu().numpy()


def resolve_onnx_file(path: str | Path) -> Path:
    """The ONNX graph to run for ``path``: the file itself, or in a folder ``model_int8.onnx`` when it
    exists, else ``model.onnx``."""
    path = Path(path)
    if path.is_file() and path.suffix == ".onnx":
        return path
    for name in (INT8_FILE, ONNX_FILE):
        if (path / name).is_file():
            return path / name
    raise FileNotFoundError(
        f"no ONNX model at {str(path)!r}: expected a folder written by `hfsent export --onnx` "
        f"(holding {ONNX_FILE} or {INT8_FILE}) or an .onnx file in one"
    )


class OnnxBackend(_BatchedBackend):
    """An `InferenceBackend` running an exported hfsent model with ONNX Runtime (CPU).

    Args:
        path: a folder written by ``hfsent export --onnx`` (its int8 graph when there is one) or
            one ``.onnx`` file in it; the tokenizer and config are read from the same folder.
        threads: how many batches run at once, each on one core (default: one per available CPU).

    Batches run concurrently on one session with one ONNX Runtime thread each, rather than one batch at a
    time spread over all cores: a small model's ops are too short to share well (on 2 cores, 1.2x the
    throughput of ONNX Runtime's own intra-op threads; zh-mini int8, the reviews of bench/bench_predict.py).
    """

    name = "onnx"

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        import onnxruntime as ort
        from transformers import AutoConfig

        self.model_file = resolve_onnx_file(path)
        folder = str(self.model_file.parent)
        self.config = AutoConfig.from_pretrained(folder)
        self.tokenizer = load_tokenizer(folder)
        check_vocabulary(self.tokenizer, self.config, folder)
        self.workers = threads or available_cpus()
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(
            str(self.model_file),
            options,
            providers=["CPUExecutionProvider"],
            disabled_optimizers=list(DISABLED_OPTIMIZERS),
        )
        self._input_names = {i.name for i in self.session.get_inputs()}
        pairs = getattr(self.config, "text_pairs", False)
        if pairs and reads_token_types(self.config) and "token_type_ids" not in self._input_names:
            raise ValueError(
                f"{self.model_file} has no token_type_ids input, so it cannot tell a text from its pair; export the "
                "text-pair checkpoint again with `hfsent export --onnx`"
            )
        self._pool = ThreadPoolExecutor(self.workers, "hfsent-onnx") if self.workers > 1 else None

    def _logits(
        self, input_ids: np.ndarray, attention_mask: np.ndarray, token_type_ids: np.ndarray | None = None
    ) -> np.ndarray:
        feed = {"input_ids": input_ids, "attention_mask": attention_mask}
        if "token_type_ids" in self._input_names:
            feed["token_type_ids"] = np.zeros_like(input_ids) if token_type_ids is None else token_type_ids
        return self.session.run(None, feed)[0]


__all__ = [
    "BACKENDS",
    "INT8_FILE",
    "ONNX_FILE",
    "InferenceBackend",
    "OnnxBackend",
    "TorchBackend",
    "detect_backend",
    "load_backend",
    "load_model_and_tokenizer",
    "resolve_onnx_file",
]
