"""Where a recipe's model comes from, shared by the fine-tuning and pretraining recipes (keys as run_mlm.py).

`ModelSourceArguments` holds the keys both recipes have: ``model_name_or_path`` (a checkpoint to start from),
``config_name`` / ``config_overrides`` (a model built from scratch) and ``tokenizer_name``, with the one rule for
which tokenizer to load (`ModelSourceArguments.tokenizer_source`). `build_config` builds the config they ask for,
`build_model` the model (both recipes), and `check_max_length` is the one rule for ``max_length`` against the
model's positions.
"""

from __future__ import annotations

import difflib
import logging
import typing
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from transformers import CONFIG_MAPPING, AutoConfig, PretrainedConfig

from .datasource import is_missing_local_path
from .errors import RecipeError, first_line

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

logger = logging.getLogger("hfsent")

try:  # a config value of the wrong type (transformers 5 validates each field with huggingface_hub)
    from huggingface_hub.errors import StrictDataclassError

    CONFIG_VALUE_ERRORS: tuple[type[Exception], ...] = (StrictDataclassError,)
except ImportError:  # older huggingface_hub: configs take any value
    CONFIG_VALUE_ERRORS = ()


@dataclass
class ModelSourceArguments:
    """Where the model starts: a checkpoint (``model_name_or_path``), or a config built from scratch."""

    model_name_or_path: str | None = field(
        default=None,
        metadata={"help": "Checkpoint to start from (Hub id or local folder). Leave empty to start from a config."},
    )
    config_name: str | None = field(
        default=None,
        metadata={
            "help": "Config (Hub id or folder) of a model built from scratch (model_name_or_path empty), of any "
            "model_type the recipe takes; default: a fresh BERT config (pretraining with objective causal_lm: GPT-2)."
        },
    )
    config_overrides: str | None = field(
        default=None,
        metadata={"help": "Config changes of a model built from scratch, e.g. 'num_hidden_layers=4,hidden_size=256'."},
    )
    tokenizer_name: str | None = field(
        default=None,
        metadata={"help": "Tokenizer (Hub id or folder); default: model_name_or_path, then config_name."},
    )

    # the checkpoints (``model_name_or_path``, ``config_name``) a recipe can start from, by ``model_type``
    accepted_model_types: ClassVar[tuple[str, ...]] = ("bert",)
    # what `accepted_model_types` are for, added to the error naming a checkpoint of another type ('' for nothing)
    model_type_context: ClassVar[str] = ""

    def tokenizer_source(self) -> str | None:
        """The tokenizer to load: ``tokenizer_name``, else the checkpoint's, else the config's (None: none named)."""
        return self.tokenizer_name or self.model_name_or_path or self.config_name

    def check_sources(self, max_length: int | None = None, cache_dir: str | None = None) -> PretrainedConfig:
        """Fail before any data or weights load, with a `RecipeError` naming the key: a local path named that does
        not exist, a checkpoint/config whose ``model_type`` is not in `accepted_model_types` (a GPT-2 checkpoint),
        or a ``max_length`` (tokens per sequence) beyond the model's ``max_position_embeddings``. Returns the
        config the recipe builds its model from."""
        for key, what in (("model_name_or_path", "model"), ("config_name", "config"), ("tokenizer_name", "tokenizer")):
            check_local_source(key, getattr(self, key), what)
        config = build_config(
            self.model_name_or_path,
            self.config_name,
            self.config_overrides,
            model_type=self.accepted_model_types[0],
            cache_dir=cache_dir,
            accepted_model_types=self.accepted_model_types,
            context=self.model_type_context,
        )
        check_max_length(max_length, config)
        return config


def check_max_length(max_length: int | None, config: PretrainedConfig) -> None:
    """The one rule for ``max_length`` (tokens per sequence): at most the model's ``max_position_embeddings``.

    Raises `RecipeError` naming the key, the value and what is accepted.
    """
    limit = getattr(config, "max_position_embeddings", None)
    if max_length is not None and limit is not None and max_length > limit:
        raise RecipeError(
            f"invalid value for 'max_length': {max_length}; expected an integer in [1, {limit}] "
            "(the model's max_position_embeddings)"
        )


def check_local_source(key: str, value: str | None, what: str = "model") -> None:
    """``<what> not found: '<path>'`` (a `RecipeError`) for a ``value`` that names a local path that does not exist.

    A value that is not a path (``name`` or ``owner/name``) is a Hub id and is left to the Hub.
    """
    if is_missing_local_path(value):
        raise RecipeError(f"{what} not found: {value!r} ({key}: a local folder, or a Hub id 'owner/name')")


