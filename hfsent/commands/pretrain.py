"""``hfsent pretrain <recipe>.yaml [--key value ...]``: pretrain or continue pretraining a BERT encoder (MLM) or a
decoder (``objective: causal_lm``)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from ..recipe_help import is_help_request, print_recorded_help

if TYPE_CHECKING:
    from ..recipe import RecipeParser

PROG = "hfsent pretrain"
DESCRIPTION = (
    "MLM-pretrain a BERT from scratch (config_name + config_overrides + tokenizer_name) or continue pretraining "
    "a checkpoint (model_name_or_path) on text files or Hub datasets; with objective causal_lm, a GPT-2, Qwen2 or "
    "Llama decoder by next-token prediction. Keys of the recipe YAML are the options "
    "below; options given on the command line override the YAML."
)


def recipe_dataclasses() -> tuple[type, ...]:
    """The dataclasses a recipe of ``hfsent pretrain`` parses into (importing them imports torch)."""
    from ..pretrain import PretrainDataArguments, PretrainModelArguments
    from ..training_args import RunTrainingArguments

    return PretrainModelArguments, PretrainDataArguments, RunTrainingArguments


def build_parser() -> RecipeParser:
    """The ``hfsent pretrain`` parser, from its dataclasses (``--help`` prints it as recorded: `hfsent.recipe_help`)."""
    from ..recipe import recipe_parser

    return recipe_parser(PROG, recipe_dataclasses(), DESCRIPTION)


def main(argv: list[str] | None = None) -> int:
    """Parse a recipe (YAML + CLI overrides) and pretrain; a bad recipe exits 2 with a one-line error."""
    argv = sys.argv[1:] if argv is None else argv
    if is_help_request(argv):
        print_recorded_help(PROG)  # exits; returns when the help must be rendered from the dataclasses
    from ..pretrain import run_pretraining
    from ..recipe import run_recipe_command

    code, parsed, metrics = run_recipe_command(PROG, recipe_dataclasses(), DESCRIPTION, run_pretraining, argv)
    if code == 0 and parsed[2].process_index == 0:
        if "eval_loss" in metrics:
            accuracy = f", masked-token accuracy {metrics['eval_accuracy']:.4f}" if "eval_accuracy" in metrics else ""
            print(f"held-out: loss {metrics['eval_loss']:.4f}, perplexity {metrics['eval_perplexity']:.2f}{accuracy}")
        print(f"model, tokenizer and results saved to {parsed[2].output_dir}")
    return code


if __name__ == "__main__":
    sys.exit(main())
