"""The card of a fine-tuned sentiment model: `SentimentModelCardData` (what it says), `ModelCardCallback` (collects
it during ``Trainer.train()`` and writes ``README.md`` into every checkpoint and the output directory, with
``model_card_data.json``) and `card_for_push` (re-rendered with the repo id by ``hfsent push``)."""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCardData
from transformers import TrainerCallback

from ..datasource import BUILTIN_PREFIX
from ..outputs import CARD_DATA_FILE, CARD_FILE, METRICS
from ..recipe import recipe_to_dict
from .common import (
    METRIC_TITLES,
    PLOT_TITLES,
    TEMPLATES_DIR,
    cell,
    dataset_type,
    describe_source,
    detect_language,
    framework_versions,
    is_hub_id,
    is_publishing_key,
    metric_cell,
    model_summary,
    public_value,
    render_card,
    resolve_base_model,
    training_log_rows,
    write_card,
)
from .encoder import ENCODER_CARD_KIND, card_sha256, encoder_card_for_push

logger = logging.getLogger("hfsent")

SENTIMENT_TEMPLATE = TEMPLATES_DIR / "sentiment_model_card.md"
# Recipe keys that are bookkeeping (where to write, how to log, which device), not hyperparameters.
NOT_HYPERPARAMETERS = frozenset(
    {
        "output_dir", "run_name", "report_to", "disable_tqdm", "log_level", "log_level_replica", "logging_dir",
        "logging_steps", "logging_strategy", "logging_first_step", "logging_nan_inf_filter", "save_steps",
        "save_strategy", "save_total_limit", "save_only_model", "resume_from_checkpoint", "push_to_hub",
        "hub_model_id", "hub_strategy", "hub_private_repo", "hub_always_push", "hub_revision", "use_cpu",
        "dataloader_num_workers", "dataloader_pin_memory", "dataloader_persistent_workers",
        "preprocessing_num_workers", "text_column", "label_column", "trust_remote_code", "accelerator_config",
    }
)  # fmt: skip
WIDGET_EXAMPLES_PER_LABEL = 2
WIDGET_MAX_CHARS = 120


