"""ONNX export, dynamic int8 quantization and the parity check (the ONNX Runtime backend is in `backends`).

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
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .backends import INT8_FILE, ONNX_FILE, InferenceBackend, load_model_and_tokenizer

QUANTIZATIONS = ("int8",)


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
