"""Recipe help texts print as written (every command's ``--help`` runs in tests/docs/test_docs.py)."""

from __future__ import annotations

import pytest


def test_recipe_help_prints_percent_signs_of_help_texts():
    """A recipe key's help text with a bare `%` ("95% of") once made `hfsent train --help` crash (argparse formats
    help texts with `%`): the parser escapes them, so any help text prints as written."""
    from dataclasses import dataclass, field

    from hfsent.recipe import RecipeParser

    @dataclass
    class Keys:
        share: float = field(default=0.5, metadata={"help": "kept on 95% of resamples; 20%% faster; %(default)s"})

    help_text = " ".join(RecipeParser((Keys,), prog="hfsent x").format_help().split())
    assert "kept on 95% of resamples; 20% faster; 0.5" in help_text


RECIPE_COMMANDS = ("train", "pretrain")


def _live_parser(command: str):
    """The command's parser as `hfsent.recipe.RecipeParser` builds it from the recipe dataclasses."""
    import importlib

    from hfsent.cli import COMMANDS

    return importlib.import_module(COMMANDS[command][0]).build_parser()


@pytest.mark.parametrize("columns", ["50", "80", "200"])
@pytest.mark.parametrize("command", RECIPE_COMMANDS)
def test_recorded_recipe_help_is_the_live_help(command, columns, monkeypatch):
    """``hfsent train/pretrain --help`` prints from hfsent/recipe_help.json (no torch import): that record is made
    for this hfsent and transformers, and argparse formats it as it formats the live parser, at any width."""
    from hfsent.recipe_help import recorded_parser

    monkeypatch.setenv("COLUMNS", columns)
    recorded = recorded_parser(f"hfsent {command}")
    assert recorded is not None, "hfsent/recipe_help.json is missing or for other versions: run `make recipe-help`"
    assert recorded.format_help() == _live_parser(command).format_help(), "run `make recipe-help`"


@pytest.mark.parametrize("command", RECIPE_COMMANDS)
def test_recipe_help_through_the_cli(command, capsys, monkeypatch):
    from hfsent.cli import main

    monkeypatch.setenv("COLUMNS", "100")
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    out, err = capsys.readouterr()
    assert out == _live_parser(command).format_help() and err == ""


def test_a_record_for_other_versions_is_not_used(tmp_path):
    """A record made with another transformers (or hfsent) version is ignored: the help is then rendered live."""
    import json

    from hfsent.recipe_help import recorded_parser, write_record

    path = write_record([_live_parser("train")], tmp_path / "recipe_help.json")
    assert recorded_parser("hfsent train", path) is not None
    assert recorded_parser("hfsent pretrain", path) is None  # not recorded
    record = json.loads(path.read_text(encoding="utf-8"))
    record["versions"]["transformers"] = "0.0.1"
    path.write_text(json.dumps(record), encoding="utf-8")
    assert recorded_parser("hfsent train", path) is None