@dataclass
class SentimentModelCardData:
    """What the card of a fine-tuned hfsent sentiment model says (collected in training, see `ModelCardCallback`).

    ``base_model`` and ``dataset_id`` are Hub ids or None: local checkpoints and data are described in the text
    by their name only. ``results`` is the run's ``all_results.json`` (empty for intermediate checkpoints).
    """

    model_id: str | None = None
    model_name: str | None = None
    output_name: str = "hfsent"
    language: list[str] | None = None
    license: str | None = "apache-2.0"
    base_model: str | None = None
    base_model_text: str = "a BERT encoder initialised from scratch"
    dataset_id: str | None = None
    dataset_config: str | None = None
    dataset_name: str = "unknown"
    dataset_type: str | None = None  # model-index dataset.type (see `dataset_type`); None: from dataset_name
    dataset_text: str = ""
    text_column: str = "review"
    label_column: str = "label"
    max_length: int | None = None
    deduplicated: bool = False
    split_sizes: dict[str, int] = field(default_factory=dict)
    positive_share: dict[str, float] = field(default_factory=dict)
    widget: list[dict[str, str]] = field(default_factory=list)
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    all_hyperparameters: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    log_history: list[dict[str, Any]] = field(default_factory=list)
    results: dict[str, Any] = field(default_factory=dict)
    threshold_objective: str = "f1"
    checkpoint_step: int | None = None
    plots: list[str] = field(default_factory=list)
    framework_versions: dict[str, str] = field(default_factory=dict)
    tags: list[str] = field(default_factory=lambda: ["hfsent", "sentiment-analysis", "bert", "custom_code"])
    card_sha256: str | None = None  # of the README.md written from this data: tells an edited card

    # -- persistence ------------------------------------------------------------------------------------------

    def to_json(self) -> str:
        """The data as JSON (``model_card_data.json``)."""
        return json.dumps(dataclasses.asdict(self), indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def load(cls, directory: str | os.PathLike) -> SentimentModelCardData:
        """Read ``directory/model_card_data.json`` (unknown keys are ignored)."""
        raw = json.loads((Path(directory) / CARD_DATA_FILE).read_text(encoding="utf-8"))
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in known})

    # -- metadata ---------------------------------------------------------------------------------------------

    @property
    def title(self) -> str:
        """The model's name: ``model_name``, else the repo's name, else the output directory's."""
        return self.model_name or (self.model_id.split("/")[-1] if self.model_id else self.output_name)

    @property
    def threshold_moved(self) -> bool:
        """Whether the run's ``threshold_tuning`` moved the decision threshold away from 0.5 (the default keeps it)."""
        threshold = self.results.get("threshold", 0.5)
        return any(t != 0.5 for t in threshold) if isinstance(threshold, list) else threshold != 0.5

    def label_rows(self) -> list[list[Any]]:
        """A multi-label model's per-label table: id, label, test F1, precision, recall, ROC-AUC, threshold."""
        names = self.results.get("labels") or []
        threshold = self.results.get("threshold", 0.5)
        cuts = threshold if isinstance(threshold, list) else [threshold] * len(names)
        prefix = "test_tuned" if self.threshold_moved else "test"
        return [
            [i, name, *(metric_cell(self.results.get(f"{prefix}_{m}/{name}")) for m in PER_LABEL_METRICS), f"{t:.3f}"]
            for i, (name, t) in enumerate(zip(names, cuts, strict=True))
        ]

    def label_eval_results(self, common: dict[str, Any]) -> list[EvalResult]:
        """A multi-label model's ``model-index`` entries per label and metric (``metric_config``: the label)."""
        results = []
        for name in self.results.get("labels") or []:
            for metric in PER_LABEL_METRICS:
                value = self.results.get(f"test_{metric}/{name}")
                if value is not None and value == value:  # NaN (one class in test) has no entry
                    results.append(
                        EvalResult(
                            metric_type=metric,
                            metric_name=f"{METRIC_TITLES[metric]} ({name})",
                            metric_config=name,
                            metric_value=value,
                            **common,
                        )
                    )
        return results

    def eval_results(self) -> list[EvalResult]:
        """The test metrics as `EvalResult`s for the ``model-index``: one per metric, as the Hub shows them.

        At the pipeline's decision rule (threshold 0.5) each metric has its own type (``accuracy``, ``f1``, ...);
        at the tuned threshold (what `hfsent.predict`, the CLI, server and handler decide at) the metrics are
        separate ones, ``<metric>_tuned_threshold``, named with the threshold (only where it is not 0.5). ROC-AUC
        does not depend on a threshold and is reported once.
        """
        if "test_accuracy" not in self.results:
            return []
        common = dict(
            task_type="text-classification",
            task_name="Sentiment classification",
            dataset_type=self.dataset_id or self.dataset_type or dataset_type(self.dataset_name),
            dataset_name=self.dataset_name,
            dataset_config=self.dataset_config,
            dataset_split="test",
        )
        results = [
            EvalResult(metric_type=name, metric_name=METRIC_TITLES[name], metric_value=self.results[key], **common)
            for name in METRICS
            if (key := f"test_{name}") in self.results
        ]
        if self.results.get("labels"):  # multi-label: the averages above, then every label's own
            return [r for r in results if r.metric_value == r.metric_value] + self.label_eval_results(common)
        threshold = self.results.get("threshold")
        if self.threshold_moved:  # at 0.5 they would repeat the entries above
            tuned = {"threshold": threshold, "tuned_on": "validation", "objective": self.threshold_objective}
            results += [
                EvalResult(
                    metric_type=f"{name}_tuned_threshold",
                    metric_name=f"{METRIC_TITLES[name]} (tuned threshold {threshold:.3f})",
                    metric_value=self.results[key],
                    metric_args=tuned,
                    **common,
                )
                for name in METRICS
                if name != "roc_auc" and (key := f"test_tuned_{name}") in self.results
            ]
        return results

    def card_data(self) -> ModelCardData:
        """The card's YAML metadata."""
        eval_results = self.eval_results()
        return ModelCardData(
            language=self.language,
            license=self.license,
            library_name="transformers",
            tags=list(self.tags),
            datasets=[self.dataset_id] if self.dataset_id else None,
            metrics=list(METRICS),
            base_model=self.base_model,
            pipeline_tag="text-classification",
            widget=[{"text": w["text"], "example_title": w["title"]} for w in self.widget] or None,
            eval_results=eval_results or None,
            model_name=self.title if eval_results else None,
        )

    # -- rendering --------------------------------------------------------------------------------------------

    def render(self, model_id: str | None = None) -> str:
        """The card (YAML metadata + Markdown); ``model_id`` (a Hub repo id) overrides the one recorded."""
        data = dataclasses.replace(self, model_id=model_id or self.model_id)
        return render_card(SENTIMENT_TEMPLATE, data.card_data(), data._context())

    def _context(self) -> dict[str, Any]:
        results = self.results
        threshold = results.get("threshold", 0.5)
        tuned = self.threshold_moved
        evaluation = []
        if "test_accuracy" in results:
            for name in METRICS:
                evaluation.append(
                    [
                        METRIC_TITLES[name],
                        metric_cell(results.get(f"test_{name}")),
                        metric_cell(results.get(f"test_tuned_{name}")),
                        metric_cell(results.get(f"eval_{name}")),
                    ]
                )
        examples = [w["text"] for w in self.widget[:2]] or ["物流很快，质量很好", "用了两天就坏了"]
        return {
            "title": self.title,
            "repo_id": self.model_id or f"your-username/{self.output_name}",
            "published": self.model_id is not None,
            "base_model_text": self.base_model_text,
            "dataset_text": self.dataset_text,
            "language_text": {"zh": "Chinese", "en": "English"}.get((self.language or [""])[0], "the training data's"),
            "text_column": self.text_column,
            "label_column": self.label_column,
            "max_length": self.max_length,
            "deduplicated": self.deduplicated,
            "checkpoint_step": self.checkpoint_step,
            "threshold": "per label" if isinstance(threshold, list) else f"{threshold:.3f}",
            "label_rows": self.label_rows(),
            "threshold_tuned": tuned,
            "threshold_objective": self.threshold_objective,
            "test_samples": self.split_sizes.get("test"),
            "headline": evaluation and {"accuracy": evaluation[0][1], "roc_auc": evaluation[4][1]},
            "evaluation": evaluation,
            "test_loss": metric_cell(results.get("test_loss")) if "test_loss" in results else None,
            "splits": [
                [name, self.split_sizes[name], f"{100 * self.positive_share.get(name, 0):.1f}%"]
                for name in ("train", "validation", "test")
                if name in self.split_sizes
            ],
            "summary": [[key, cell(value)] for key, value in self.summary.items()],
            "summary_dict": self.summary,
            "hyperparameters": [[key, cell(value)] for key, value in self.hyperparameters.items()],
            "all_hyperparameters": [[key, cell(value)] for key, value in self.all_hyperparameters.items()],
            "training_rows": training_log_rows(self.log_history),
            "metric_titles": [METRIC_TITLES[name] for name in METRICS],
            "plots": [[PLOT_TITLES.get(name, name), name] for name in self.plots],
            "examples_json": json.dumps(examples, ensure_ascii=False),
            "framework_versions": list(self.framework_versions.items()),
        }


