"""Model cards: the README.md that tells a checkpoint's whole story, rendered offline from data collected in training.

`SentimentModelCardData` holds what the card of a fine-tuned model says (base model, data, splits, label balance,
hyperparameters, training log, metrics, framework versions); `ModelCardCallback` collects it during
``Trainer.train()`` and writes ``README.md`` into every checkpoint and, through `ModelCardCallback.save`, into the
final output directory (with ``model_card_data.json``, from which ``hfsent push`` re-renders the card with the
repo id). Cards are rendered with `huggingface_hub.ModelCard.from_template` from the templates in
``model_card_templates/``; rendering never touches the network, and during training its errors are logged as
warnings, never raised. `render_pretrained_encoder_card` renders the card of an MLM-pretrained encoder.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import logging
import math
import os
import platform
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData
from transformers import TrainerCallback

logger = logging.getLogger("hfsent")

TEMPLATES_DIR = Path(__file__).parent / "model_card_templates"
SENTIMENT_TEMPLATE = TEMPLATES_DIR / "sentiment_model_card.md"
ENCODER_TEMPLATE = TEMPLATES_DIR / "pretrained_encoder_card.md"
CARD_FILE = "README.md"
CARD_DATA_FILE = "model_card_data.json"
METRICS = ("accuracy", "f1", "precision", "recall", "roc_auc")
METRIC_TITLES = {"accuracy": "Accuracy", "f1": "F1", "precision": "Precision", "recall": "Recall", "roc_auc": "ROC-AUC"}
PLOT_TITLES = {
    "training_curves.png": "Training curves",
    "confusion_matrix.png": "Test confusion matrix",
    "roc_curve.png": "Test ROC curve",
    "pr_curve.png": "Test precision-recall curve",
}
FRAMEWORKS = ("transformers", "torch", "datasets", "tokenizers", "accelerate", "evaluate", "huggingface_hub", "peft")
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


# ------------------------------------------------------------------------------------------ small helpers


def is_hub_id(name: str | None) -> bool:
    """Whether ``name`` is a valid Hub repo id (``name`` or ``namespace/name``) and not an existing local path."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if not name or not isinstance(name, str) or name.startswith((".", "/", "~")) or os.path.exists(name):
        return False
    try:
        validate_repo_id(name)
    except HFValidationError:
        return False
    return True


def is_local_path(value: Any) -> bool:
    """Whether ``value`` is a string naming a local file or folder (existing, absolute or explicitly relative)."""
    if not isinstance(value, str) or not value or "\n" in value:
        return False
    return os.path.isabs(value) or value.startswith(("./", "../", "~")) or os.path.exists(value)


