"""mkdocs hook: the recipes reference (docs/reference/recipes.md) generated from the recipe dataclasses.

A line ``<!-- recipe-keys: finetune -->`` (or ``pretrain``) in a page is replaced at build time by one table per
dataclass of that recipe: every key with its type, default, accepted values and help, as `hfsent.recipe.RecipeParser`
(the parser behind ``hfsent train`` / ``hfsent pretrain``) sees them. Of `transformers.TrainingArguments`, the table
lists the keys hfsent adds or whose default it changes, then the keys whose range hfsent checks; every other
TrainingArguments key is accepted too, with transformers' default.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from typing import Any

MARKER = re.compile(r"^<!-- recipe-keys: (\w+) -->$", re.MULTILINE)


def recipe_dataclasses(recipe: str) -> tuple[type, ...]:
    """The dataclasses ``hfsent <recipe>`` parses, in the order of ``hfsent.commands``."""
    if recipe == "finetune":
        from hfsent.finetune.arguments import DataArguments, HfSentTrainingArguments, ModelArguments

        return ModelArguments, DataArguments, HfSentTrainingArguments
    if recipe == "pretrain":
        from hfsent.pretrain.arguments import PretrainDataArguments, PretrainModelArguments
        from hfsent.training_args import RunTrainingArguments

        return PretrainModelArguments, PretrainDataArguments, RunTrainingArguments
    raise ValueError(f"unknown recipe {recipe!r}: expected 'finetune' or 'pretrain'")


def _default(f: dataclasses.Field) -> str:
    if f.default_factory is not dataclasses.MISSING:
        value: Any = f.default_factory()
    else:
        value = f.default
    if value is None:
        return "`null`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if hasattr(value, "value"):  # an Enum member
        value = value.value
    if isinstance(value, (list, dict)):
        import yaml

        return f"`{yaml.safe_dump(value, default_flow_style=True, allow_unicode=True).strip()}`"
    return f"`{value}`" if value != "" else '`""`'


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def key_rows(dtype: type, names: list[str] | None = None) -> list[dict[str, str]]:
    """One row per recipe key of ``dtype`` (all its keys, or ``names``): key, type, default, accepts, help."""
    from hfsent.recipe import RecipeParser
    from hfsent.validation import _describe

    parser = RecipeParser(dtype)
    helps = {a.dest: a.help for a in parser._actions}
    old_names: dict[str, list[str]] = {}
    for old, new in parser.old_names.items():
        old_names.setdefault(new, []).append(old)
    fields = {f.name: f for f in dataclasses.fields(dtype) if f.init}
    rows = []
    for name in names if names is not None else list(fields):
        key = parser.keys[name]
        if key.choices:
            accepts = "one of " + ", ".join(f"`{c}`" for c in key.choices)
        elif key.accepts is not None:
            accepts = str(key.accepts)
        else:
            accepts = ""
        help_ = (helps.get(name) or "").replace("%%", "%")
        if name in old_names:
            help_ += " Old name" + ("s" if len(old_names[name]) > 1 else "") + " (deprecated, still accepted): "
            help_ += ", ".join(f"`{n}`" for n in old_names[name]) + "."
        rows.append(
            {
                "key": f"`{name}`",
                "type": _describe(key.hint),
                "default": _default(fields[name]),
                "accepts": accepts,
                "help": help_,
            }
        )
    return rows


def table(rows: list[dict[str, str]]) -> str:
    """A Markdown table of ``key_rows``."""
    lines = ["| key | type | default | accepts | help |", "| --- | --- | --- | --- | --- |"]
    columns = ("key", "type", "default", "accepts", "help")
    lines += ["| " + " | ".join(_cell(row[c]) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def _own_training_keys(dtype: type) -> list[str]:
    """Keys of a TrainingArguments subclass that hfsent declares (new keys, or TrainingArguments' with new defaults)."""
    from transformers import TrainingArguments

    names: list[str] = []
    for cls in reversed(dtype.__mro__):
        if issubclass(cls, TrainingArguments) and cls is not TrainingArguments:
            names += [n for n in inspect.get_annotations(cls) if n not in names]
    return names


def recipe_reference(recipe: str) -> str:
    """The Markdown that replaces ``<!-- recipe-keys: <recipe> -->``."""
    from transformers import TrainingArguments

    from hfsent.validation import TRAINING_ARGUMENT_RANGES

    parts = []
    for dtype in recipe_dataclasses(recipe):
        if issubclass(dtype, TrainingArguments):
            own = _own_training_keys(dtype)
            checked = [n for n in TRAINING_ARGUMENT_RANGES if n not in own]
            parts.append(f"#### `{dtype.__name__}`: the keys hfsent adds or sets\n\n{table(key_rows(dtype, own))}")
            parts.append(
                "#### Other `TrainingArguments` keys whose range hfsent checks\n\n"
                "Every other field of `transformers.TrainingArguments` is a key too, with transformers' default; "
                f"these are checked before any data or model loads:\n\n{table(key_rows(dtype, checked))}"
            )
        else:
            doc = (dtype.__doc__ or "").strip().splitlines()[0]
            parts.append(f"#### `{dtype.__name__}`\n\n{doc}\n\n{table(key_rows(dtype))}")
    return "\n\n".join(parts)


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    """mkdocs hook: expand every ``<!-- recipe-keys: ... -->`` line."""
    return MARKER.sub(lambda m: recipe_reference(m.group(1)), markdown)
