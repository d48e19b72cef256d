"""Recipes: a YAML file of arguments with command-line overrides on top (the CLI wins), and the names of what a
run writes into its output directory (`RESULTS_FILE`, `RECIPE_FILE`, `PLOT_FILES`, the `METRICS` it reports).

``hfsent train recipe.yaml --learning_rate 3e-5`` parses into the recipe's dataclasses (for example
hfsent's data/model arguments and `transformers.TrainingArguments`). Every value, from the YAML file or
the command line, is checked against its dataclass field's type (``2e-5`` in YAML is a float, ``64.7``
is not an integer, ``[a, b]`` is not a string), its choices and its accepted range before any data or
model loads; a value that fails names the key, the value and what is accepted. Unknown keys (YAML or
command line, where only exact names count: no abbreviations) fail naming the closest valid one.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import difflib
import os
import sys
import traceback
import types
import typing
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml
from transformers import HfArgumentParser, TrainingArguments

from .errors import RecipeError, debug_enabled, environment_error
from .validation import (
    TRAINING_ARGUMENT_RANGES,
    RecipeKey,
    check_resume_checkpoint,
    check_training_steps,
    check_writable,
)

# What a run writes into its output directory, by name (fine-tuning and pretraining alike).
RESULTS_FILE = "all_results.json"
RECIPE_FILE = "recipe.yaml"
TRAINER_STATE_FILE = "trainer_state.json"
PLOT_FILES = {
    "confusion_matrix": "confusion_matrix.png",
    "roc_curve": "roc_curve.png",
    "pr_curve": "pr_curve.png",
    "training_curves": "training_curves.png",
    "label_metrics": "label_metrics.png",  # a multi-label model's test F1 and ROC-AUC per label
}
# The test metrics of a fine-tuning run (``test_<name>`` and ``test_tuned_<name>`` in all_results.json), in the
# order the console and the model card show them.
METRICS = ("accuracy", "f1", "precision", "recall", "roc_auc")


def load_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """Read a recipe YAML file into a dict, with clear errors for a missing or malformed file."""
    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"recipe file not found: {str(path)!r}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise RecipeError(f"recipe file {str(path)!r} is not valid UTF-8 YAML: {first_line}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise RecipeError(f"recipe file {str(path)!r} must hold a mapping of key: value, not {type(data).__name__}")
    return data


# ------------------------------------------------------------------------------------------- parser


class RecipeParser(HfArgumentParser):
    """`HfArgumentParser` that reads an optional leading ``recipe.yaml`` and lets the CLI override it.

    Abbreviated options are not accepted (``--learning_rat`` is an unknown key, not ``--learning_rate``);
    every value is checked by `RecipeKey.check` before any dataclass is built. A field's ``aliases`` (dataclass field
    metadata, e.g. ``["--max_seq_length"]``) are old names of its key: they are still accepted, in the YAML and on
    the command line, with a `FutureWarning` naming the new key.
    """

    def __init__(self, dataclass_types: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("exit_on_error", False)
        super().__init__(dataclass_types, **kwargs)
        self.keys: dict[str, RecipeKey] = {}
        for dtype in self.dataclass_types:
            hints = typing.get_type_hints(dtype)
            ranges = TRAINING_ARGUMENT_RANGES if issubclass(dtype, TrainingArguments) else {}
            for f in dataclasses.fields(dtype):
                if f.init:
                    action = next(a for a in self._actions if a.dest == f.name)
                    accepts = f.metadata.get("accepts", ranges.get(f.name))
                    self.keys[f.name] = RecipeKey(f.name, dtype, hints[f.name], action.choices, accepts)
        self.old_names = self.deprecated_aliases()

    def deprecated_aliases(self) -> dict[str, str]:
        """Old key -> its key today, for every field declared with ``aliases``."""
        old_names = {}
        for action in self._actions:
            for option in action.option_strings:
                name = option.lstrip("-")
                if option.startswith("--") and name.replace("-", "_") not in (action.dest, f"no_{action.dest}"):
                    old_names[name] = action.dest
        return old_names

    @staticmethod
    def _parse_dataclass_field(parser: argparse.ArgumentParser, field: dataclasses.Field) -> None:
        if "accepts" in field.metadata:  # hfsent's range annotation: not an argparse keyword
            field = copy.copy(field)
            field.metadata = types.MappingProxyType({k: v for k, v in field.metadata.items() if k != "accepts"})
        HfArgumentParser._parse_dataclass_field(parser, field)

    def error(self, message: str) -> typing.NoReturn:
        """argparse errors are `RecipeError` (one line, exit 2 in `run_recipe_command`), not usage + exit."""
        raise RecipeError(message)

    def parse_recipe(self, argv: Sequence[str] | None = None) -> tuple[Any, ...]:
        """Parse ``[recipe.yaml] [--key value ...]`` into one instance per dataclass type."""
        argv = list(argv or [])
        values: dict[str, Any] = {}
        if argv and not argv[0].startswith("-"):
            recipe_path, argv = argv[0], argv[1:]
            values.update(self.check_values(load_yaml(recipe_path), source=f"in {recipe_path}"))
        for arg in argv:
            name = arg[2:].split("=", 1)[0] if arg.startswith("--") else None
            if name in self.old_names:
                _warn_deprecated(name, self.old_names[name], "the command line")
        values.update(self.check_values(self._parse_command_line(argv), source="on the command line"))
        check_training_steps(values, self.keys)
        outputs = []
        for dtype in self.dataclass_types:
            names = {f.name for f in dataclasses.fields(dtype) if f.init}
            try:
                outputs.append(dtype(**{k: v for k, v in values.items() if k in names}))
            except (ValueError, TypeError) as err:
                # dataclass __post_init__ checks (e.g. TrainingArguments) raise ValueError
                raise RecipeError(" ".join(str(err).split())) from err
        return tuple(outputs)

    def check_values(self, values: dict[str, Any], source: str = "in the recipe") -> dict[str, Any]:
        """``values`` converted by their keys' types; unknown keys and bad values raise `RecipeError`."""
        checked = {}
        for key, value in values.items():
            if key in self.old_names and key not in self.keys:
                _warn_deprecated(key, self.old_names[key], source.removeprefix("in "))
                key = self.old_names[key]
            if key not in self.keys:
                close = difflib.get_close_matches(str(key), list(self.keys), n=1, cutoff=0.6)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise RecipeError(f"unknown key {key!r} {source}{hint}")
            checked[key] = self.keys[key].check(value, source)
        return checked

    def _parse_command_line(self, argv: list[str]) -> dict[str, Any]:
        """The ``--key value`` pairs given on the command line, as argparse read them (strings, unconverted)."""
        if "-h" in argv or "--help" in argv:
            self.print_help()
            raise SystemExit(0)
        saved = [(a, a.default, a.type, a.choices, a.required) for a in self._actions]
        try:
            for action in self._actions:
                if action.dest != "help":
                    action.default, action.type, action.choices, action.required = argparse.SUPPRESS, None, None, False
            try:
                namespace, rest = self.parse_known_args(argv)
            except argparse.ArgumentError as err:
                raise RecipeError(f"{err.message} (option {err.argument_name}) on the command line") from None
        finally:
            for action, default, type_, choices, required in saved:
                action.default, action.type, action.choices, action.required = default, type_, choices, required
        if rest:
            token = rest[0]
            key = token.split("=", 1)[0].lstrip("-").replace("-", "_")
            if not token.startswith("-"):
                raise RecipeError(f"unexpected argument {token!r} on the command line (the recipe YAML comes first)")
            close = difflib.get_close_matches(key, list(self.keys), n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise RecipeError(f"unknown key {token.split('=', 1)[0]!r} on the command line{hint}")
        return vars(namespace)


def _warn_deprecated(old: str, new: str, source: str) -> None:
    warnings.warn(
        f"{old!r} (in {source}) is deprecated and will be removed: use {new!r}, which means the same",
        FutureWarning,
        stacklevel=4,
    )


def run_recipe_command(
    prog: str,
    dataclass_types: Sequence[type],
    description: str,
    run: Callable[..., Any],
    argv: Sequence[str] | None = None,
) -> tuple[int, tuple[Any, ...] | None, Any]:
    """Parse ``[recipe.yaml] [--key value ...]`` into ``dataclass_types`` and call ``run(*parsed)``.

    Returns ``(exit code, parsed arguments, run's result)``; a `RecipeError` (bad recipe, data or
    setting) is printed as one line ``<prog>: error: ...`` and gives exit code 2. An output folder that
    cannot be written raises its `OSError` before ``run`` starts (see `hfsent.cli`).
    """
    parser = RecipeParser(
        dataclass_types, prog=prog, usage=f"{prog} [recipe.yaml] [--key value ...]", description=description
    )
    try:
        parsed = parser.parse_recipe(sys.argv[1:] if argv is None else argv)
        training_args = next((a for a in parsed if isinstance(a, TrainingArguments)), None)
        output_dir = training_args.output_dir if training_args is not None else None
        if training_args is not None:
            check_resume_checkpoint(training_args.resume_from_checkpoint)
        if output_dir:
            check_writable(output_dir)
        try:
            return 0, parsed, run(*parsed)
        except Exception as err:
            env = environment_error(err)
            if env is None or env.filename or not output_dir:
                raise
            # a writer that does not say where (safetensors): name the folder the run writes to
            raise OSError(env.errno, f"{env.strerror} while writing", str(output_dir)) from err
    except RecipeError as err:
        if debug_enabled():
            traceback.print_exc()
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2, None, None


def recipe_to_dict(*args: Any) -> dict[str, Any]:
    """Flatten parsed recipe dataclasses into one dict (tokens redacted by TrainingArguments.to_dict)."""
    resolved: dict[str, Any] = {}
    for obj in args:
        if hasattr(obj, "to_dict"):
            resolved.update(obj.to_dict())
        else:
            resolved.update(dataclasses.asdict(obj))
    return {k: v for k, v in resolved.items() if not k.endswith("_token") or v is None}


def save_recipe(output_dir: str | os.PathLike, *args: Any, filename: str = RECIPE_FILE) -> Path:
    """Write the resolved recipe (every argument's final value) to ``output_dir/filename``."""
    path = Path(output_dir) / filename
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(recipe_to_dict(*args), sort_keys=True, allow_unicode=True), encoding="utf-8")
    return path