def _default_recipe(model_args, data_args, training_args) -> dict[str, Any]:
    """Every recipe key's default value (``{}`` if they cannot be built safely)."""
    from accelerate.state import PartialState

    # Building TrainingArguments resets accelerate's process state unless told to reuse it; a reset would make
    # every DDP rank believe it is the main process. Reuse the run's state (it exists once the args are parsed).
    if not PartialState._shared_state:
        return {}
    try:
        default_training = type(training_args)(
            output_dir=training_args.output_dir, accelerator_config={"use_configured_state": True}
        )
        return recipe_to_dict(type(model_args)(), type(data_args)(), default_training)
    except Exception as err:  # list every setting rather than fail
        logger.warning("model card: could not build the default arguments (%s); listing all settings", err)
        return {}


PER_LABEL_METRICS = ("f1", "precision", "recall", "roc_auc")
# Recipe keys of features a run may not use (many labels, text pairs): listed in the card only when set.
SHOWN_WHEN_SET = ("label_list", "text_pair_column", "truncation")


def collect_finetuning_card_data(model_args, data_args, training_args, splits) -> SentimentModelCardData:
    """Card data known before training: base model, data, splits, label balance, widget examples, hyperparameters.

    ``model_args``/``data_args``/``training_args`` are `hfsent.finetune`'s recipe dataclasses; ``splits`` the
    cleaned ``DatasetDict`` (train/validation/test, with a ``labels`` column).
    """

    dataset_name = data_args.dataset_name
    dataset_id = dataset_name if is_hub_id(dataset_name) else None
    if dataset_name.startswith(BUILTIN_PREFIX):
        dataset_text = f"the labelled reviews shipped with the `{dataset_name.split(':', 1)[1]}` package"
    else:
        dataset_text = describe_source(dataset_name, dataset_id, "dataset")
    base_model = resolve_base_model(model_args.model_name_or_path)
    if model_args.model_name_or_path:
        base_model_text = describe_source(model_args.model_name_or_path, base_model, "checkpoint")
    else:
        base_model_text = "a BERT encoder initialised from scratch"

    resolved = recipe_to_dict(model_args, data_args, training_args)
    defaults = _default_recipe(model_args, data_args, training_args)
    # keys the run filled in with the model's own default (``pooling`` by backbone): shown, not as changes
    filled_in = {k: v for k, v in getattr(model_args, "filled_in", {}).items() if k in resolved}
    resolved.update(filled_in)
    defaults.update(filled_in)
    non_default = {
        k: public_value(v)
        for k, v in resolved.items()
        if k not in NOT_HYPERPARAMETERS and not is_publishing_key(k) and (k not in defaults or defaults[k] != v)
    }

    labels = {name: list(ds["labels"]) for name, ds in splits.items()}
    widget_split = next((name for name in ("test", "validation", "train") if name in splits), None)
    widget = []
    if widget_split is not None:
        texts = splits[widget_split][data_args.text_column]
        for label, title in ((1, "Positive"), (0, "Negative")):
            picked = [
                t
                for t, y in zip(texts, labels[widget_split], strict=True)
                if y == label and len(t.strip()) <= WIDGET_MAX_CHARS
            ][:WIDGET_EXAMPLES_PER_LABEL]
            widget += [{"text": t.strip(), "title": f"{title} ({widget_split} example)"} for t in picked]
        widget.sort(key=lambda w: w["title"].startswith("Negative"))
    peft = ("peft",) if getattr(model_args, "use_lora", False) else ()
    return SentimentModelCardData(
        model_id=training_args.hub_model_id if is_hub_id(training_args.hub_model_id) else None,
        output_name=Path(training_args.output_dir).name or "hfsent",
        language=detect_language(splits["train"][data_args.text_column]),
        base_model=base_model,
        base_model_text=base_model_text,
        dataset_id=dataset_id,
        dataset_config=data_args.dataset_config_name if dataset_id else None,
        dataset_name=dataset_id or Path(dataset_name).name,
        dataset_type=dataset_type(dataset_name),
        dataset_text=dataset_text,
        text_column=data_args.text_column,
        label_column=data_args.label_column,
        max_length=data_args.max_length,
        deduplicated=data_args.deduplicate,
        split_sizes={name: len(y) for name, y in labels.items()},
        positive_share={name: sum(y) / len(y) for name, y in labels.items() if y and not isinstance(y[0], list)},
        widget=widget,
        hyperparameters=non_default,
        all_hyperparameters={
            k: public_value(v)
            for k, v in resolved.items()
            if not is_publishing_key(k) and not (k in SHOWN_WHEN_SET and v is None)
        },
        threshold_objective=getattr(training_args, "threshold_objective", "f1"),
        framework_versions=framework_versions(peft),
    )


