"""Recipe arguments of pretraining (the keys of ``recipes/pretrain/*.yaml``), after run_mlm.py and run_clm.py."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, fields

from ..arguments import ModelSourceArguments
from ..errors import RecipeError
from ..validation import PROBABILITY, at_least, between, check_ranges

logger = logging.getLogger("hfsent")
# The model_types each objective trains: masked LM needs an encoder, causal LM a decoder.
OBJECTIVE_MODEL_TYPES = {"mlm": ("bert",), "causal_lm": ("gpt2", "qwen2", "llama")}
# Data keys that only mean something for masked LM: refused with causal_lm (they change the data) ...
MLM_ONLY_KEYS = ("whole_word_mask", "line_by_line", "pad_to_max_length")
# ... or ignored with a warning (they only set how tokens are masked).
MLM_MASKING_KEYS = ("mlm_probability", "mask_replace_prob", "random_replace_prob")


@dataclass
class PretrainModelArguments(ModelSourceArguments):
    """What is pretrained (``objective``) and where the model starts: a checkpoint to continue, or a config."""

    objective: str = field(
        default="mlm",
        metadata={
            "help": "'mlm': masked language modelling of a BERT encoder (model_type bert); 'causal_lm': next-token "
            "prediction of a decoder (model_type gpt2, qwen2 or llama; packed blocks of max_length tokens, the "
            "tokenizer's EOS (or [SEP]) between documents; output loads with AutoModelForCausalLM). With causal_lm, "
            "whole_word_mask, line_by_line and pad_to_max_length are refused and mlm_probability, "
            "mask_replace_prob and random_replace_prob are ignored with a warning.",
            "choices": list(OBJECTIVE_MODEL_TYPES),
        },
    )
    cache_dir: str | None = field(default=None, metadata={"help": "Where Hub downloads are cached."})
    evaluate_before_training: bool = field(
        default=False,
        metadata={"help": "Also evaluate the starting model (init_eval_* in all_results.json)."},
    )

    @property
    def accepted_model_types(self) -> tuple[str, ...]:  # type: ignore[override]
        """The ``model_type``\\s the recipe's ``objective`` trains (the first: a from-scratch default)."""
        return OBJECTIVE_MODEL_TYPES[self.objective]

    @property
    def model_type_context(self) -> str:
        """Why those model types, for the error naming a checkpoint of another type."""
        others = "; ".join(
            f"objective {name!r} takes {', '.join(types)}"
            for name, types in OBJECTIVE_MODEL_TYPES.items()
            if name != self.objective
        )
        return f"for objective {self.objective!r} ({others})"

    @property
    def causal(self) -> bool:
        """Whether the objective is next-token prediction (a decoder)."""
        return self.objective == "causal_lm"

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVE_MODEL_TYPES:
            raise RecipeError(
                f"invalid value for 'objective': {self.objective!r}; expected one of {', '.join(OBJECTIVE_MODEL_TYPES)}"
            )
        if not self.tokenizer_source():
            raise RecipeError(
                "no tokenizer: set tokenizer_name (from scratch) or model_name_or_path (continued pretraining)"
            )


