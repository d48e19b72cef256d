"""The fine-tuning model and Trainer: tokenizer, `HfSentModel` (from a checkpoint or a config), LoRA, and
`HfSentTrainer` (the Trainer with hfsent's length-grouped, label-stratified steps)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase, Trainer, TrainingArguments
from transformers.pytorch_utils import Conv1D
from transformers.trainer_utils import has_length

from ..arguments import build_model as build_recipe_model
from ..configuration_hfsent import MULTI_LABEL, HfSentConfig
from ..datasource import column_values
from ..errors import RecipeError
from ..modeling_hfsent import HfSentModel, give_default_mode
from ..outputs import TOKENIZER_DIR
from ..registration import LORA_TARGETS
from ..tokenizer import load_recipe_tokenizer, load_tokenizer, train_wordpiece_tokenizer
from .arguments import DEFAULT_LORA_TARGETS, ModelArguments
from .data import LABELS_COLUMN
from .sampling import GROUP_BY_LENGTH_STRATIFIED, LengthGroupedStepSampler

logger = logging.getLogger("hfsent")
# the layers LoRA adapts: linear ones (GPT-2's are transformers' Conv1D) and embeddings
LORA_LAYER_TYPES = (torch.nn.Linear, torch.nn.Embedding, Conv1D)


def build_tokenizer(
    model_args: ModelArguments,
    train_texts: Iterable[str],
    training_args: TrainingArguments | None = None,
    resume: str | None = None,
) -> PreTrainedTokenizerBase:
    """Load the tokenizer, or train one on ``train_texts`` (the training split) when ``tokenizer_vocab_size`` is set.

    A trained tokenizer is trained once: by the main process, which saves it to ``output_dir/.tokenizer``
    for the other ranks; a resumed run (``resume``: its checkpoint) reuses the tokenizer saved there.
    """
    if not model_args.tokenizer_vocab_size:
        return load_recipe_tokenizer(model_args.tokenizer_source(), trust_remote_code=model_args.trust_remote_code)
    if resume is not None and (Path(resume) / "tokenizer_config.json").is_file():
        logger.info("Resuming: reusing the tokenizer trained for this run (%s)", resume)
        return load_tokenizer(resume)

    def train() -> PreTrainedTokenizerBase:
        logger.info("Training a WordPiece tokenizer (vocab %d) on the train split", model_args.tokenizer_vocab_size)
        return train_wordpiece_tokenizer(train_texts, vocab_size=model_args.tokenizer_vocab_size)

    if training_args is None or training_args.world_size == 1:
        return train()
    shared = Path(training_args.output_dir) / TOKENIZER_DIR
    with training_args.main_process_first(desc="training the tokenizer"):
        if training_args.local_process_index == 0:
            tokenizer = train()
            tokenizer.save_pretrained(shared)
        else:
            tokenizer = load_tokenizer(str(shared))
    return tokenizer


def _pos_weight(model_args: ModelArguments, train_labels: list) -> float | list[float] | None:
    """The recipe's ``pos_weight``: a number, or with ``auto`` n_negative / n_positive (one per label of a
    multi-label model, whose ``train_labels`` are 0/1 lists)."""
    if model_args.pos_weight is None:
        return None
    if model_args.pos_weight == "auto":
        labels = np.asarray(train_labels, dtype=np.float64)
        positives = labels.sum(axis=0)
        weights = (len(labels) - positives) / np.maximum(positives, 1)
        return weights.tolist() if labels.ndim == 2 else float(weights)
    return float(model_args.pos_weight)  # a number > 0: checked by ModelArguments


def check_checkpoint_labels(
    model_name_or_path: str, label_names: list[str] | None, trust_remote_code: bool, text_pairs: bool = False
) -> None:
    """Raise `RecipeError` when ``model_name_or_path`` is an hfsent model whose labels or inputs differ from ours.

    A binary recipe (``label_names`` None) continues a binary model only; a multi-label one a model with the same
    labels in the same order; a text-pair recipe (``text_pairs``) a text-pair model, a single-text one a single-text
    model. A BERT encoder (any other model type) gets a new head: nothing to compare.
    """
    from transformers import PretrainedConfig

    try:
        config, _ = PretrainedConfig.get_config_dict(model_name_or_path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError):
        return  # from_pretrained reports it
    if config.get("model_type") != "hfsent":
        return
    loaded = HfSentConfig.from_dict(config)
    ours = "binary (neg/pos)" if label_names is None else f"{len(label_names)} labels {label_names}"
    theirs = "binary (neg/pos)" if loaded.is_binary else f"{loaded.num_labels} labels {loaded.label_names}"
    if (label_names is None) != loaded.is_binary or (label_names is not None and label_names != loaded.label_names):
        raise RecipeError(
            f"model_name_or_path {model_name_or_path!r} is an hfsent model with {theirs}, but the recipe's "
            f"label_column gives {ours}: start from its backbone's checkpoint (not an hfsent model), or use its labels"
        )
    if bool(getattr(loaded, "text_pairs", False)) != text_pairs:
        kinds = {True: "text pairs (text_pair_column set)", False: "single texts (no text_pair_column)"}
        raise RecipeError(
            f"model_name_or_path {model_name_or_path!r} is an hfsent model of {kinds[not text_pairs]}, but the "
            f"recipe classifies {kinds[text_pairs]}: start from its backbone's checkpoint (not an hfsent model), or "
            "classify what that model does"
        )


def build_model(
    model_args: ModelArguments,
    tokenizer: PreTrainedTokenizerBase,
    train_labels: list,
    max_length: int,
    label_names: list[str] | None = None,
    text_pairs: bool = False,
) -> HfSentModel:
    """An `HfSentModel` from a checkpoint (encoder loaded, head new) or from a config (random init), with the
    recipe's head settings (`hfsent.arguments.build_model`).

    ``label_names`` (a multi-label recipe's labels) give a head with one logit per label; ``text_pairs`` (the recipe
    has a text_pair_column) a model of text pairs.
    """
    head = {
        **({"pooling": model_args.pooling} if model_args.pooling is not None else {}),
        "classifier_dropout": model_args.classifier_dropout,
        "pos_weight": _pos_weight(model_args, train_labels),
    }
    if text_pairs:
        head["text_pairs"] = True  # inference asks for (text, text_pair) pairs
    if label_names is not None:
        head["problem_type"] = MULTI_LABEL
        head["id2label"] = dict(enumerate(label_names))
        head["label2id"] = {name: i for i, name in enumerate(label_names)}
    if model_args.model_name_or_path:
        check_checkpoint_labels(model_args.model_name_or_path, label_names, model_args.trust_remote_code, text_pairs)
    model = build_recipe_model(
        model_args, HfSentModel, tokenizer, max_length, trust_remote_code=model_args.trust_remote_code, **head
    )
    if model.config.pad_token_id is None:  # a decoder's: pools inputs that come without an attention mask
        model.config.pad_token_id = tokenizer.pad_token_id
    if model_args.pooling is None:  # the backbone's default: the card shows it (not as a change); the recipe keeps null
        model_args.filled_in = {**getattr(model_args, "filled_in", {}), "pooling": model.config.pooling}
    return model


def apply_lora(model: HfSentModel, model_args: ModelArguments):
    """Wrap the backbone with LoRA adapters (peft); the classifier head stays fully trainable.

    The recipe's default ``lora_target_modules`` (BERT's names) becomes the same layers of another backbone
    (`hfsent.registration.LORA_TARGETS`), written back into ``model_args`` for the card.
    """
    from peft import LoraConfig, get_peft_model

    if list(model_args.lora_target_modules) == list(DEFAULT_LORA_TARGETS):
        model_args.lora_target_modules = list(LORA_TARGETS[model.config.backbone_type])
    check_lora_targets(model, model_args.lora_target_modules)
    config = LoraConfig(
        r=model_args.lora_r,
        lora_alpha=model_args.lora_alpha,
        lora_dropout=model_args.lora_dropout,
        target_modules=model_args.lora_target_modules,
        modules_to_save=["classifier"],
    )
    peft_model = get_peft_model(model, config)
    trainable, total = peft_model.get_nb_trainable_parameters()
    logger.info("LoRA: trainable params %d of %d (%.2f%%)", trainable, total, 100 * trainable / total)
    return peft_model


def check_lora_targets(model: HfSentModel, targets: Iterable[str]) -> None:
    """`RecipeError` naming each ``lora_target_modules`` entry that matches no layer of the backbone (peft matches a
    module whose name is the entry or ends with ``.<entry>``), with the layer names it has."""
    names = [name for name, module in model.named_modules() if name and not name.startswith("classifier")]
    unmatched = [t for t in targets if not any(n == t or n.endswith("." + t) for n in names)]
    if unmatched:
        layers = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, LORA_LAYER_TYPES)})
        raise RecipeError(
            f"invalid value for 'lora_target_modules': {unmatched[0]!r} names no layer of the "
            f"{model.config.backbone_type} backbone; its layers: {', '.join(layers)}"
        )


class HfSentTrainer(Trainer):
    """`Trainer` that also knows ``train_sampling_strategy: group_by_length_stratified``
    (`hfsent.finetune.sampling`), and saves every weight file with the default file mode."""

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        """`Trainer.save_model` (checkpoints too); the weights get the default file mode (`give_default_mode`):
        a LoRA run's ``adapter_model.safetensors`` is written by peft, not by `HfSentModel.save_pretrained`."""
        super().save_model(output_dir, _internal_call=_internal_call)
        if self.args.should_save:
            give_default_mode(output_dir if output_dir is not None else self.args.output_dir)

    def _get_train_sampler(self, train_dataset=None) -> torch.utils.data.Sampler | None:
        dataset = self.train_dataset if train_dataset is None else train_dataset
        if (
            self.args.train_sampling_strategy != GROUP_BY_LENGTH_STRATIFIED
            or dataset is None
            or not has_length(dataset)
        ):
            return super()._get_train_sampler(train_dataset)
        if self.args.length_column_name in dataset.column_names:
            lengths = column_values(dataset, self.args.length_column_name)
        else:
            lengths = [len(ids) for ids in column_values(dataset, "input_ids")]
        labels = column_values(dataset, LABELS_COLUMN) if LABELS_COLUMN in dataset.column_names else None
        # binary: each step keeps the label mix; multi-label rows (lists) are grouped by length only
        labels = None if labels is None or any(isinstance(y, list) for y in labels[:1]) else [int(y) for y in labels]
        step = self.args.train_batch_size * self.args.gradient_accumulation_steps * max(1, self.args.world_size)
        return LengthGroupedStepSampler(
            lengths, step, labels, group_steps=self.args.length_group_steps, seed=self.args.seed
        )


def publishable_model(trainer: Trainer):
    """The trained model as a plain `HfSentModel` (LoRA adapters merged)."""
    model = trainer.accelerator.unwrap_model(trainer.model)
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    return model


__all__ = [
    "HfSentTrainer",
    "apply_lora",
    "build_model",
    "build_tokenizer",
    "check_checkpoint_labels",
    "publishable_model",
]
