"""``hfsent train --help`` and ``hfsent pretrain --help`` without importing torch.

A recipe command's options are rendered from its dataclasses (`hfsent.recipe.RecipeParser`), which subclass
`transformers.TrainingArguments`; importing that imports torch, which takes seconds to tens of seconds. So what
argparse prints of each option (option strings, metavar, nargs, choices, default, help) and of the parser (prog,
usage, description, groups) is recorded in ``recipe_help.json`` when hfsent is built (``make recipe-help``, which
runs ``.ci/recipe_help.py``). ``--help`` rebuilds a plain argparse parser from the record and argparse formats it
as it formats the live parser: for the terminal's width and the running Python, so the text is the same. The record
is used only when it was made with this hfsent and this transformers version; otherwise the help is rendered live
from the dataclasses. tests/cli/test_help.py checks that the record matches the live parsers.
"""

from __future__ import annotations

import argparse
import json
from importlib import metadata
from pathlib import Path
from typing import Any

# the commands whose help is recorded: each module's ``build_parser()`` is its live parser
RECIPE_COMMANDS = ("train", "pretrain")
RECORD_FILE = Path(__file__).with_name("recipe_help.json")
# action attributes argparse's help formatting reads as values (every other attribute it reads as `%(name)s` text)
_VALUES = ("option_strings", "dest", "nargs", "choices", "required", "help", "metavar")
_SUPPRESS = {"suppress": True}  # argparse.SUPPRESS, which argparse tells apart by identity
_SET_WHEN_ADDED = ("container",)  # what argparse sets on an action when it is added to a parser or group


def versions() -> dict[str, str]:
    """The versions a record holds for: hfsent's and transformers' (read without importing transformers)."""
    from . import __version__

    try:
        transformers = metadata.version("transformers")
    except metadata.PackageNotFoundError:
        transformers = ""
    return {"hfsent": __version__, "transformers": transformers}


def _text(value: Any) -> str:
    """What argparse's ``%(name)s`` prints for an attribute's value (a callable's ``__name__``)."""
    return str(value.__name__) if hasattr(value, "__name__") else str(value)


def _describe_action(action: argparse.Action) -> dict[str, Any]:
    described: dict[str, Any] = {}
    for name, value in vars(action).items():
        if name in _SET_WHEN_ADDED:
            continue
        if value is argparse.SUPPRESS:
            described[name] = _SUPPRESS
        elif name == "choices":
            described[name] = None if value is None else [str(choice) for choice in value]
        elif name == "metavar" and isinstance(value, tuple):
            described[name] = {"tuple": list(value)}
        elif name in _VALUES:
            described[name] = value
        else:
            described[name] = None if value is None else _text(value)
    return described


def describe_parser(parser: argparse.ArgumentParser) -> dict[str, Any]:
    """What ``parser.format_help()`` reads, as JSON-able data (`rebuild_parser` makes a parser of it)."""
    formatter = parser.formatter_class
    if formatter.__module__ != "argparse":
        raise ValueError(f"cannot record a parser formatted by {formatter.__module__}.{formatter.__qualname__}")
    defaults = {id(parser._positionals): "positionals", id(parser._optionals): "optionals"}
    return {
        "prog": parser.prog,
        "usage": parser.usage,
        "description": parser.description,
        "epilog": parser.epilog,
        "prefix_chars": parser.prefix_chars,
        "formatter_class": formatter.__qualname__,
        "groups": [
            {
                "default": defaults.get(id(group)),
                "title": group.title,
                "description": group.description,
                "actions": [_describe_action(action) for action in group._group_actions],
            }
            for group in parser._action_groups
        ],
    }


def _restore(name: str, value: Any) -> Any:
    if value == _SUPPRESS:
        return argparse.SUPPRESS
    if name == "metavar" and isinstance(value, dict):
        return tuple(value["tuple"])
    return value


def rebuild_parser(described: dict[str, Any]) -> argparse.ArgumentParser:
    """A plain argparse parser whose ``format_help()`` is that of the parser `describe_parser` described."""
    parser = argparse.ArgumentParser(
        prog=described["prog"],
        usage=described["usage"],
        description=described["description"],
        epilog=described["epilog"],
        prefix_chars=described["prefix_chars"],
        formatter_class=getattr(argparse, described["formatter_class"]),
        add_help=False,
    )
    groups = []
    for group_described in described["groups"]:
        if group_described["default"] == "positionals":
            group = parser._positionals
        elif group_described["default"] == "optionals":
            group = parser._optionals
        else:
            group = parser.add_argument_group(group_described["title"], group_described["description"])
        for action_described in group_described["actions"]:
            action = argparse.Action(action_described["option_strings"], action_described["dest"])
            vars(action).update({name: _restore(name, value) for name, value in action_described.items()})
            group._add_action(action)
        groups.append(group)
    parser._action_groups[:] = groups
    return parser


def write_record(parsers: list[argparse.ArgumentParser], path: Path = RECORD_FILE) -> Path:
    """Record ``parsers`` (keyed by prog) with `versions` in ``path``."""
    record = {"versions": versions(), "parsers": {parser.prog: describe_parser(parser) for parser in parsers}}
    path.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def recorded_parser(prog: str, path: Path = RECORD_FILE) -> argparse.ArgumentParser | None:
    """The parser of ``prog`` rebuilt from the record; None when there is none for this hfsent and transformers."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if record.get("versions") != versions() or prog not in record.get("parsers", {}):
        return None
    return rebuild_parser(record["parsers"][prog])


def is_help_request(argv: list[str]) -> bool:
    """Whether ``argv`` asks for the help alone (``--help`` or ``-h``), which `print_recorded_help` answers."""
    return list(argv) in (["-h"], ["--help"])


def print_recorded_help(prog: str) -> None:
    """Print ``prog``'s help from the record and exit 0 as argparse does; return when there is no usable record."""
    parser = recorded_parser(prog)
    if parser is not None:
        parser.print_help()
        raise SystemExit(0)
