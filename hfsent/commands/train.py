"""``hfsent train <recipe>.yaml [--key value ...]``: fine-tune an hfsent sentiment model."""

from __future__ import annotations

import sys

from ..errors import report_error
from ..finetune import DataArguments, HfSentTrainingArguments, ModelArguments, finetune, format_results
from ..hub import HubError
from ..recipe import run_recipe_command

PROG = "hfsent train"
DESCRIPTION = (
    "Fine-tune a BERT sentiment classifier. Keys of the recipe YAML are the options below; "
    "options given on the command line override the YAML."
)


def main(argv: list[str] | None = None) -> int:
    """Parse a recipe (YAML + CLI overrides) and fine-tune; bad input exits 2 with a one-line error."""
    try:
        code, parsed, results = run_recipe_command(
            PROG, (ModelArguments, DataArguments, HfSentTrainingArguments), DESCRIPTION, finetune, argv
        )
    except HubError as err:  # push_to_hub: no token (every process, before training) or a failed push (model saved)
        report_error(PROG, str(err))  # no token: alike on every process; a push: rank 0 alone
        return 1
    if code == 0 and parsed[2].process_index == 0:
        print(format_results(results))
        print(f"model and results saved to {parsed[2].output_dir}")
    return code


if __name__ == "__main__":
    sys.exit(main())