def load_config(source: str, key: str = "model_name_or_path", cache_dir: str | None = None) -> PretrainedConfig:
    """``AutoConfig.from_pretrained(source)``; a config that cannot be loaded raises `RecipeError` naming ``key``."""
    try:
        return AutoConfig.from_pretrained(source, cache_dir=cache_dir)
    except (OSError, ValueError, *CONFIG_VALUE_ERRORS) as err:
        # a field's type error spans two lines: "Validation error for field 'n_layer':" / "TypeError: ..."
        message = first_line(err) if isinstance(err, (OSError, ValueError)) else " ".join(str(err).split())
        hint = ""
        if "connect" in str(err) or "offline" in str(err).lower():  # a Hub id, and no Hub
            hint = f"; without the Hub, set {key} to a local folder holding a config.json"
            if key == "config_name":
                hint += ' (or to "" for a fresh default config)'
        raise RecipeError(f"could not load a model config from {key} {source!r}: {message.rstrip('.')}{hint}") from err


def build_config(
    model_name_or_path: str | None = None,
    config_name: str | None = None,
    config_overrides: str | None = None,
    model_type: str = "bert",
    cache_dir: str | None = None,
    accepted_model_types: tuple[str, ...] | None = None,
    context: str = "",
) -> PretrainedConfig:
    """Build the model config a recipe asks for.

    The config comes from ``config_name`` (Hub id or local folder) if given, else from
    ``model_name_or_path``, else it is a fresh default config of ``model_type``. ``config_overrides``
    (``"num_hidden_layers=4,hidden_size=256"``) is then applied with type checks; an unknown key, a
    config that cannot be loaded or one whose ``model_type`` is not in ``accepted_model_types`` (when given)
    raises `RecipeError`.
    """
    source = config_name or model_name_or_path
    if source:
        key = "config_name" if config_name else "model_name_or_path"
        config = load_config(source, key, cache_dir=cache_dir)
        if accepted_model_types and config.model_type not in accepted_model_types:
            accepted = " or ".join(repr(t) for t in accepted_model_types)
            raise RecipeError(
                f"invalid value for {key!r}: {source!r} is a {config.model_type!r} checkpoint; expected model_type "
                f"{accepted}" + (f" {context}" if context else "")
            )
    else:
        if model_type not in CONFIG_MAPPING:
            raise RecipeError(f"unknown model_type {model_type!r}")
        config = CONFIG_MAPPING[model_type]()
    if config_overrides:
        try:
            config.update_from_string(config_overrides)
        except (ValueError, TypeError) as err:  # TypeError: a key whose default is None (GPT-2's n_inner)
            raise RecipeError(f"bad config_overrides {config_overrides!r}: {err}") from err
    if config_overrides:
        where = f"config_overrides {config_overrides!r}"
    else:
        where = f"{key} {source!r}" if source else f"model_type {model_type!r}"
    check_config_sizes(config, where, hand_written=bool(config_name))
    return config


