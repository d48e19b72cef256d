"""``hfsent pretrain <recipe>.yaml [--key value ...]``: pretrain or continue pretraining a BERT encoder (MLM) or a
decoder (``objective: causal_lm``)."""

from __future__ import annotations

import sys

from ..recipe import run_recipe_command

PROG = "hfsent pretrain"
DESCRIPTION = (
    "MLM-pretrain a BERT from scratch (config_name + config_overrides + tokenizer_name) or continue pretraining "
    "a checkpoint (model_name_or_path) on text files or Hub datasets; with objective causal_lm, a GPT-2, Qwen2 or "
    "Llama decoder by next-token prediction. Keys of the recipe YAML are the options "
    "below; options given on the command line override the YAML."
)


def main(argv: list[str] | None = None) -> int:
    """Parse a recipe (YAML + CLI overrides) and pretrain; a bad recipe exits 2 with a one-line error."""
    from ..pretrain import PretrainDataArguments, PretrainModelArguments, run_pretraining
    from ..training_args import RunTrainingArguments

    code, parsed, metrics = run_recipe_command(
        PROG, (PretrainModelArguments, PretrainDataArguments, RunTrainingArguments), DESCRIPTION, run_pretraining, argv
    )
    if code == 0 and parsed[2].process_index == 0:
        if "eval_loss" in metrics:
            accuracy = f", masked-token accuracy {metrics['eval_accuracy']:.4f}" if "eval_accuracy" in metrics else ""
            print(f"held-out: loss {metrics['eval_loss']:.4f}, perplexity {metrics['eval_perplexity']:.2f}{accuracy}")
        print(f"model, tokenizer and results saved to {parsed[2].output_dir}")
    return code


if __name__ == "__main__":
    sys.exit(main())
