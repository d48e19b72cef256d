"""``hfsent train <recipe>.yaml [--key value ...]``: fine-tune an hfsent sentiment model."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from ..errors import report_error
from ..recipe_help import is_help_request, print_recorded_help

if TYPE_CHECKING:
    from ..recipe import RecipeParser

PROG = "hfsent train"
DESCRIPTION = (
    "Fine-tune a sentiment classifier (one label, many labels or text pairs) on a BERT encoder, or on a RoBERTa, "
    "XLM-R, ERNIE, DeBERTa-v2, GPT-2, Qwen2 or Llama backbone. Keys of the recipe YAML are the options below; "
    "options given on the command line override the YAML."
)


def recipe_dataclasses() -> tuple[type, ...]:
    """The dataclasses a recipe of ``hfsent train`` parses into (importing them imports torch)."""
    from ..finetune import DataArguments, HfSentTrainingArguments, ModelArguments

    return ModelArguments, DataArguments, HfSentTrainingArguments


def build_parser() -> RecipeParser:
    """The ``hfsent train`` parser, from its dataclasses (``--help`` prints it as recorded: `hfsent.recipe_help`)."""
    from ..recipe import recipe_parser

    return recipe_parser(PROG, recipe_dataclasses(), DESCRIPTION)


def main(argv: list[str] | None = None) -> int:
    """Parse a recipe (YAML + CLI overrides) and fine-tune; bad input exits 2 with a one-line error."""
    argv = sys.argv[1:] if argv is None else argv
    if is_help_request(argv):
        print_recorded_help(PROG)  # exits; returns when the help must be rendered from the dataclasses
    from ..finetune import finetune, format_results
    from ..hub import HubError
    from ..recipe import run_recipe_command

    try:
        code, parsed, results = run_recipe_command(PROG, recipe_dataclasses(), DESCRIPTION, finetune, argv)
    except HubError as err:  # push_to_hub: no token (every process, before training) or a failed push (model saved)
        report_error(PROG, str(err))  # no token: alike on every process; a push: rank 0 alone
        return 1
    if code == 0 and parsed[2].process_index == 0:
        print(format_results(results))
        print(f"model and results saved to {parsed[2].output_dir}")
    return code


if __name__ == "__main__":
    sys.exit(main())