def public_value(value: Any) -> Any:
    """``value`` with local paths reduced to ``<local>/<name>`` (cards are public; the machine's paths are not)."""
    if isinstance(value, Mapping):
        return {k: public_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [public_value(v) for v in value]
    if is_local_path(value):
        return f"<local>/{Path(value).expanduser().name}"
    return value


def recorded_base_model(directory: str | os.PathLike) -> str | None:
    """The Hub id a local checkpoint says it derives from: its card's ``base_model``, its recipe's
    ``model_name_or_path`` or its config's ``_name_or_path``; None if it records none."""
    import yaml

    directory = Path(directory)
    card: Any = None
    recorded: list[Any] = []  # values that may be paths relative to wherever the run was started
    try:
        if (directory / CARD_FILE).is_file():
            card = ModelCard.load(directory / CARD_FILE, ignore_metadata_errors=True).data.get("base_model")
        if (directory / "recipe.yaml").is_file():
            recorded.append((yaml.safe_load((directory / "recipe.yaml").read_text()) or {}).get("model_name_or_path"))
        if (directory / "config.json").is_file():
            recorded.append(json.loads((directory / "config.json").read_text()).get("_name_or_path"))
    except (OSError, ValueError, yaml.YAMLError) as err:
        logger.warning("could not read the base model recorded in %s: %s", directory.name, err)
    card = card[0] if isinstance(card, list) and card else card
    if is_hub_id(card):  # checked when the card was written
        return card
    for value in recorded:  # "outputs/run1" looks like a Hub id: reject what names a folder near this one
        near = (directory, *directory.resolve().parents)
        if is_hub_id(value) and not any((ancestor / value).exists() for ancestor in near):
            return value
    return None


def resolve_base_model(name_or_path: str | None) -> str | None:
    """The Hub id to put in a card's ``base_model``: never a local path (see `recorded_base_model`)."""
    if not name_or_path:
        return None
    if Path(name_or_path).expanduser().is_dir():
        return recorded_base_model(Path(name_or_path).expanduser())
    return name_or_path if is_hub_id(name_or_path) else None


def describe_source(name_or_path: str | None, hub_id: str | None, kind: str) -> str:
    """Markdown naming a model/dataset: a Hub link, or a local file/folder by its name only."""
    if hub_id and hub_id == name_or_path:
        return f"[{hub_id}](https://huggingface.co/{'datasets/' if kind == 'dataset' else ''}{hub_id})"
    name = Path(str(name_or_path)).expanduser().name
    local = f"a local {kind} `{name}`"
    return f"{local} (derived from [{hub_id}](https://huggingface.co/{hub_id}))" if hub_id else local


def dataset_type(name_or_path: str | None) -> str:
    """A model-index ``dataset.type``: the Hub id for Hub data, else the `datasets` builder that reads the local
    data (``csv``, ``json``, ``parquet``, ``text``), else ``local``."""
    from .datasource import file_format, local_data_files

    if not name_or_path:
        return "local"
    if is_hub_id(name_or_path) and file_format(name_or_path) is None:
        return name_or_path
    try:
        files = local_data_files(name_or_path)
    except Exception:  # gone since training, or a builtin: the name alone tells the format of a single file
        files = None
    found = file_format((files or [name_or_path])[0])
    return found[0] if found else "local"


def detect_language(texts: Iterable[str], sample: int = 500) -> list[str] | None:
    """``["zh"]`` or ``["en"]`` from the script of (a sample of) the texts; None when unclear."""
    cjk = latin = 0
    for i, text in enumerate(texts):
        if i >= sample:
            break
        cjk += len(re.findall(r"[\u3400-\u9fff\uf900-\ufaff]", text))
        latin += len(re.findall(r"[A-Za-z]", text))
    if cjk + latin == 0:
        return None
    if cjk >= 0.3 * (cjk + latin):
        return ["zh"]
    return ["en"] if latin >= 0.9 * (cjk + latin) else None


def framework_versions(extra: Sequence[str] = ()) -> dict[str, str]:
    """Versions of Python, hfsent and the Hugging Face stack installed now."""
    from . import __version__

    versions = {"Python": platform.python_version(), "hfsent": __version__}
    for name in (*FRAMEWORKS, *extra):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def model_summary(directory: str | os.PathLike) -> dict[str, Any]:
    """Architecture of the checkpoint saved in ``directory`` (from config.json and the safetensors header)."""
    directory = Path(directory)
    config = json.loads((directory / "config.json").read_text()) if (directory / "config.json").is_file() else {}
    summary: dict[str, Any] = {
        key: config[key]
        for key in ("num_hidden_layers", "hidden_size", "num_attention_heads", "vocab_size", "pooling")
        if key in config
    }
    weights = sorted(directory.glob("*.safetensors"))
    if weights:
        from safetensors import safe_open

        total = 0
        for path in weights:
            with safe_open(str(path), framework="pt") as f:
                total += sum(math.prod(f.get_slice(key).get_shape()) for key in f.keys())  # noqa: SIM118
        summary["parameters"] = total
    return summary


def format_value(value: Any) -> str:
    """A hyperparameter value as a short string (floats in ``%g``, lists and dicts as JSON)."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def _cell(value: Any) -> str:
    return format_value(value).replace("|", "\\|").replace("\n", " ")


def _metric(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "–"


def training_log_rows(log_history: Sequence[Mapping[str, Any]], metrics: Sequence[str] = METRICS) -> list[dict]:
    """One row per evaluation in ``log_history``: epoch, step, last training loss, eval loss and metrics."""
    rows, train_loss = [], None
    for entry in log_history:
        if "loss" in entry:
            train_loss = entry["loss"]
        if "eval_loss" in entry:
            rows.append(
                {
                    "epoch": f"{entry.get('epoch', 0):g}",
                    "step": entry.get("step", ""),
                    "train_loss": _metric(train_loss),
                    "eval_loss": _metric(entry["eval_loss"]),
                    "metrics": [_metric(entry.get(f"eval_{name}")) for name in metrics],
                }
            )
    return rows


def _render(template: Path, card_data: ModelCardData, context: Mapping[str, Any]) -> str:
    card = str(ModelCard.from_template(card_data, template_path=str(template), **context))
    return card if card.endswith("\n") else card + "\n"


def write_card(directory: str | os.PathLike, content: str) -> Path:
    """Write ``content`` as ``directory/README.md`` (atomically) and return its path."""
    path = Path(directory) / CARD_FILE
    tmp = path.with_name(f".{CARD_FILE}.tmp")
    tmp.write_text(content, encoding="utf-8")
    os.replace(tmp, path)
    return path


# --------------------------------------------------------------------------------- fine-tuned sentiment models


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

    def eval_results(self) -> list[EvalResult]:
        """The test metrics as `EvalResult`s for the ``model-index``: one per metric, as the Hub shows them.

        At the pipeline's decision rule (threshold 0.5) each metric has its own type (``accuracy``, ``f1``, ...);
        at the tuned threshold (what `hfsent.predict`, the CLI, server and handler decide at) the metrics are
        separate ones, ``<metric>_tuned_threshold``, named with the threshold. ROC-AUC does not depend on a
        threshold and is reported once.
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
        threshold = self.results.get("threshold")
        if threshold is not None:
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
        return _render(SENTIMENT_TEMPLATE, data.card_data(), data._context())

    def _context(self) -> dict[str, Any]:
        results = self.results
        threshold = results.get("threshold", 0.5)
        tuned = "threshold" in results
        evaluation = []
        if "test_accuracy" in results:
            for name in METRICS:
                evaluation.append(
                    [
                        METRIC_TITLES[name],
                        _metric(results.get(f"test_{name}")),
                        _metric(results.get(f"test_tuned_{name}")),
                        _metric(results.get(f"eval_{name}")),
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
            "threshold": f"{threshold:.3f}",
            "threshold_tuned": tuned,
            "threshold_objective": self.threshold_objective,
            "test_samples": self.split_sizes.get("test"),
            "headline": evaluation and {"accuracy": evaluation[0][1], "roc_auc": evaluation[4][1]},
            "evaluation": evaluation,
            "test_loss": _metric(results.get("test_loss")) if "test_loss" in results else None,
            "splits": [
                [name, self.split_sizes[name], f"{100 * self.positive_share.get(name, 0):.1f}%"]
                for name in ("train", "validation", "test")
                if name in self.split_sizes
            ],
            "summary": [[key, _cell(value)] for key, value in self.summary.items()],
            "hyperparameters": [[key, _cell(value)] for key, value in self.hyperparameters.items()],
            "all_hyperparameters": [[key, _cell(value)] for key, value in self.all_hyperparameters.items()],
            "training_rows": training_log_rows(self.log_history),
            "metric_titles": [METRIC_TITLES[name] for name in METRICS],
            "plots": [[PLOT_TITLES.get(name, name), name] for name in self.plots],
            "examples_json": json.dumps(examples, ensure_ascii=False),
            "framework_versions": list(self.framework_versions.items()),
        }


def _is_publishing_key(key: str) -> bool:
    """Hub settings and tokens say where a model goes, not how it was made (``tokenizer_*`` keys are settings)."""
    return key in ("push_to_hub", "token") or key.startswith("hub_") or key.endswith("_token")


def _default_recipe(model_args, data_args, training_args) -> dict[str, Any]:
    """Every recipe key's default value (``{}`` if they cannot be built safely)."""
    from accelerate.state import PartialState

    from .recipe import recipe_to_dict

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


def collect_finetuning_card_data(model_args, data_args, training_args, splits) -> SentimentModelCardData:
    """Card data known before training: base model, data, splits, label balance, widget examples, hyperparameters.

    ``model_args``/``data_args``/``training_args`` are `hfsent.training`'s recipe dataclasses; ``splits`` the
    cleaned ``DatasetDict`` (train/validation/test, with a ``labels`` column).
    """
    from .recipe import recipe_to_dict

    dataset_name = data_args.dataset_name
    dataset_id = dataset_name if is_hub_id(dataset_name) else None
    if dataset_name.startswith("builtin:"):
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
    non_default = {
        k: public_value(v)
        for k, v in resolved.items()
        if k not in NOT_HYPERPARAMETERS and not _is_publishing_key(k) and (k not in defaults or defaults[k] != v)
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
        positive_share={name: sum(y) / len(y) for name, y in labels.items() if y},
        widget=widget,
        hyperparameters=non_default,
        all_hyperparameters={k: public_value(v) for k, v in resolved.items() if not _is_publishing_key(k)},
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
        """A callback for `hfsent.training.finetune` (see `collect_finetuning_card_data`); never raises."""
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
            data.plots = [name for name in PLOT_TITLES if (directory / name).is_file()]
            card = data.render()
            if keep_data:
                data.card_sha256 = _sha256(card)
                (directory / CARD_DATA_FILE).write_text(data.to_json(), encoding="utf-8")
            return write_card(directory, card)
        except Exception as err:  # a card must never break training
            logger.warning("could not write the model card into %s: %s: %s", directory, type(err).__name__, err)
            return None


def card_for_push(directory: str | os.PathLike, repo_id: str) -> str | None:
    """The README.md to publish from ``directory`` to ``repo_id``.

    A card that hfsent generated (``model_card_data.json`` present, README.md missing or unedited) is re-rendered
    with the repo id (and the current templates); an edited README.md is kept as is; None when there is no card.
    """
    directory = Path(directory)
    readme = directory / CARD_FILE
    current = readme.read_text(encoding="utf-8") if readme.is_file() else None
    if (directory / CARD_DATA_FILE).is_file():
        data = SentimentModelCardData.load(directory)
        if current is None or _sha256(current) == data.card_sha256:
            return data.render(model_id=repo_id)
        logger.info("README.md was edited after training: publishing it as is")
    return current


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# ----------------------------------------------------------------------------------- MLM-pretrained encoders

ENCODER_HYPERPARAMETERS = (
    "max_seq_length", "mlm_probability", "whole_word_mask", "line_by_line", "learning_rate", "num_train_epochs",
    "max_steps", "per_device_train_batch_size", "gradient_accumulation_steps", "warmup_steps", "weight_decay",
    "lr_scheduler_type", "seed",
)  # fmt: skip
ENCODER_METRICS = {"loss": "Loss (masked tokens)", "perplexity": "Perplexity", "accuracy": "Masked-token accuracy"}


def render_pretrained_encoder_card(
    output_dir: str | os.PathLike,
    results: Mapping[str, Any],
    recipe: Mapping[str, Any],
    *,
    model_id: str | None = None,
    language: list[str] | None = None,
    license: str | None = "apache-2.0",
) -> str:
    """The model card of an MLM-pretrained BERT encoder saved in ``output_dir``; returns it (does not write it).

    ``results`` are the run's metrics (``eval_loss``/``eval_perplexity``/``eval_accuracy``, optional
    ``init_eval_*`` and ``train_*``), ``recipe`` the resolved recipe dict (``model_name_or_path``,
    ``dataset_name`` (a list or a string), ``max_seq_length``, ``mlm_probability``, ...). The training curve
    comes from ``output_dir/trainer_state.json`` if present. Offline; write the result with
    `write_card` (``output_dir/README.md``).
    """
    output_dir = Path(output_dir)
    datasets = recipe.get("dataset_name") or []
    datasets = [datasets] if isinstance(datasets, str) else list(datasets)
    dataset_ids = [d for d in datasets if is_hub_id(d)]
    base_model = resolve_base_model(recipe.get("model_name_or_path"))
    log_history = []
    if (output_dir / "trainer_state.json").is_file():
        log_history = json.loads((output_dir / "trainer_state.json").read_text()).get("log_history", [])
    title = model_id.split("/")[-1] if model_id else output_dir.name
    eval_results = [
        EvalResult(
            task_type="fill-mask",
            task_name="Masked language modelling",
            dataset_type=dataset_type(datasets[0]) if len(datasets) == 1 else (dataset_ids or ["local"])[0],
            dataset_name=", ".join(Path(str(d)).name if not is_hub_id(d) else d for d in datasets) or "unknown",
            dataset_split="validation",
            metric_type=name,
            metric_value=results[f"eval_{name}"],
        )
        for name in ("perplexity", "accuracy")
        if f"eval_{name}" in results
    ]
    card_data = ModelCardData(
        language=language,
        license=license,
        library_name="transformers",
        tags=["hfsent", "bert", "fill-mask", "masked-language-modeling"],
        datasets=dataset_ids or None,
        base_model=base_model,
        pipeline_tag="fill-mask",
        eval_results=eval_results or None,
        model_name=title if eval_results else None,
    )
    metric_rows = [
        [title_, _metric(results.get(f"init_eval_{key}")), _metric(results.get(f"eval_{key}"))]
        for key, title_ in ENCODER_METRICS.items()
        if f"eval_{key}" in results
    ]
    context = {
        "title": title,
        "repo_id": model_id or f"your-username/{output_dir.name}",
        "base_model_text": describe_source(recipe.get("model_name_or_path"), base_model, "checkpoint")
        if recipe.get("model_name_or_path")
        else "a BERT encoder initialised from scratch",
        "dataset_texts": [
            describe_source(d, d if is_hub_id(d) else None, "dataset") if not str(d).startswith("builtin:") else d
            for d in datasets
        ],
        "summary": [[k, _cell(v)] for k, v in model_summary(output_dir).items()],
        "hyperparameters": [[k, _cell(public_value(recipe[k]))] for k in ENCODER_HYPERPARAMETERS if k in recipe],
        "all_hyperparameters": [
            [k, _cell(public_value(v))] for k, v in sorted(recipe.items()) if not _is_publishing_key(k)
        ],
        "metric_rows": metric_rows,
        "has_init_eval": any(f"init_eval_{key}" in results for key in ENCODER_METRICS),
        "train_samples": results.get("train_samples"),
        "train_tokens": results.get("train_tokens"),
        "training_rows": training_log_rows(log_history, metrics=("perplexity", "accuracy")),
        "plots": [[PLOT_TITLES[name], name] for name in PLOT_TITLES if (output_dir / name).is_file()],
        "framework_versions": list(framework_versions().items()),
    }
    return _render(ENCODER_TEMPLATE, card_data, context)


__all__ = [
    "CARD_DATA_FILE",
    "CARD_FILE",
    "ModelCardCallback",
    "SentimentModelCardData",
    "card_for_push",
    "collect_finetuning_card_data",
    "render_pretrained_encoder_card",
    "resolve_base_model",
    "write_card",
]
