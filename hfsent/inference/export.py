"""ONNX export, dynamic int8 quantization and the parity check (the ONNX Runtime backend is in `backends`).

``hfsent export MODEL OUT --onnx [--quantize int8]`` writes a self-contained folder::

    OUT/model.onnx (+ model.onnx.data)   fp32 graph, dynamic batch and sequence axes, output ``logits`` [0, z]
                                         (a multi-label model's K logits); a text-pair model's also takes
                                         ``token_type_ids``
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
from typing import TYPE_CHECKING

import numpy as np

from ..configuration_hfsent import reads_token_types
from .backends import INT8_FILE, ONNX_FILE, InferenceBackend, load_model_and_tokenizer
from .defaults import QUANTIZATIONS

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


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


def export_onnx(
    model: str | PreTrainedModel,
    out_dir: str | Path,
    quantize: str | None = None,
    tokenizer: PreTrainedTokenizerBase | None = None,
) -> list[Path]:
    """Export an hfsent model to ``out_dir`` (see the module docstring); return the ONNX files written.

    ``model`` is a checkpoint (folder or Hub id; its tokenizer is loaded too) or a loaded model with its
    ``tokenizer``, on any device and in any dtype: the graph is always traced from an fp32 copy on the CPU
    (a graph traced on CUDA holds CUDA-only attention kernels that ONNX Runtime's CPU provider cannot run),
    and the model itself is left as it was. ``quantize="int8"`` also writes ``model_int8.onnx`` (`quantize_int8`).
    Raises `ValueError` for a model whose weights are not loaded (the ``meta`` device).
    """
    if quantize not in (None, *QUANTIZATIONS):
        raise ValueError(f"unsupported quantization {quantize!r}; choose one of {', '.join(QUANTIZATIONS)}")
    import onnx
    import torch
    from transformers.exporters import OnnxConfig, OnnxExporter

    out = Path(out_dir)
    with torch.device("cpu"):  # also over a torch.set_default_device("cuda") of the caller
        if isinstance(model, str):
            model, tokenizer = load_model_and_tokenizer(model, device_map="cpu", dtype=torch.float32)
        elif tokenizer is None:
            raise ValueError("export_onnx needs the tokenizer when `model` is a model object")
        else:
            model = cpu_float32_copy(model)
        # Two rows of different lengths: a batch > 1 and padding, so neither axis nor the mask is specialised. A
        # text-pair model's graph also takes token_type_ids (0 for the first text, 1 for the pair) where its backbone
        # reads them (BERT's; not GPT-2's nor RoBERTa's, whose tokenizers give none).
        inputs = ["input_ids", "attention_mask"]
        if getattr(model.config, "text_pairs", False):
            sample = tokenizer(
                ["hfsent export", "short"], ["sample text pair", "pair"], padding=True, return_tensors="pt"
            )
            if reads_token_types(model.config):
                inputs.append("token_type_ids")
        else:
            sample = tokenizer(["hfsent export sample text", "short"], padding=True, return_tensors="pt")
        sample = {k: sample[k].cpu() for k in inputs}
        with _quiet_exporter() as log:
            try:
                exported = OnnxExporter().export(model, sample, OnnxConfig(dynamic=True))
            except Exception as err:
                raise RuntimeError(f"ONNX export failed: {err}\n{log.getvalue()[-4000:]}") from err
            exported.save_pretrained(out)
    graph = onnx.load(str(out / ONNX_FILE), load_external_data=False)  # the weights stay in model.onnx.data
    if drop_initializer_value_info(graph.graph):
        onnx.save(graph, str(out / ONNX_FILE))
    tokenizer.save_pretrained(out)
    files = [out / ONNX_FILE]
    if quantize == "int8":
        files.append(quantize_int8(out / ONNX_FILE, out / INT8_FILE))
    else:
        (out / INT8_FILE).unlink(missing_ok=True)  # an earlier export's, which OnnxBackend would prefer
    return files


def cpu_float32_copy(model: PreTrainedModel) -> PreTrainedModel:
    """A copy of ``model`` in fp32 on the CPU, in eval mode (``model`` itself is not moved or cast).

    Raises `ValueError` when a weight is on the ``meta`` device (a model built without its weights).
    """
    import torch

    meta = next((name for name, p in model.state_dict().items() if p.is_meta), None)
    if meta is not None:
        raise ValueError(
            f"the model's weight {meta!r} is on the meta device (not loaded); export a loaded model or its "
            "checkpoint folder"
        )
    state = {
        name: t.detach().to("cpu", torch.float32 if t.is_floating_point() else t.dtype)
        for name, t in model.state_dict().items()
    }
    copy = type(model)(model.config)
    copy.load_state_dict(state)
    return copy.to(torch.float32).eval()


def quantize_int8(source: str | Path, target: str | Path) -> Path:
    """Dynamic int8 quantization (`onnxruntime.quantization.quantize_dynamic`, QInt8 weights; activations
    are quantized at run time, so no calibration data is needed)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = onnx.load(str(source))  # with its weights: quantize_dynamic rewrites them
    drop_initializer_value_info(model.graph)
    with _quiet_exporter():
        quantize_dynamic(model, str(target), weight_type=QuantType.QInt8)
    return Path(target)


def drop_initializer_value_info(graph) -> int:
    """Remove the ``value_info`` entries that repeat an initializer's shape (``graph``: an ``onnx.GraphProto``);
    return how many were removed.

    ``torch.onnx`` records every weight's shape in ``value_info`` as well. onnxruntime < 1.32's
    ``quantize_dynamic`` turns ``Gemm(transB=1)`` into ``MatMul`` by transposing the weight in place under the
    same name, so the recorded shape then contradicts it and onnx shape inference stops with ``Inferred shape
    and existing shape differ in dimension 0: (hidden) vs (1)`` (the classifier's ``(1, hidden)`` weight).
    An initializer carries its own shape, so these entries add nothing.
    """
    names = {init.name for init in graph.initializer}
    kept = [info for info in graph.value_info if info.name not in names]
    dropped = len(graph.value_info) - len(kept)
    del graph.value_info[:]
    graph.value_info.extend(kept)
    return dropped


@dataclass
class Parity:
    """How closely a backend follows a reference on the same texts (of a multi-label model: on each of its
    ``labels`` labels of every text)."""

    name: str
    texts: int
    max_abs_diff: float
    label_agreement: int
    labels: int = 1  # decisions per text: 1 for a neg/pos model, K for a multi-label one

    @property
    def decisions(self) -> int:
        """How many decisions were compared: one per text, or one per (text, label) of a multi-label model."""
        return self.texts * self.labels

    @property
    def agreement(self) -> float:
        """The fraction of decisions (texts, or (text, label) pairs) given the same label."""
        return self.label_agreement / self.decisions if self.decisions else 1.0

    def __str__(self) -> str:
        if self.labels == 1:
            return (
                f"{self.name}: max |P(pos) - torch| = {self.max_abs_diff:.2e}, labels agree on "
                f"{self.label_agreement}/{self.texts} texts ({100 * self.agreement:.2f} %)"
            )
        return (
            f"{self.name}: max |P(label) - torch| = {self.max_abs_diff:.2e}, decisions agree on "
            f"{self.label_agreement}/{self.decisions} (text, label) pairs ({100 * self.agreement:.2f} %)"
        )


def parity(
    reference: InferenceBackend,
    candidate: InferenceBackend,
    texts: Sequence[str],
    threshold: float | Sequence[float],
    name: str,
    pairs: Sequence[str] | None = None,
) -> Parity:
    """Compare ``candidate``'s probabilities and thresholded labels with ``reference``'s on ``texts`` (text pairs
    with ``pairs``). A multi-label model (``threshold``: one per label) is compared on every label's probability,
    each decided at its own threshold."""
    if isinstance(threshold, Sequence):  # a multi-label model: sigmoid of each of its K logits
        import torch

        expected, got = (
            torch.sigmoid(torch.from_numpy(b.logits(texts, pairs=pairs)).double()).numpy()
            for b in (reference, candidate)
        )
        cuts = np.asarray(threshold, dtype=np.float64)
    elif pairs is not None:
        expected, got = (np.array(b.positive_probabilities(texts, pairs=pairs)) for b in (reference, candidate))
        cuts = np.float64(threshold)
    else:
        expected = np.array(reference.positive_probabilities(texts))
        got = np.array(candidate.positive_probabilities(texts))
        cuts = threshold
    same = int(np.sum((expected >= cuts) == (got >= cuts)))
    diff = float(np.max(np.abs(expected - got))) if len(texts) else 0.0
    return Parity(name, len(texts), diff, same, labels=len(threshold) if isinstance(threshold, Sequence) else 1)


def random_texts(tokenizer, n: int = 256, seed: int = 0, max_tokens: int = 256) -> list[str]:
    """``n`` texts of random vocabulary tokens, 1 to ``max_tokens`` long, for a parity check without data."""
    rng = random.Random(seed)
    # whole-word pieces only: no special tokens, [unused*] slots or ##continuations
    vocab = [i for t, i in tokenizer.get_vocab().items() if not t.startswith(("[", "##", "<"))]
    vocab.sort()
    lengths = [max(1, int(max_tokens * (k + 1) / n)) for k in range(n)]
    return [tokenizer.decode(rng.choices(vocab, k=length), skip_special_tokens=True) for length in lengths]