class ModelCardCallback(TrainerCallback):
    """Writes a model card into every checkpoint the Trainer saves, and (`save`) into the final output.

    Built with the data known before training (`collect_finetuning_card_data`); adds the training log, the
    architecture and, at the end, the results. Never raises: a card that cannot be rendered is a warning.
    """

    def __init__(self, data: SentimentModelCardData) -> None:
        self.data = data
        self.log_history: list[dict[str, Any]] = []

    @classmethod
    def for_finetuning(cls, model_args, data_args, training_args, splits) -> ModelCardCallback:
        """A callback for `hfsent.finetune.finetune` (see `collect_finetuning_card_data`); never raises."""
        try:
            return cls(collect_finetuning_card_data(model_args, data_args, training_args, splits))
        except Exception as err:  # a card must never break training
            logger.warning("model card: could not collect the run's data (%s: %s)", type(err).__name__, err)
            return cls(SentimentModelCardData(output_name=Path(training_args.output_dir).name))

    def on_log(self, args, state, control, **kwargs):
        """Keep the Trainer's log history (restored from the checkpoint on resume)."""
        self.log_history = copy.deepcopy(state.log_history)

    def on_save(self, args, state, control, **kwargs):
        """Render the card of the checkpoint just saved (main process only)."""
        if not state.is_world_process_zero:
            return
        self.log_history = copy.deepcopy(state.log_history)
        directory = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if directory.is_dir():
            self._write(directory, dataclasses.replace(self.data, checkpoint_step=state.global_step))

    def save(self, directory: str | os.PathLike, results: Mapping[str, Any]) -> Path | None:
        """Write ``README.md`` and ``model_card_data.json`` for the final model in ``directory``; never raises."""
        data = dataclasses.replace(self.data, results=dict(results))
        return self._write(Path(directory), data, keep_data=True)

    def _write(self, directory: Path, data: SentimentModelCardData, keep_data: bool = False) -> Path | None:
        try:
            data.log_history = self.log_history
            data.summary = {**model_summary(directory), "max_length": data.max_length}
            backbone = data.summary.get("backbone")
            if backbone:  # the card is tagged with the backbone's family, not BERT's
                data.tags = [backbone if tag == "bert" else tag for tag in data.tags]
            data.plots = [name for name in PLOT_TITLES if (directory / name).is_file()]
            card = data.render()
            if keep_data:
                data.card_sha256 = card_sha256(card)
                (directory / CARD_DATA_FILE).write_text(data.to_json(), encoding="utf-8")
            return write_card(directory, card)
        except Exception as err:  # a card must never break training
            logger.warning("could not write the model card into %s: %s: %s", directory, type(err).__name__, err)
            return None


def card_for_push(directory: str | os.PathLike, repo_id: str) -> str | None:
    """The README.md to publish from ``directory`` to ``repo_id``.

    A card that hfsent generated (``model_card_data.json`` present, README.md missing or unedited) is re-rendered
    with the repo id (and the current templates): a fine-tuned model's and a pretrained encoder's alike; an edited
    README.md is kept as is; None when there is no card.
    """
    directory = Path(directory)
    readme = directory / CARD_FILE
    current = readme.read_text(encoding="utf-8") if readme.is_file() else None
    if not (directory / CARD_DATA_FILE).is_file():
        return current
    raw = json.loads((directory / CARD_DATA_FILE).read_text(encoding="utf-8"))
    if raw.get("kind") == ENCODER_CARD_KIND:
        return encoder_card_for_push(directory, raw, current, repo_id)
    data = SentimentModelCardData.load(directory)
    if current is None or card_sha256(current) == data.card_sha256:
        return data.render(model_id=repo_id)
    logger.info("README.md was edited after training: publishing it as is")
    return current


__all__ = [
    "SENTIMENT_TEMPLATE",
    "ModelCardCallback",
    "SentimentModelCardData",
    "card_for_push",
    "collect_finetuning_card_data",
]
