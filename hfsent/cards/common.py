"""What every model card needs: paths vs Hub ids, the base model a checkpoint derives from, framework versions,
the model summary, table cells, and rendering a template offline into ``README.md``."""

from __future__ import annotations

import json
import logging
import math
import os
import platform
import re
from collections.abc import Iterable, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from huggingface_hub import ModelCard, ModelCardData

from ..datasource import file_format, is_hub_id, local_data_files, looks_like_local_path
from ..outputs import CARD_FILE, METRICS, PLOT_FILES, RECIPE_FILE
from ..recipe import safe_yaml_load

logger = logging.getLogger("hfsent")

TEMPLATES_DIR = Path(__file__).parents[1] / "model_card_templates"
METRIC_TITLES = {"accuracy": "Accuracy", "f1": "F1", "precision": "Precision", "recall": "Recall", "roc_auc": "ROC-AUC"}
PLOT_TITLES = {
    PLOT_FILES["training_curves"]: "Training curves",
    PLOT_FILES["confusion_matrix"]: "Test confusion matrix",
    PLOT_FILES["roc_curve"]: "Test ROC curve",
    PLOT_FILES["pr_curve"]: "Test precision-recall curve",
    PLOT_FILES["label_metrics"]: "Test F1 and ROC-AUC per label",
}
FRAMEWORKS = ("transformers", "torch", "datasets", "tokenizers", "accelerate", "evaluate", "huggingface_hub", "peft")


def is_local_path(value: Any) -> bool:
    """Whether ``value`` is a string naming a local file or folder (existing, absolute, or that can only be a path:
    `hfsent.datasource.looks_like_local_path`)."""
    if not isinstance(value, str) or not value or "\n" in value:
        return False
    return os.path.isabs(value) or looks_like_local_path(value) or os.path.exists(value)


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
        if (directory / RECIPE_FILE).is_file():
            recipe = safe_yaml_load((directory / RECIPE_FILE).read_text())
            recorded.append(recipe.get("model_name_or_path") if isinstance(recipe, dict) else None)
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
    if not name_or_path:
        return "local"
    if is_hub_id(name_or_path) and file_format(name_or_path) is None:
        return name_or_path
    try:
        files = local_data_files(name_or_path)
    except Exception:  # gone since training, or a builtin: the name alone tells the format of a single file
        files = None
    found = file_format((files or [name_or_path])[0])
    return found.builder if found else "local"


def is_publishing_key(key: str) -> bool:
    """Hub settings and tokens say where a model goes, not how it was made (``tokenizer_*`` keys are settings)."""
    return key in ("push_to_hub", "token") or key.startswith("hub_") or key.endswith("_token")


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
    from .. import __version__

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
    backbone = config.get("backbone_config") or {}
    if backbone.get("model_type"):  # a backbone other than BERT
        summary = {"backbone": backbone["model_type"], **summary}
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


def cell(value: Any) -> str:
    """A value as a Markdown table cell (`format_value`, pipes escaped, on one line)."""
    return format_value(value).replace("|", "\\|").replace("\n", " ")


def metric_cell(value: Any) -> str:
    """A metric as a table cell: four decimals, or a dash when there is none."""
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
                    "train_loss": metric_cell(train_loss),
                    "eval_loss": metric_cell(entry["eval_loss"]),
                    "metrics": [metric_cell(entry.get(f"eval_{name}")) for name in metrics],
                }
            )
    return rows


def render_card(template: Path, card_data: ModelCardData, context: Mapping[str, Any]) -> str:
    """Render ``template`` (Jinja, offline) with the YAML metadata ``card_data`` and ``context``."""
    card = str(ModelCard.from_template(card_data, template_path=str(template), **context))
    return card if card.endswith("\n") else card + "\n"


def write_card(directory: str | os.PathLike, content: str) -> Path:
    """Write ``content`` as ``directory/README.md`` (atomically) and return its path."""
    path = Path(directory) / CARD_FILE
    tmp = path.with_name(f".{CARD_FILE}.tmp")
    tmp.write_text(content, encoding="utf-8")
    os.replace(tmp, path)
    return path
