"""Recipe value validation: every value, from a YAML file or the command line, checked against its dataclass
field's type, choices and accepted range before any data or model loads (one home, used by ``hfsent train`` and
``hfsent pretrain``). A value that fails raises a `RecipeError` naming the key, the value and what is accepted.
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import math
import os
import tempfile
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from transformers.hf_argparser import string_to_bool

from .errors import RecipeError

# ------------------------------------------------------------------------------------------ ranges


@dataclasses.dataclass(frozen=True)
class Accepts:
    """The values a numeric recipe key accepts: ``low``/``high`` bounds (inclusive unless ``*_open``).

    Put one in a dataclass field's metadata (``metadata={"help": ..., "accepts": at_least(1)}``), or in
    `TRAINING_ARGUMENT_RANGES` for `TrainingArguments` fields; `RecipeParser` checks it before any work.
    ``also`` lists single values accepted besides the range (``-1`` for "not set"). NaN is never accepted, and
    infinities only with ``infinite=True`` (a key whose range really takes one).
    """

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    also: tuple[Any, ...] = ()
    infinite: bool = False

    def __call__(self, value: Any) -> bool:
        """Whether ``value`` (a number, or None for an optional key) is accepted."""
        if value is None or value in self.also:
            return True
        if isinstance(value, float) and (math.isnan(value) or (math.isinf(value) and not self.infinite)):
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
class RecipeKey:
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
        if any(isinstance(item, float) and not math.isfinite(item) for item in items) and not (
            self.accepts is not None and self.accepts.infinite
        ):
            # NaN or infinity: training would run on NaN (every float key, with or without a range)
            raise RecipeError(f"invalid value for {self.name!r} {source}: {value!r}; expected a finite number")
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


def check_training_steps(values: dict[str, Any], keys: dict[str, RecipeKey]) -> None:
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
