"""``hfsent pretrain <recipe>.yaml [--key value ...]``: MLM-pretrain or continue pretraining a BERT encoder."""

from __future__ import annotations

import sys

from ..recipe import RecipeError, RecipeParser

PROG = "hfsent pretrain"


def main(argv: list[str] | None = None) -> int:
    """Parse a recipe (YAML + CLI overrides) and pretrain; a bad recipe exits 2 with a one-line error."""
    from transformers import TrainingArguments

    from ..pretrain import PretrainDataArguments, PretrainModelArguments, run_pretraining

    parser = RecipeParser(
        (PretrainModelArguments, PretrainDataArguments, TrainingArguments),
        prog=PROG,
        usage=f"{PROG} [recipe.yaml] [--key value ...]",
        description="MLM-pretrain a BERT from scratch (config_name + config_overrides + tokenizer_name) or continue "
        "pretraining a checkpoint (model_name_or_path) on text files or Hub datasets. Keys of the recipe YAML are "
        "the options below; options given on the command line override the YAML.",
    )
    try:
        args = parser.parse_recipe(sys.argv[1:] if argv is None else argv)
        metrics = run_pretraining(*args)
    except RecipeError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    training_args = args[2]
    if training_args.process_index == 0:
        if "eval_loss" in metrics:
            print(
                f"held-out: loss {metrics['eval_loss']:.4f}, perplexity {metrics['eval_perplexity']:.2f}, "
                f"masked-token accuracy {metrics['eval_accuracy']:.4f}"
            )
        print(f"model, tokenizer and results saved to {training_args.output_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
