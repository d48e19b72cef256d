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
import enum
import math
import os
import sys
import tempfile
import traceback
import types
import typing
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml
from transformers import HfArgumentParser, TrainingArguments
from transformers.hf_argparser import string_to_bool

from .errors import debug_enabled, environment_error

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
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise RecipeError(f"recipe file {str(path)!r} is not valid UTF-8 YAML: {first_line}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise RecipeError(f"recipe file {str(path)!r} must hold a mapping of key: value, not {type(data).__name__}")
    return data


# ------------------------------------------------------------------------------------------ ranges


@dataclasses.dataclass(frozen=True)
class Accepts:
    """The values a numeric recipe key accepts: ``low``/``high`` bounds (inclusive unless ``*_open``).

    Put one in a dataclass field's metadata (``metadata={"help": ..., "accepts": at_least(1)}``), or in
    `TRAINING_ARGUMENT_RANGES` for `TrainingArguments` fields; `RecipeParser` checks it before any work.
    ``also`` lists single values accepted besides the range (``-1`` for "not set").
    """

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    also: tuple[Any, ...] = ()

    def __call__(self, value: Any) -> bool:
        """Whether ``value`` (a number, or None for an optional key) is accepted."""
        if value is None or value in self.also:
            return True
        if isinstance(value, float) and math.isnan(value):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return not (self.high is not None and (value >= self.high if self.high_open else value > self.high))

    def __str__(self) -> str:
        if self.low is not None and self.high is not None:
            text = f"in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"
        elif self.low is not None:
            text = f"{'>' if self.low_open else '>='} {self.low:g}"
        else:
            text = f"{'<' if self.high_open else '<='} {self.high:g}"
        return " or ".join([text, *map(repr, self.also)])


def at_least(low: float, also: tuple[Any, ...] = ()) -> Accepts:
    """``value >= low`` (or one of ``also``)."""
    return Accepts(low=low, also=also)


def greater_than(low: float) -> Accepts:
    """``value > low``."""
    return Accepts(low=low, low_open=True)


def between(low: float, high: float, low_open: bool = False, high_open: bool = False) -> Accepts:
    """``low <= value <= high``; ``*_open`` makes a bound exclusive."""
    return Accepts(low=low, high=high, low_open=low_open, high_open=high_open)


def check_ranges(obj: Any) -> None:
    """Check a dataclass instance's fields against their ``accepts`` metadata (call it from ``__post_init__``)."""
    for f in dataclasses.fields(obj):
        accepts = f.metadata.get("accepts")
        values = getattr(obj, f.name)
        for value in values if isinstance(values, list) else [values]:
            if accepts is not None and isinstance(value, (int, float)) and not accepts(value):
                raise RecipeError(f"invalid value for {f.name!r}: {value!r}; expected {accepts}")


SEED = between(0, 2**32 - 1)
PROBABILITY = between(0, 1)

# The TrainingArguments keys users set, with what they accept (transformers checks few of them, and late).
TRAINING_ARGUMENT_RANGES: dict[str, Accepts] = {
    "per_device_train_batch_size": at_least(1),
    "per_device_eval_batch_size": at_least(1),
    "gradient_accumulation_steps": at_least(1),
    "eval_accumulation_steps": at_least(1),
    "learning_rate": greater_than(0),
    "weight_decay": at_least(0),
    "adam_beta1": between(0, 1, high_open=True),
    "adam_beta2": between(0, 1, high_open=True),
    "adam_epsilon": at_least(0),
    "max_grad_norm": at_least(0),
    "num_train_epochs": at_least(0),
    "max_steps": at_least(1, also=(-1,)),
    "warmup_steps": at_least(0),
    "logging_steps": greater_than(0),
    "eval_steps": greater_than(0),
    "save_steps": greater_than(0),
    "save_total_limit": at_least(1),
    "eval_delay": at_least(0),
    "seed": SEED,
    "data_seed": SEED,
    "dataloader_num_workers": at_least(0),
    "dataloader_prefetch_factor": at_least(1),
    "label_smoothing_factor": between(0, 1, high_open=True),
    "torch_empty_cache_steps": at_least(1),
}


# ------------------------------------------------------------------------------------------- types

_NONE_WORDS = ("null", "none", "~")


def _describe(hint: Any) -> str:
    """What a type hint accepts, in words."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        words = [_describe(a) for a in args if a is not type(None)]
        return " or ".join(dict.fromkeys(words)) + (", or null" if type(None) in args else "")
    if origin is list:
        return f"a list of {_describe(args[0]).removeprefix('a ').removeprefix('an ')}s" if args else "a list"
    if origin is dict or hint is dict:
        return "a mapping"
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return "a string"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(hint, str(hint))


class _NoMatch(Exception):
    pass


def _convert(value: Any, hint: Any) -> Any:
    """``value`` as ``hint`` (from YAML: any object; from the command line: a string or list of strings)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is typing.Any:
        return value
    if origin in (typing.Union, types.UnionType):
        none_words = ("null",) if str in args else _NONE_WORDS  # `report_to: none` is a string, not null
        if value is None or (isinstance(value, str) and value.lower() in none_words and type(None) in args):
            if type(None) in args:
                return None
            raise _NoMatch
        members = [a for a in args if a is not type(None)]
        # a member of the value's own kind first (a string stays a string in `str | list[str]`)
        members.sort(key=lambda a: typing.get_origin(a) is not list if isinstance(value, list) else a is not str)
        for member in members:
            try:
                return _convert(value, member)
            except _NoMatch:
                continue
        raise _NoMatch
    if origin is list:
        items = value if isinstance(value, (list, tuple)) else [value]
        return [_convert(item, args[0] if args else typing.Any) for item in items]
    if origin is dict or hint is dict:
        if isinstance(value, (dict, str)):
            return value
        raise _NoMatch
    if isinstance(value, (list, tuple, dict)) or value is None:
        raise _NoMatch
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return str(value.value if isinstance(value, enum.Enum) else value)
    if hint is bool:
        if isinstance(value, bool):
            return value
        try:
            return string_to_bool(str(value))
        except argparse.ArgumentTypeError:
            raise _NoMatch from None
    if hint is int:
        if isinstance(value, (bool, float)):
            raise _NoMatch
        try:
            return int(value)
        except ValueError:
            raise _NoMatch from None
    if hint is float:
        if isinstance(value, bool):
            raise _NoMatch
        if isinstance(value, int):
            return value  # as YAML wrote it (`warmup_steps: 100` stays a whole number of steps)
        try:
            return float(value)
        except ValueError:
            raise _NoMatch from None
    if hint is str:
        return value if isinstance(value, str) else str(value)
    return value


@dataclasses.dataclass
class _Key:
    """One recipe key: the dataclass field behind it and what it accepts."""

    name: str
    dtype: type
    hint: Any
    choices: Sequence[Any] | None
    accepts: Accepts | None

    def check(self, value: Any, source: str) -> Any:
        """``value`` converted to this key's type; a `RecipeError` naming key, value and source if it does not fit."""
        if isinstance(value, bool) and self.choices and ("yes" if value else "no") in self.choices:
            value = "yes" if value else "no"  # YAML 1.1 reads `eval_strategy: no` as false
        try:
            converted = _convert(value, self.hint)
        except _NoMatch:
            raise RecipeError(
                f"invalid value for {self.name!r} {source}: {value!r}; expected {_describe(self.hint)}"
            ) from None
        items = converted if isinstance(converted, list) else [converted]
        if self.choices and converted is not None:
            for item in items:
                if item not in self.choices:
                    accepted = ", ".join(repr(c) for c in self.choices)
                    raise RecipeError(
                        f"invalid value for {self.name!r} {source}: {value!r}; expected one of {accepted}"
                    )
        if self.accepts is not None:
            for item in items:
                if isinstance(item, (int, float)) and not isinstance(item, bool) and not self.accepts(item):
                    kind = "a number" if "a number" in _describe(self.hint) else "an integer"
                    raise RecipeError(
                        f"invalid value for {self.name!r} {source}: {value!r}; expected {kind} {self.accepts}"
                    )
        return converted


# ------------------------------------------------------------------------------------------- parser


class RecipeParser(HfArgumentParser):
    """`HfArgumentParser` that reads an optional leading ``recipe.yaml`` and lets the CLI override it.

    Abbreviated options are not accepted (``--learning_rat`` is an unknown key, not ``--learning_rate``);
    every value is checked by `_Key.check` before any dataclass is built. A field's ``aliases`` (dataclass field
    metadata, e.g. ``["--max_seq_length"]``) are old names of its key: they are still accepted, in the YAML and on
    the command line, with a `FutureWarning` naming the new key.
    """

    def __init__(self, dataclass_types: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("exit_on_error", False)
        super().__init__(dataclass_types, **kwargs)
        self.keys: dict[str, _Key] = {}
        for dtype in self.dataclass_types:
            hints = typing.get_type_hints(dtype)
            ranges = TRAINING_ARGUMENT_RANGES if issubclass(dtype, TrainingArguments) else {}
            for f in dataclasses.fields(dtype):
                if f.init:
                    action = next(a for a in self._actions if a.dest == f.name)
                    accepts = f.metadata.get("accepts", ranges.get(f.name))
                    self.keys[f.name] = _Key(f.name, dtype, hints[f.name], action.choices, accepts)
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


def check_training_steps(values: dict[str, Any], keys: dict[str, _Key]) -> None:
    """A run must train: ``num_train_epochs > 0`` unless ``max_steps >= 1`` sets the length instead."""
    if "num_train_epochs" not in keys or "max_steps" not in keys:
        return
    fields = {f.name: f for f in dataclasses.fields(keys["num_train_epochs"].dtype)}
    epochs = values.get("num_train_epochs", fields["num_train_epochs"].default)
    max_steps = values.get("max_steps", fields["max_steps"].default)
    if max_steps <= 0 and epochs <= 0:
        raise RecipeError(
            f"invalid value for 'num_train_epochs': {epochs!r}; expected a number > 0 (or max_steps >= 1), "
            "else nothing would be trained"
        )


RESUME_LAST = ("last", "true")


def check_resume_checkpoint(value: str | None) -> None:
    """``resume_from_checkpoint``: unset, ``last`` (the newest checkpoint in ``output_dir``) or a folder that exists."""
    if value is None or str(value).lower() in ("", "false", "none", "null", *RESUME_LAST):
        return
    if not os.path.isdir(value):
        raise RecipeError(
            f"checkpoint not found: {value!r} (resume_from_checkpoint: a checkpoint folder, or 'last' for the newest "
            "one in output_dir)"
        )


def check_writable(folder: str | os.PathLike) -> None:
    """Fail early if ``folder`` (or, where it does not exist yet, its nearest existing parent) cannot be written.

    Raises the `OSError` (``EACCES``, ``EROFS``, ...) with ``folder`` as its filename, so that the CLI
    reports an environment failure naming it; a file in the way is a `RecipeError`.
    """
    path = Path(folder).absolute()
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise RecipeError(f"output_dir {str(folder)!r} cannot be created: {str(existing)!r} is a file")
    try:
        fd, probe = tempfile.mkstemp(dir=existing, prefix=".hfsent-write-check-")
    except OSError as err:
        raise OSError(err.errno, f"output folder not writable ({err.strerror})", str(path)) from err
    os.close(fd)
    os.unlink(probe)


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