@dataclass
class PretrainDataArguments:
    """The text corpus and how it becomes masked training sequences."""

    dataset_name: list[str] = field(
        default_factory=list,
        metadata={
            "help": "One or several sources: local text/CSV/TSV/JSON(L)/Parquet files, folders, globs or Hub ids."
        },
    )
    dataset_config_name: list[str] = field(
        default_factory=list,
        metadata={"help": "Hub dataset config: one for all sources, or one per source ('' for none)."},
    )
    dataset_split: str = field(default="train", metadata={"help": "Split of Hub datasets to read."})
    text_column: list[str] = field(
        default_factory=lambda: ["text"],
        metadata={"help": "Text column: one name for all sources, or one per source (text files have 'text')."},
    )
    exclude_texts: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Files (or Hub datasets) of texts to keep out of the corpus, such as the test split you will "
            "evaluate on: a document equal to one of them, or containing one of exclude_min_chars characters or "
            "more, is dropped (compared without whitespace); the counts go to all_results.json."
        },
    )
    exclude_text_column: str = field(
        default="review",
        metadata={"help": "Column of the exclude_texts files holding the texts (text files: each line)."},
    )
    exclude_min_chars: int = field(
        default=10,
        metadata={
            "help": "Shortest excluded text also looked for inside longer documents (shorter: whole documents only).",
            "accepts": at_least(1),
        },
    )
    source_mixing: str = field(
        default="concatenate",
        metadata={
            "help": "'concatenate' the sources, or 'interleave' them (with source_probabilities).",
            "choices": ["concatenate", "interleave"],
        },
    )
    source_probabilities: list[float] | None = field(
        default=None,
        metadata={
            "help": "With source_mixing=interleave: sampling probability of each source.",
            "accepts": PROBABILITY,
        },
    )
    validation_split_percentage: float = field(
        default=5.0,
        metadata={
            "help": "Percentage of each source's documents held out for evaluation; 0 for none.",
            "accepts": between(0, 100, high_open=True),
        },
    )
    max_length: int = field(
        default=128,
        metadata={
            "help": "Tokens per training sequence (with masked LM, [CLS] included; max_seq_length: its deprecated "
            "old name).",
            "aliases": ["--max_seq_length"],
            "accepts": at_least(3),
        },
    )
    line_by_line: bool = field(
        default=False,
        metadata={"help": "One sequence per document (truncated) instead of packing documents into full blocks."},
    )
    pad_to_max_length: bool = field(
        default=False,
        metadata={"help": "With line_by_line: pad every sequence to max_length (else to the batch's longest)."},
    )
    mlm_probability: float = field(
        default=0.15,
        metadata={
            "help": "Share of tokens (or words) selected.",
            "accepts": between(0, 1, low_open=True, high_open=True),
        },
    )
    mask_replace_prob: float = field(
        default=0.8, metadata={"help": "Of the selected: share replaced by [MASK].", "accepts": PROBABILITY}
    )
    random_replace_prob: float = field(
        default=0.1, metadata={"help": "Of the selected: share replaced at random.", "accepts": PROBABILITY}
    )
    whole_word_mask: bool = field(
        default=False,
        metadata={"help": "Chinese whole-word masking: words from jieba; all characters of a chosen word together."},
    )
    max_train_samples: int | None = field(
        default=None, metadata={"help": "Keep at most this many train sequences.", "accepts": at_least(1)}
    )
    max_eval_samples: int | None = field(
        default=None, metadata={"help": "Keep at most this many eval sequences.", "accepts": at_least(1)}
    )
    preprocessing_num_workers: int | None = field(
        default=None, metadata={"help": "Processes for tokenization.", "accepts": at_least(1)}
    )
    overwrite_cache: bool = field(default=False, metadata={"help": "Recompute cached tokenization."})

    def __post_init__(self) -> None:
        check_ranges(self)
        if isinstance(self.dataset_name, str):
            self.dataset_name = [self.dataset_name]
        if isinstance(self.text_column, str):
            self.text_column = [self.text_column]
        if isinstance(self.dataset_config_name, str):
            self.dataset_config_name = [self.dataset_config_name]
        if isinstance(self.exclude_texts, str):
            self.exclude_texts = [self.exclude_texts]
        if not self.dataset_name:
            raise RecipeError("dataset_name is empty: name at least one corpus file, folder or Hub dataset")
        n = len(self.dataset_name)
        for key in ("text_column", "dataset_config_name"):
            values = getattr(self, key)
            if len(values) not in (0, 1, n) or (key == "text_column" and not values):
                raise RecipeError(f"{key} must hold one value or one per source ({n}), got {values!r}")
        if self.source_probabilities is not None:
            if self.source_mixing != "interleave":
                raise RecipeError("source_probabilities needs source_mixing: interleave")
            if len(self.source_probabilities) != n or abs(sum(self.source_probabilities) - 1.0) > 1e-6:
                raise RecipeError(
                    f"source_probabilities must be {n} numbers summing to 1, got {self.source_probabilities}"
                )
        replace = (self.mask_replace_prob, self.random_replace_prob)
        if sum(replace) > 1:
            raise RecipeError(f"mask_replace_prob and random_replace_prob must be >= 0 with sum <= 1, got {replace}")
        if self.pad_to_max_length and not self.line_by_line:
            raise RecipeError("pad_to_max_length only applies with line_by_line (packed blocks are full already)")

    def per_source(self, key: str) -> list[str | None]:
        """``text_column`` or ``dataset_config_name`` spelled out for each source (None: not set)."""
        values = getattr(self, key)
        if not values:
            return [None] * len(self.dataset_name)
        if len(values) == 1:
            return list(values) * len(self.dataset_name)
        return list(values)


def check_objective(model_args: PretrainModelArguments, data_args: PretrainDataArguments) -> None:
    """With ``objective: causal_lm``: `RecipeError` for a masked-LM-only data key that is set (it would change the
    data), a warning for a masking key that differs from its default (ignored)."""
    if not model_args.causal:
        return
    defaults = {f.name: f.default for f in fields(PretrainDataArguments)}
    for key in MLM_ONLY_KEYS:
        if getattr(data_args, key) != defaults[key]:
            raise RecipeError(
                f"invalid value for {key!r}: {getattr(data_args, key)!r} applies to objective 'mlm' only; "
                f"objective 'causal_lm' packs documents into full blocks (leave {key} unset)"
            )
    ignored = [key for key in MLM_MASKING_KEYS if getattr(data_args, key) != defaults[key]]
    if ignored:
        logger.warning("objective 'causal_lm' masks nothing: %s ignored", ", ".join(ignored))


__all__ = ["OBJECTIVE_MODEL_TYPES", "PretrainDataArguments", "PretrainModelArguments", "check_objective"]
