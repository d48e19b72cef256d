"""Recipes: a YAML file of arguments with command-line overrides on top (the CLI wins), and the names of what a
run writes into its output directory (`RESULTS_FILE`, `RECIPE_FILE`, `PLOT_FILES`, the `METRICS` it reports).

``hfsent train recipe.yaml --learning_rate 3e-5`` parses into the recipe's dataclasses
(for example hfsent's data/model arguments and `transformers.TrainingArguments`). YAML values become
the argparse defaults, so they are converted by the same types as command-line values (``2e-5`` in
YAML is a float, not a string) and the command line overrides them. Unknown YAML keys fail before
any work, naming the key and the closest valid one.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml
from transformers import HfArgumentParser

# What a run writes into its output directory, by name (fine-tuning and pretraining alike).
RESULTS_FILE = "all_results.json"
RECIPE_FILE = "recipe.yaml"
TRAINER_STATE_FILE = "trainer_state.json"
PLOT_FILES = {
    "confusion_matrix": "confusion_matrix.png",
    "roc_curve": "roc_curve.png",
    "pr_curve": "pr_curve.png",
    "training_curves": "training_curves.png",
}
# The test metrics of a fine-tuning run (``test_<name>`` and ``test_tuned_<name>`` in all_results.json), in the
# order the console and the model card show them.
METRICS = ("accuracy", "f1", "precision", "recall", "roc_auc")


class RecipeError(ValueError):
    """A recipe file or command line that cannot be used; the message names the culprit."""


def load_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """Read a recipe YAML file into a dict, with clear errors for a missing or malformed file."""
    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"recipe file not found: {str(path)!r}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise RecipeError(f"recipe file {str(path)!r} is not valid UTF-8 YAML: {err}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise RecipeError(f"recipe file {str(path)!r} must hold a mapping of key: value, not {type(data).__name__}")
    return data


class RecipeParser(HfArgumentParser):
    """`HfArgumentParser` that reads an optional leading ``recipe.yaml`` and lets the CLI override it.

    A field's ``aliases`` (dataclass field metadata, e.g. ``["--max_seq_length"]``) are old names of its key: they
    are still accepted, in the YAML and on the command line, with a `FutureWarning` naming the new key.
    """

    def parse_recipe(self, argv: Sequence[str] | None = None) -> tuple[Any, ...]:
        """Parse ``[recipe.yaml] [--key value ...]`` into one instance per dataclass type."""
        argv = list(argv or [])
        if argv and not argv[0].startswith("-"):
            recipe_path, argv = argv[0], argv[1:]
            self.apply_yaml_defaults(load_yaml(recipe_path), source=recipe_path)
        old_names = self.deprecated_aliases()
        for arg in argv:
            name = arg[2:].split("=", 1)[0] if arg.startswith("--") else None
            if name in old_names:
                _warn_deprecated(name, old_names[name], "the command line")
        try:
            return self.parse_args_into_dataclasses(args=argv, look_for_args_file=False)
        except (ValueError, TypeError) as err:
            # dataclass __post_init__ checks (e.g. TrainingArguments) raise ValueError
            raise RecipeError(str(err)) from err

    def deprecated_aliases(self) -> dict[str, str]:
        """Old key -> its key today, for every field declared with ``aliases``."""
        old_names = {}
        for action in self._actions:
            for option in action.option_strings:
                name = option.lstrip("-")
                if option.startswith("--") and name.replace("-", "_") not in (action.dest, f"no_{action.dest}"):
                    old_names[name] = action.dest
        return old_names

    def apply_yaml_defaults(self, values: dict[str, Any], source: str = "recipe") -> None:
        """Use ``values`` as argument defaults; reject keys that no dataclass field accepts."""
        actions: dict[str, list] = {}
        for action in self._actions:
            if action.dest != "help":  # a bool field has two actions: --flag and --no_flag
                actions.setdefault(action.dest, []).append(action)
        old_names = self.deprecated_aliases()
        for key, value in values.items():
            if key in old_names and key not in actions:
                _warn_deprecated(key, old_names[key], source)
                key = old_names[key]
            if key not in actions:
                close = difflib.get_close_matches(key, list(actions), n=1, cutoff=0.6)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise RecipeError(f"unknown key {key!r} in {source}{hint}")
            for action in actions[key]:
                if isinstance(value, (int, float, bool)) and action.type is str:
                    value = str(value)
                action.default = value
                action.required = False


def _warn_deprecated(old: str, new: str, source: str) -> None:
    warnings.warn(
        f"{old!r} (in {source}) is deprecated and will be removed: use {new!r}, which means the same",
        FutureWarning,
        stacklevel=3,
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
    setting) is printed as one line ``<prog>: error: ...`` and gives exit code 2.
    """
    parser = RecipeParser(
        dataclass_types, prog=prog, usage=f"{prog} [recipe.yaml] [--key value ...]", description=description
    )
    try:
        parsed = parser.parse_recipe(sys.argv[1:] if argv is None else argv)
        return 0, parsed, run(*parsed)
    except RecipeError as err:
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
