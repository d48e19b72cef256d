"""Recipe arguments of MLM pretraining (the keys of ``recipes/pretrain/*.yaml``), after run_mlm.py."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..arguments import ModelSourceArguments
from ..errors import RecipeError
from ..validation import PROBABILITY, at_least, between, check_ranges


@dataclass
class PretrainModelArguments(ModelSourceArguments):
    """Where the encoder starts: a checkpoint to continue, or a config to build from scratch."""

    cache_dir: str | None = field(default=None, metadata={"help": "Where Hub downloads are cached."})
    evaluate_before_training: bool = field(
        default=False,
        metadata={"help": "Also evaluate the starting model (init_eval_* in all_results.json)."},
    )

    def __post_init__(self) -> None:
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
            "help": "Tokens per training sequence, [CLS] included (max_seq_length: its deprecated old name).",
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


__all__ = ["PretrainDataArguments", "PretrainModelArguments"]
