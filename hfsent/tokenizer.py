"""Tokenizer loading with the fixes BERT checkpoints need."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

from transformers import AutoTokenizer, PreTrainedTokenizerBase, TokenizersBackend

DEFAULT_MODEL_MAX_LENGTH = 512

# transformers 5 saves its generic fast tokenizer (a tokenizer.json with no class of its own: a byte-level BPE made with
# `tokenizers`, causal-LM pretraining's) as ``tokenizer_class: TokenizersBackend``, a name transformers 4 (4.51.3 runs
# Inference Endpoints' toolkit) does not know. Saved under this subclass's name it reads ``PreTrainedTokenizerFast``,
# which transformers 4 loads from the same tokenizer.json and transformers 5 as its alias of `TokenizersBackend`.
PreTrainedTokenizerFast = type(
    "PreTrainedTokenizerFast",
    (TokenizersBackend,),
    {"__module__": __name__, "__doc__": "`TokenizersBackend`, saved under the name every transformers version loads."},
)


def encode_pairs(
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    pairs: Sequence[str],
    max_length: int | None,
    truncation: str = "only_second",
) -> tuple[list[list[int]], list[list[int]] | None]:
    """The ``input_ids`` and ``token_type_ids`` of each text pair ``[CLS] text [SEP] pair [SEP]`` (``token_type_ids``
    None from a tokenizer that gives none: GPT-2's, RoBERTa's), cut to ``max_length`` by ``truncation`` (the pair
    side with ``only_second``: inference, as the handler's `model_logits`; fine-tuning passes its recipe's), or on
    both sides where the side it names is too short to cut (a first text alone longer than ``max_length``)."""

    def encode(first: list[str], second: list[str], how: bool | str) -> dict:
        return tokenizer(first, second, truncation=how, max_length=max_length, return_attention_mask=False)

    if max_length is None:
        encoded = encode(list(texts), list(pairs), False)
        return encoded["input_ids"], encoded.get("token_type_ids")
    try:
        encoded = encode(list(texts), list(pairs), truncation)
        return encoded["input_ids"], encoded.get("token_type_ids")
    except Exception:  # a side too short to cut (tokenizers' "Truncation error"): cut that pair's longest side
        rows = []
        for text, pair in zip(texts, pairs, strict=True):
            try:
                rows.append(encode([text], [pair], truncation))
            except Exception:
                rows.append(encode([text], [pair], True))
        types = [row["token_type_ids"][0] for row in rows] if "token_type_ids" in rows[0] else None
        return [row["input_ids"][0] for row in rows], types


def portable_tokenizer(tokenizer: PreTrainedTokenizerBase) -> PreTrainedTokenizerBase:
    """``tokenizer``, saved from now on with a ``tokenizer_class`` transformers 4 and 5 both load: a generic
    `TokenizersBackend` becomes a `PreTrainedTokenizerFast` (same object, same behaviour); any other is left as is."""
    if type(tokenizer) is TokenizersBackend:
        tokenizer.__class__ = PreTrainedTokenizerFast
    return tokenizer


def load_tokenizer(
    name_or_path: str, model_max_length: int | None = None, require_pad_token: bool = True, **kwargs
) -> PreTrainedTokenizerBase:
    """Load a tokenizer (Hub id or local folder) with a usable ``model_max_length``.

    bert-base-chinese's tokenizer_config has no ``model_max_length`` (transformers then reports
    1e30, so truncation never happens): it is set to ``model_max_length`` or 512. A tokenizer without a pad
    token pads with its end-of-text token (a decoder's, such as GPT-2's: what transformers' docs do), else is refused
    unless ``require_pad_token`` is False (causal-LM pretraining packs blocks and pads nothing).
    """
    tokenizer = portable_tokenizer(AutoTokenizer.from_pretrained(name_or_path, **kwargs))
    if model_max_length is not None:
        tokenizer.model_max_length = model_max_length
    elif tokenizer.model_max_length is None or tokenizer.model_max_length > 100_000:
        tokenizer.model_max_length = DEFAULT_MODEL_MAX_LENGTH
    if tokenizer.pad_token is None and require_pad_token and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token  # padding is masked out: which token fills it does not matter
    elif tokenizer.pad_token is None and require_pad_token:
        raise ValueError(
            f"the tokenizer at {name_or_path!r} has no pad token (nor an end-of-text token to pad with); save it with "
            "`tokenizer.save_pretrained(dir)` rather than copying raw tokenizer files, or give it a pad_token"
        )
    if len(tokenizer) <= len(set(tokenizer.all_special_tokens)):  # a folder without vocab.txt/tokenizer.json
        raise ValueError(
            f"the tokenizer at {name_or_path!r} has no vocabulary (only its {len(tokenizer)} special tokens: every "
            "text would read as [UNK]); a tokenizer folder needs vocab.txt or tokenizer.json (save_pretrained)"
        )
    return tokenizer


def fit_tokenizer_to_model(
    tokenizer: PreTrainedTokenizerBase, config=None, limit: int | None = None
) -> PreTrainedTokenizerBase:
    """Cap ``tokenizer.model_max_length`` at the model's ``max_position_embeddings`` (from ``config``), or at
    ``limit`` (the positions a model was trained on); return the tokenizer.

    Every checkpoint hfsent writes saves its tokenizer after this, so that ``truncation=True`` (the stock
    ``pipeline("text-classification")``, Inference Endpoints) cuts long texts to what the model accepts: a
    model with 128 positions behind a tokenizer that says 512 fails on long inputs.
    """
    if limit is None:
        limit = getattr(config, "max_position_embeddings", None)
    if limit and (tokenizer.model_max_length is None or tokenizer.model_max_length > limit):
        tokenizer.model_max_length = limit
    return tokenizer


# Two one-token texts to probe how a tokenizer joins a text pair
PAIR_PROBE = ("甲", "乙")


def _split_around(ids: list[int], middle: list[int]) -> tuple[list[int], list[int]] | None:
    """The ids before and after the first run of ``middle`` in ``ids``; None where ``middle`` is not in it."""
    for i in range(len(ids) - len(middle) + 1):
        if ids[i : i + len(middle)] == middle:
            return ids[:i], ids[i + len(middle) :]
    return None


def joins_pairs_without_a_mark(tokenizer: PreTrainedTokenizerBase) -> bool:
    """Whether ``tokenizer`` encodes a text pair with the two texts' tokens back to back, no token between and no
    segment ids (GPT-2's, Qwen2's and Llama's tokenizers do): a model reading such pairs cannot tell where the first
    text ends."""
    first, second = PAIR_PROBE
    pair = tokenizer(first, second, add_special_tokens=True)
    alone = (
        tokenizer(first, add_special_tokens=False)["input_ids"]
        + tokenizer(second, add_special_tokens=False)["input_ids"]
    )
    return _split_around(pair["input_ids"], alone) is not None and len(set(pair.get("token_type_ids") or [0])) < 2


def mark_text_pairs(tokenizer: PreTrainedTokenizerBase) -> str | None:
    """Make a fast ``tokenizer`` that joins a text pair with nothing between (`joins_pairs_without_a_mark`) put its
    separator token (``sep_token``, else ``eos_token``: GPT-2's ``<|endoftext|>``) between the two texts, and
    return that token; None where it already marks pairs, or has no such token or no post-processor to change.

    A single text encodes as before (its special tokens, a Llama BOS say, are kept), a pair as
    ``<same prefix> text <mark> pair <same suffix>``. The change is the tokenizer's post-processor: it is saved in
    tokenizer.json, so the pipeline, the handler, ``hfsent predict`` and ONNX export encode pairs alike, on
    transformers 4 and 5.
    """
    from tokenizers import processors

    backend = getattr(tokenizer, "_tokenizer", None)
    mark = tokenizer.sep_token or tokenizer.eos_token
    if backend is None or mark is None or not joins_pairs_without_a_mark(tokenizer):
        return None
    first, second = (tokenizer(t, add_special_tokens=False)["input_ids"] for t in PAIR_PROBE)
    single = _split_around(tokenizer(PAIR_PROBE[0])["input_ids"], first)
    pair = _split_around(tokenizer(*PAIR_PROBE)["input_ids"], first + second)
    if single is None or pair is None:
        return None
    names = tokenizer.convert_ids_to_tokens
    special = {t: i for ids in (*single, *pair) for t, i in zip(names(ids), ids, strict=True)}
    special[mark] = tokenizer.convert_tokens_to_ids(mark)
    template = processors.TemplateProcessing(
        single=[*names(single[0]), "$A", *names(single[1])],
        pair=[*names(pair[0]), "$A", mark, "$B:1", *names(pair[1])],
        special_tokens=list(special.items()),
    )
    before = backend.post_processor
    # GPT-2's ByteLevel post-processor only trims offsets: kept, with the template after it
    backend.post_processor = (
        processors.Sequence([before, template]) if isinstance(before, processors.ByteLevel) else template
    )
    expected_single = single[0] + first + single[1]
    expected_pair = pair[0] + first + [special[mark]] + second + pair[1]
    if tokenizer(PAIR_PROBE[0])["input_ids"] != expected_single or tokenizer(*PAIR_PROBE)["input_ids"] != expected_pair:
        backend.post_processor = before  # a tokenizer this does not understand: left as it was
        return None
    return mark


def check_vocabulary(tokenizer: PreTrainedTokenizerBase, config, source: str) -> None:
    """A ValueError naming ``source`` when ``tokenizer`` gives ids past the model's embeddings (``config.vocab_size``):
    a tokenizer saved beside another model, whose texts would fail inside the model (an index out of range)."""
    vocabulary = getattr(config, "vocab_size", None)
    if vocabulary and len(tokenizer) > vocabulary:
        raise ValueError(
            f"the tokenizer in {source!r} has {len(tokenizer)} tokens but the model's vocab_size is {vocabulary}: "
            "save the tokenizer the model was trained with beside it"
        )


def load_recipe_tokenizer(name_or_path: str | None, **kwargs) -> PreTrainedTokenizerBase:
    """`load_tokenizer` for recipes: a missing or unusable tokenizer raises `RecipeError` naming it."""
    from .errors import RecipeError

    if not name_or_path:
        raise RecipeError("no tokenizer: set tokenizer_name (or model_name_or_path / config_name)")
    try:
        return load_tokenizer(name_or_path, **kwargs)
    except (OSError, ValueError) as err:
        raise RecipeError(f"could not load a tokenizer from {name_or_path!r}: {err}") from err


BERT_SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def _wordpiece_alphabet(texts: list[str], backend, limit_alphabet: int) -> tuple[list[str], list[str]]:
    """The ``limit_alphabet`` most frequent characters (ties by character) and their ``##`` continuations.

    Characters are counted as the tokenizer sees them (after its normalizer); a ``##c`` piece is listed
    only for a kept character that occurs inside a word (after the first character).
    """
    normalizer, pre_tokenizer = backend.normalizer, backend.pre_tokenizer
    counts: Counter[str] = Counter()
    continuing: set[str] = set()
    for text in texts:
        normalized = normalizer.normalize_str(text)
        counts.update(normalized)
        for chunk in normalized.split():
            if len(chunk) > 1:  # Chinese characters stand alone: only Latin/digit runs have continuations
                for word, _ in pre_tokenizer.pre_tokenize_str(chunk):
                    continuing.update(word[1:])
    ranked = sorted((c for c in counts if not c.isspace()), key=lambda c: (-counts[c], c))
    alphabet = sorted(ranked[:limit_alphabet])
    return alphabet, [f"##{c}" for c in alphabet if c in continuing]


def train_wordpiece_tokenizer(
    texts: Iterable[str],
    vocab_size: int = 8000,
    model_max_length: int = DEFAULT_MODEL_MAX_LENGTH,
    limit_alphabet: int = 1000,
) -> PreTrainedTokenizerBase:
    """Train a BERT WordPiece tokenizer offline on ``texts`` (Chinese characters split one per token).

    Use it where no pretrained tokenizer can be downloaded (the quickstart, tests); train it on
    training texts only. The result depends only on the texts (not on their order, the process or
    thread count): ``tokenizers``' trainer numbers the alphabet in hash-map order and breaks ties
    between equally frequent merges by those numbers, so the alphabet (the ``limit_alphabet`` most
    frequent characters) and its ``##`` pieces are fixed here, sorted, before training.
    Returns a `transformers.BertTokenizer` ready for ``save_pretrained``.
    """
    from tokenizers.implementations import BertWordPieceTokenizer
    from tokenizers.processors import TemplateProcessing
    from transformers import BertTokenizer

    texts = list(texts)
    options = dict(clean_text=True, handle_chinese_chars=True, lowercase=True)
    trainer = BertWordPieceTokenizer(**options)
    alphabet, pieces = _wordpiece_alphabet(texts, trainer._tokenizer, limit_alphabet)
    trainer.train_from_iterator(
        texts,
        vocab_size=vocab_size,
        min_frequency=1,
        limit_alphabet=len(alphabet),
        initial_alphabet=alphabet,
        # listed first, so numbered in this order (the trainer adds them to the vocabulary before anything else)
        special_tokens=[*BERT_SPECIAL_TOKENS, *alphabet, *pieces],
        show_progress=False,  # its bars print as blank lines in a log (stderr not a terminal)
    )
    # A fresh tokenizer from the vocabulary: only BERT's five tokens are special (not the alphabet above)
    backend = BertWordPieceTokenizer(trainer.get_vocab(), **options)._tokenizer
    backend.post_processor = TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[(t, backend.token_to_id(t)) for t in ("[CLS]", "[SEP]")],
    )
    return BertTokenizer(
        tokenizer_object=backend,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=model_max_length,
    )
