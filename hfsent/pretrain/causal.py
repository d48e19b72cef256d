"""Causal-LM pretraining of a decoder (``objective: causal_lm``): its tokenizer and its held-out metrics.

A BERT vocabulary (bert-base-chinese) has no BOS/EOS. `causal_lm_tokenizer` makes it a decoder's tokenizer
the GPT-2 way: ``[SEP]`` is the document separator, BOS and EOS at once; ``[PAD]`` pads; and encoding a
text adds no special token (BERT's ``[CLS] text [SEP]`` would end every prompt with the end of a document).
It is saved as a generic ``TokenizersBackend`` (``BertTokenizer`` would rebuild its post-processor on load; the name
written is ``PreTrainedTokenizerFast``, which transformers 4 loads too: `hfsent.tokenizer.portable_tokenizer`),
so that ``pipeline("text-generation")`` continues a prompt as the model was trained.
"""

from __future__ import annotations

import logging
import math
import tempfile

from tokenizers.processors import TemplateProcessing
from transformers import AutoTokenizer, PretrainedConfig, PreTrainedTokenizerBase, TokenizersBackend, Trainer

from ..errors import RecipeError
from ..tokenizer import portable_tokenizer

logger = logging.getLogger("hfsent")


def causal_lm_tokenizer(tokenizer: PreTrainedTokenizerBase) -> PreTrainedTokenizerBase:
    """``tokenizer`` ready for causal LM: it has an EOS (a BERT vocabulary's ``[SEP]``, also BOS) and a pad token.

    A tokenizer with an EOS is returned as is, given a pad token if it has none (its EOS: GPT-2's convention).
    A BERT tokenizer becomes a `TokenizersBackend` over the same vocabulary that adds no special token.
    Raises `RecipeError` for a tokenizer with neither EOS nor ``[SEP]``.
    """
    if tokenizer.eos_token is None:
        if tokenizer.sep_token is None or not tokenizer.is_fast:
            raise RecipeError(
                "the tokenizer has no eos_token (nor a [SEP] and a tokenizer.json): causal_lm needs a document "
                "separator"
            )
        backend = tokenizer.backend_tokenizer
        backend.post_processor = TemplateProcessing(
            single="$A",
            pair=f"$A {tokenizer.sep_token} $B",
            special_tokens=[(tokenizer.sep_token, tokenizer.sep_token_id)],
        )
        specials = {
            key: getattr(tokenizer, key)
            for key in ("unk_token", "pad_token", "cls_token", "mask_token")
            if getattr(tokenizer, key) is not None
        }
        tokenizer = TokenizersBackend(
            tokenizer_object=backend,
            bos_token=tokenizer.sep_token,
            eos_token=tokenizer.sep_token,
            sep_token=tokenizer.sep_token,
            model_max_length=tokenizer.model_max_length,
            padding_side="left",  # batched generation: prompts end where generation starts
            **specials,
        )
        tokenizer = portable_tokenizer(tokenizer)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
        logger.warning(
            "the tokenizer has no pad token: using its EOS %r (its loss is then not learnt)", tokenizer.eos_token
        )
    return tokenizer


# Text the reloaded tokenizer must encode as the training one did (Chinese, Latin, digits, punctuation)
PROBE_TEXT = "物流很快，质量不错。这个手机很好用! Hello world 2026"


def check_tokenizer_reloads(tokenizer: PreTrainedTokenizerBase, config: PretrainedConfig) -> None:
    """`RecipeError` unless ``AutoTokenizer`` reloads ``tokenizer`` saved beside ``config`` as the same tokenizer.

    transformers picks the tokenizer class of some model types whatever ``tokenizer_config.json`` says: a
    ``qwen2`` folder always loads ``Qwen2Tokenizer`` (byte-level BPE), which reads a WordPiece vocabulary such
    as bert-base-chinese's into other ids. Such a checkpoint would generate garbage in ``pipeline("text-generation")``,
    so it fails before training (one round trip through a temporary folder).
    """
    with tempfile.TemporaryDirectory(prefix="hfsent-tokenizer-") as folder:
        config.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        reloaded = AutoTokenizer.from_pretrained(folder)
    if (
        reloaded(PROBE_TEXT, add_special_tokens=False)["input_ids"]
        != tokenizer(PROBE_TEXT, add_special_tokens=False)["input_ids"]
    ):
        raise RecipeError(
            f"invalid value for 'tokenizer_name': transformers reloads a {config.model_type!r} checkpoint's tokenizer "
            f"as {type(reloaded).__name__}, which reads this {type(tokenizer).__name__} vocabulary into other ids; "
            "use model_type gpt2 or llama with this vocabulary, or a tokenizer made for the model"
        )


def special_token_ids(tokenizer: PreTrainedTokenizerBase) -> dict[str, int]:
    """The config keys (``bos_token_id``, ``eos_token_id``, ``pad_token_id``) a decoder gets from its tokenizer."""
    return {
        "bos_token_id": tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }


def evaluate_causal_lm(trainer: Trainer, dataset, metric_key_prefix: str = "eval") -> dict[str, float]:
    """Held-out next-token metrics: ``{prefix}_loss`` (mean cross-entropy per predicted token; every block is full,
    so the Trainer's per-sequence mean is the per-token one), ``{prefix}_perplexity`` (``exp`` of it) and
    ``{prefix}_samples``."""
    metrics = trainer.evaluate(dataset, metric_key_prefix=metric_key_prefix)
    loss = metrics[f"{metric_key_prefix}_loss"]
    return {
        f"{metric_key_prefix}_loss": loss,
        f"{metric_key_prefix}_perplexity": math.exp(min(loss, 700.0)),
        f"{metric_key_prefix}_samples": len(dataset),
    }


__all__ = ["causal_lm_tokenizer", "check_tokenizer_reloads", "evaluate_causal_lm", "special_token_ids"]
