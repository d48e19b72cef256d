"""ONNX export, dynamic int8 quantization and an ONNX Runtime inference backend.

``hfsent export MODEL OUT --onnx [--quantize int8]`` writes a self-contained folder::

    OUT/model.onnx (+ model.onnx.data)   fp32 graph, dynamic batch and sequence axes, output ``logits`` [0, z]
    OUT/model_int8.onnx                  with --quantize int8: weights int8 (onnxruntime quantize_dynamic, QInt8)
    OUT/config.json, tokenizer files     so ``--backend onnx`` needs only this folder

The export uses ``transformers.exporters.OnnxExporter`` (torch.export + ``torch.onnx``; it needs
``onnxscript``, in hfsent's ``onnx`` extra). optimum-onnx is not used: it pins transformers < 4.58.
"""

from __future__ import annotations

import contextlib
import io
import logging
import random
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .inference import (
    InferenceBackend,
    available_cpus,
    batched_positive_probabilities,
    load_model_and_tokenizer,
    max_input_length,
)
from .tokenizer import load_tokenizer

ONNX_FILE = "model.onnx"
INT8_FILE = "model_int8.onnx"
QUANTIZATIONS = ("int8",)
# ONNX Runtime graph rewrites left out. SkipLayerNormFusion merges residual Add + LayerNormalization into its
# SkipLayerNormalization kernel, which on CPU (onnxruntime 1.32, x86-64) took 31 % of the int8 model's time,
# far more than the two ops it replaces. Without it the int8 model scored 1.34x as many reviews per second
# (zh-mini, the 2,000 reviews of bench/bench_predict.py, 2 cores).
DISABLED_OPTIMIZERS = ("SkipLayerNormFusion",)


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


class OnnxBackend:
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
        self._pool = ThreadPoolExecutor(self.workers, "hfsent-onnx") if self.workers > 1 else None

    def _logits(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        feed = {"input_ids": input_ids, "attention_mask": attention_mask}
        if "token_type_ids" in self._input_names:
            feed["token_type_ids"] = np.zeros_like(input_ids)
        return self.session.run(None, feed)[0][:, 1]

    def positive_probabilities(
        self, texts: Sequence[str], batch_size: int = 64, max_length: int | None = None
    ) -> list[float]:
        """Return P(pos) for each text, in input order (texts longer than the model accepts are truncated)."""
        limit = max_input_length(self.tokenizer, self.config, max_length)
        return batched_positive_probabilities(
            texts, self.tokenizer, self._logits, batch_size, limit, pool=self._pool, workers=self.workers
        )


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[io.StringIO]:
    """Hold back the exporter's progress prints and experimental/version-drift warnings (returned on failure)."""
    from transformers.utils import logging as hf_logging

    captured = io.StringIO()
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "torch.export", "root")]
    levels = [lg.level for lg in loggers]
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(captured):
            warnings.simplefilter("ignore")
            yield captured
    finally:
        hf_logging.set_verbosity(verbosity)
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def export_onnx(model_path: str, out_dir: str | Path, quantize: str | None = None) -> list[Path]:
    """Export an hfsent checkpoint to ``out_dir`` (see the module docstring); return the ONNX files written.

    ``quantize="int8"`` also writes ``model_int8.onnx`` (`quantize_int8`).
    """
    if quantize not in (None, *QUANTIZATIONS):
        raise ValueError(f"unsupported quantization {quantize!r}; choose one of {', '.join(QUANTIZATIONS)}")
    from transformers.exporters import OnnxConfig, OnnxExporter

    out = Path(out_dir)
    model, tokenizer = load_model_and_tokenizer(model_path)
    # Two rows of different lengths: a batch > 1 and padding, so neither axis nor the mask is specialised.
    sample = tokenizer(["hfsent export sample text", "short"], padding=True, return_tensors="pt")
    sample = {k: sample[k] for k in ("input_ids", "attention_mask")}
    with _quiet_exporter() as log:
        try:
            exported = OnnxExporter().export(model, sample, OnnxConfig(dynamic=True))
        except Exception as err:
            raise RuntimeError(f"ONNX export failed: {err}\n{log.getvalue()[-4000:]}") from err
        exported.save_pretrained(out)
    tokenizer.save_pretrained(out)
    files = [out / ONNX_FILE]
    if quantize == "int8":
        files.append(quantize_int8(out / ONNX_FILE, out / INT8_FILE))
    else:
        (out / INT8_FILE).unlink(missing_ok=True)  # an earlier export's, which OnnxBackend would prefer
    return files


def quantize_int8(source: str | Path, target: str | Path) -> Path:
    """Dynamic int8 quantization (`onnxruntime.quantization.quantize_dynamic`, QInt8 weights; activations
    are quantized at run time, so no calibration data is needed)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with _quiet_exporter():
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8)
    return Path(target)


@dataclass
class Parity:
    """How closely a backend follows a reference on the same texts."""

    name: str
    texts: int
    max_abs_diff: float
    label_agreement: int

    @property
    def agreement(self) -> float:
        """The fraction of texts given the same label."""
        return self.label_agreement / self.texts if self.texts else 1.0

    def __str__(self) -> str:
        return (
            f"{self.name}: max |P(pos) - torch| = {self.max_abs_diff:.2e}, labels agree on "
            f"{self.label_agreement}/{self.texts} texts ({100 * self.agreement:.2f} %)"
        )


def parity(
    reference: InferenceBackend, candidate: InferenceBackend, texts: Sequence[str], threshold: float, name: str
) -> Parity:
    """Compare ``candidate``'s probabilities and thresholded labels with ``reference``'s on ``texts``."""
    expected = np.array(reference.positive_probabilities(texts))
    got = np.array(candidate.positive_probabilities(texts))
    same = int(np.sum((expected >= threshold) == (got >= threshold)))
    diff = float(np.max(np.abs(expected - got))) if len(texts) else 0.0
    return Parity(name, len(texts), diff, same)


def random_texts(tokenizer, n: int = 256, seed: int = 0, max_tokens: int = 256) -> list[str]:
    """``n`` texts of random vocabulary tokens, 1 to ``max_tokens`` long, for a parity check without data."""
    rng = random.Random(seed)
    # whole-word pieces only: no special tokens, [unused*] slots or ##continuations
    vocab = [i for t, i in tokenizer.get_vocab().items() if not t.startswith(("[", "##", "<"))]
    vocab.sort()
    lengths = [max(1, int(max_tokens * (k + 1) / n)) for k in range(n)]
    return [tokenizer.decode(rng.choices(vocab, k=length), skip_special_tokens=True) for length in lengths]
