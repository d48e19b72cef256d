"""Fine-tuning: a BERT checkpoint (or a config) and labelled reviews in, a measured, publishable hfsent model out.

``hfsent train recipe.yaml [--key value ...]`` (or ``accelerate launch recipes/finetune.py ...``) runs `finetune`:
`arguments` (the recipe's keys) -> `data` (load, clean, split, tokenize) -> `trainer` (tokenizer, model, LoRA,
`HfSentTrainer` with the `sampling` of length-grouped steps) -> `metrics` (threshold tuning, test metrics) and
`plots` -> the output directory (`run`).
"""

from .arguments import DataArguments, HfSentTrainingArguments, ModelArguments
from .data import DataError
from .run import finetune, format_results
from .trainer import HfSentTrainer, apply_lora, build_model, build_tokenizer

__all__ = [
    "DataArguments",
    "DataError",
    "HfSentTrainer",
    "HfSentTrainingArguments",
    "ModelArguments",
    "apply_lora",
    "build_model",
    "build_tokenizer",
    "finetune",
    "format_results",
]
