"""``hfsent train <recipe>.yaml [--key value ...]``: fine-tune an hfsent sentiment model."""

from __future__ import annotations

import sys

from ..data import DataArguments
from ..hub import HubError
from ..recipe import RecipeError, RecipeParser
from ..training import HfSentTrainingArguments, ModelArguments, finetune, format_results

PROG = "hfsent train"


def main(argv: list[str] | None = None) -> int:
    """Parse a recipe (YAML + CLI overrides) and fine-tune; bad input exits 2 with a one-line error."""
    parser = RecipeParser(
        (ModelArguments, DataArguments, HfSentTrainingArguments),
        prog=PROG,
        usage=f"{PROG} [recipe.yaml] [--key value ...]",
        description="Fine-tune a BERT sentiment classifier. Keys of the recipe YAML are the options below; "
        "options given on the command line override the YAML.",
    )
    try:
        model_args, data_args, training_args = parser.parse_recipe(sys.argv[1:] if argv is None else argv)
        results = finetune(model_args, data_args, training_args)
    except RecipeError as err:  # DataError and ModelError are RecipeErrors
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    except HubError as err:  # push_to_hub: no token (before training) or a failed push (model saved)
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 1
    if training_args.process_index == 0:
        print(format_results(results))
        print(f"model and results saved to {training_args.output_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