def build_model(
    args: ModelSourceArguments,
    model_class: type[PreTrainedModel],
    tokenizer: PreTrainedTokenizerBase,
    max_length: int,
    *,
    resize_embeddings: bool = False,
    cache_dir: str | None = None,
    trust_remote_code: bool = False,
    **config_changes: Any,
) -> PreTrainedModel:
    """The recipe's model, both recipes' one way of building it: from ``model_name_or_path`` (its weights loaded into
    ``model_class``; with ``config_name``/``config_overrides``, that config) or, without one, new from
    `build_config` (turned into ``model_class``'s config class, its vocabulary fitted to ``tokenizer``).

    ``config_changes`` are the config's either way (the fine-tuning head's settings and labels). A tokenizer larger than
    the model's vocabulary resizes the embeddings when ``resize_embeddings`` (pretraining learns them), else fails;
    ``max_length`` is checked against the model's positions (`check_max_length`). Every failure is a `RecipeError`
    naming the key.
    """
    source = args.model_name_or_path
    if source:
        kwargs: dict[str, Any] = dict(config_changes)  # set on the checkpoint's config by from_pretrained
        if args.config_name or args.config_overrides:
            config = build_config(source, args.config_name, args.config_overrides, cache_dir=cache_dir)
            for key, value in config_changes.items():
                setattr(config, key, value)
            kwargs = {"config": config}
        try:
            model = model_class.from_pretrained(
                source, cache_dir=cache_dir, trust_remote_code=trust_remote_code, **kwargs
            )
        except (OSError, ValueError) as err:
            raise RecipeError(f"could not load model_name_or_path {source!r}: {first_line(err)}") from err
    else:
        config_class = getattr(model_class, "config_class", None)  # None: an Auto class (from_config)
        model_type = config_class.model_type if config_class else args.accepted_model_types[0]
        config = build_config(None, args.config_name, args.config_overrides, model_type=model_type)
        if config_class and hasattr(config_class, "from_backbone"):  # an hfsent config over the model of `config`
            config = config_class.from_backbone(config, **config_changes)
        elif config_class and (config_changes or not isinstance(config, config_class)):
            config = config_class(**{**config.to_dict(), **config_changes})  # a BERT config becomes an hfsent one
        else:
            for key, value in config_changes.items():
                setattr(config, key, value)
        config.vocab_size = len(tokenizer)
        config.pad_token_id = tokenizer.pad_token_id
        model = model_class(config) if config_class else model_class.from_config(config)
        logger.info("New model from config: %.1fM parameters", model.num_parameters() / 1e6)
    vocabulary = model.get_input_embeddings().num_embeddings
    if len(tokenizer) > vocabulary:
        if not resize_embeddings:
            raise RecipeError(
                f"the tokenizer ({type(tokenizer).__name__}) has {len(tokenizer)} tokens but the model's vocab_size "
                f"is {vocabulary}; "
                "use the tokenizer the model was trained with (tokenizer_name)"
            )
        model.resize_token_embeddings(len(tokenizer))
    check_max_length(max_length, model.config)
    return model


# Sizes a BERT-like config must have at least (a config that lies about its size fails here, not in torch)
POSITIVE_CONFIG_KEYS = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size")


def check_config_sizes(config: PretrainedConfig, source: str, hand_written: bool = False) -> None:
    """`RecipeError` naming the config key and ``source`` (the recipe key the config came from) if the config's
    sizes cannot build a model: a size below 1, ``max_position_embeddings`` below 1, ``hidden_size`` not a
    multiple of ``num_attention_heads``, a dropout probability outside [0, 1]; in a ``hand_written`` config (the
    recipe's config_name), also a key the family does not have but spells nearly so (``n_embed`` for GPT-2's
    ``n_embd``: the model would ignore it and take the default size; a checkpoint's config may hold keys of its own,
    such as bert-base-chinese's ``pooler_num_attention_heads``). A key is named as the config spells it (GPT-2's
    ``n_embd`` for ``hidden_size``); an hfsent config's ``backbone_config`` is checked first."""
    backbone = getattr(config, "backbone_config", None)
    if isinstance(backbone, PretrainedConfig):
        check_config_sizes(backbone, f"{source}, its backbone_config", hand_written)
    values = config.to_dict()
    names = dict(getattr(config, "attribute_map", None) or {})  # the family's own key of each standard one
    known = {*type(config)().to_dict(), *names, "backbone_config"}
    for key in sorted(set(values) - known) if hand_written else ():
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.9)
        if close:
            raise RecipeError(
                f"invalid model config ({source}): {key!r} is no {config.model_type} setting (it would be ignored); "
                f"did you mean {close[0]!r}?"
            )

    def fail(key: str, expected: str) -> typing.NoReturn:
        raise RecipeError(f"invalid model config ({source}): {key} is {values[key]!r}; expected {expected}")

    for key in (*POSITIVE_CONFIG_KEYS, "max_position_embeddings"):
        key = names.get(key, key)
        value = values.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            fail(key, "an integer >= 1")
    heads_key, hidden_key = (names.get(key, key) for key in ("num_attention_heads", "hidden_size"))
    heads, hidden = values.get(heads_key), values.get(hidden_key)
    if heads and hidden and hidden % heads:
        fail(hidden_key, f"a multiple of {heads_key} ({heads})")
    for key, value in values.items():
        probability = isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 1
        if key.endswith(("dropout_prob", "_dropout", "_pdrop")) and value is not None and not probability:
            fail(key, "a probability in [0, 1] (or null)")


__all__ = [
    "ModelSourceArguments",
    "build_config",
    "build_model",
    "check_config_sizes",
    "check_local_source",
    "check_max_length",
    "load_config",
]
