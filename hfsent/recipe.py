"""Recipes: a YAML file of arguments with command-line overrides on top (the CLI wins), parsed into the recipe's
dataclasses (`RecipeParser`), run (`run_recipe_command`) and saved resolved (`save_recipe`).

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
import re
import sys
import types
import typing
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml
from transformers import HfArgumentParser, TrainingArguments

from .checkpoints import check_resume_value
from .errors import FILE_SYSTEM_ERRNOS, RecipeError, environment_error, first_line, report_error
from .outputs import RECIPE_FILE
from .validation import TRAINING_ARGUMENT_RANGES, RecipeKey, check_training_steps, check_writable

# a `%` that argparse would read as a format: not `%%` (escaped) nor `%(name)s` (argparse's own fields)
_BARE_PERCENT = re.compile(r"(?<!%)%(?![%(])")


# A recipe file is a few kilobytes; these bound what loading any YAML file of a run costs (time and memory).
MAX_RECIPE_BYTES = 1 << 20
MAX_YAML_VALUES = 100_000  # values (scalars, lists, mappings) the document holds once its aliases are expanded


class YAMLLimitError(yaml.MarkedYAMLError):
    """A YAML document hfsent refuses to load (duplicate key, aliases expanding too far); marks the line."""

    def __init__(self, problem: str, mark: yaml.Mark | None) -> None:
        super().__init__(problem=problem, problem_mark=mark)


class _BoundedLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` that refuses duplicate keys and documents whose aliases expand beyond `MAX_YAML_VALUES`."""

    def compose_document(self) -> yaml.Node:
        node = super().compose_document()
        _expanded_size(node, {}, set())
        return node

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                key = (key_node.tag, key_node.value)
                if key in seen:
                    first = seen[key].start_mark.line + 1
                    raise YAMLLimitError(
                        f"key {key_node.value!r} is given twice (first at line {first}); give each key once",
                        key_node.start_mark,
                    )
                seen[key] = key_node
        return super().construct_mapping(node, deep=deep)


def _expanded_size(node: yaml.Node, sizes: dict[int, int], open_nodes: set[int]) -> int:
    """How many values ``node`` holds with every alias expanded; `YAMLLimitError` beyond `MAX_YAML_VALUES`."""
    if id(node) in sizes:
        return sizes[id(node)]
    if id(node) in open_nodes:
        raise YAMLLimitError("an alias refers to the value that holds it (a recursive value)", node.start_mark)
    open_nodes.add(id(node))
    size = 1
    if isinstance(node, yaml.SequenceNode):
        size += sum(_expanded_size(child, sizes, open_nodes) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        size += sum(_expanded_size(k, sizes, open_nodes) + _expanded_size(v, sizes, open_nodes) for k, v in node.value)
    if size > MAX_YAML_VALUES:
        raise YAMLLimitError(
            f"the value here holds more than {MAX_YAML_VALUES} values once its aliases (*name) are expanded; "
            "write the values out",
            node.start_mark,
        )
    open_nodes.discard(id(node))
    sizes[id(node)] = size
    return size


def safe_yaml_load(text: str) -> Any:
    """`yaml.safe_load`, bounded: a key given twice, an alias that expands beyond `MAX_YAML_VALUES` values (an
    alias bomb) or a recursive alias raise `YAMLLimitError`; values nested too deeply raise `yaml.YAMLError`.
    Every YAML file hfsent reads (recipes, a run's ``recipe.yaml``) goes through here."""
    try:
        return yaml.load(text, Loader=_BoundedLoader)  # a SafeLoader
    except RecursionError:
        raise yaml.YAMLError("values nested too deeply") from None


def load_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """Read a recipe YAML file into a dict, with clear errors for a missing, oversized or malformed file (a key
    given twice, aliases expanding beyond `MAX_YAML_VALUES` values: see `safe_yaml_load`)."""
    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"recipe file not found: {str(path)!r}")
    if path.stat().st_size > MAX_RECIPE_BYTES:
        raise RecipeError(
            f"recipe file {str(path)!r} is {path.stat().st_size} bytes; a recipe may hold at most {MAX_RECIPE_BYTES}"
        )
    try:
        data = safe_yaml_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        mark = getattr(err, "problem_mark", None)
        if isinstance(err, YAMLLimitError):
            raise RecipeError(f"recipe file {str(path)!r}, line {mark.line + 1}: {err.problem}") from None
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise RecipeError(f"recipe file {str(path)!r} is not valid UTF-8 YAML{at}: {first_line(err)}") from None
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
        metadata = dict(field.metadata)
        metadata.pop("accepts", None)  # hfsent's range annotation: not an argparse keyword
        if isinstance(metadata.get("help"), str):  # argparse expands `%` in help texts: "95% of" is not a format
            metadata["help"] = _BARE_PERCENT.sub("%%", metadata["help"])
        if metadata != dict(field.metadata):
            field = copy.copy(field)
            field.metadata = types.MappingProxyType(metadata)
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
        given: dict[str, str] = {}
        for arg in argv:  # argparse keeps the last of a key given twice: refuse it, as in YAML
            action = self._option_string_actions.get(arg.split("=", 1)[0]) if arg.startswith("--") else None
            if action is not None and action.dest != "help":
                option = arg.split("=", 1)[0]
                if action.dest in given:
                    raise RecipeError(
                        f"{action.dest!r} is given twice on the command line ({given[action.dest]} and {option}): "
                        "give each key once"
                    )
                given[action.dest] = option
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


def recipe_parser(prog: str, dataclass_types: Sequence[type], description: str) -> RecipeParser:
    """The parser of the recipe command ``prog`` (``hfsent train``): its usage line, description and keys."""
    return RecipeParser(
        dataclass_types, prog=prog, usage=f"{prog} [recipe.yaml] [--key value ...]", description=description
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
    parser = recipe_parser(prog, dataclass_types, description)
    try:
        parsed = parser.parse_recipe(sys.argv[1:] if argv is None else argv)
        training_args = next((a for a in parsed if isinstance(a, TrainingArguments)), None)
        output_dir = training_args.output_dir if training_args is not None else None
        if training_args is not None:
            check_resume_value(training_args.resume_from_checkpoint)
        if output_dir:
            check_writable(output_dir)
        try:
            return 0, parsed, run(*parsed)
        except Exception as err:
            env = environment_error(err)
            if env is None or env.filename or not output_dir or env.errno not in FILE_SYSTEM_ERRNOS:
                raise
            # a writer that does not say where (safetensors): name the folder the run writes to (a network
            # failure, such as the Hub unreachable for push_to_hub, is not the folder's and keeps its own message)
            raise OSError(env.errno, f"{env.strerror} while writing", str(output_dir)) from err
    except RecipeError as err:
        report_error(prog, str(err))
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
