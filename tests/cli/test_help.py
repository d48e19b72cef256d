"""Recipe help texts print as written (every command's ``--help`` runs in tests/docs/test_docs.py)."""

from __future__ import annotations


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
