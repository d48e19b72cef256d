"""MLM pretraining: build an encoder from scratch or adapt one to a domain, for hfsent to fine-tune.

``hfsent pretrain recipe.yaml [--key value ...]`` (or ``accelerate launch recipes/pretrain.py ...``)
runs `run_pretraining`; the output directory is a standard ``BertForMaskedLM`` checkpoint. With
``objective: causal_lm``, a decoder (gpt2, qwen2, llama) learns next-token prediction instead and the output is a
standard ``*ForCausalLM`` checkpoint (see `hfsent.pretrain.causal`).
"""

from .arguments import PretrainDataArguments, PretrainModelArguments
from .causal import causal_lm_tokenizer, evaluate_causal_lm
from .corpus import load_corpus, load_text_source
from .masking import MLMCollator, premask
from .modeling import MaskedOnlyBertForMaskedLM
from .packing import frame_lines, pack_blocks, tokenize_documents, word_starts_from_offsets
from .run import evaluate_mlm, run_pretraining

__all__ = [
    "MLMCollator",
    "MaskedOnlyBertForMaskedLM",
    "PretrainDataArguments",
    "PretrainModelArguments",
    "causal_lm_tokenizer",
    "evaluate_causal_lm",
    "evaluate_mlm",
    "frame_lines",
    "load_corpus",
    "load_text_source",
    "pack_blocks",
    "premask",
    "run_pretraining",
    "tokenize_documents",
    "word_starts_from_offsets",
]
