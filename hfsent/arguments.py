"""Where a recipe's model comes from, shared by the fine-tuning and pretraining recipes (keys as run_mlm.py).

`ModelSourceArguments` holds the keys both recipes have: ``model_name_or_path`` (a checkpoint to start from),
``config_name`` / ``config_overrides`` (a model built from scratch) and ``tokenizer_name``, with the one rule for
which tokenizer to load (`ModelSourceArguments.tokenizer_source`). `build_config` builds the config they ask for.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from transformers import CONFIG_MAPPING, AutoConfig, PretrainedConfig

from .recipe import RecipeError


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
            "help": "Config (Hub id or folder) of a model built from scratch (model_name_or_path empty); "
            "default: a fresh BERT config."
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

    def tokenizer_source(self) -> str | None:
        """The tokenizer to load: ``tokenizer_name``, else the checkpoint's, else the config's (None: none named)."""
        return self.tokenizer_name or self.model_name_or_path or self.config_name


def build_config(
    model_name_or_path: str | None = None,
    config_name: str | None = None,
    config_overrides: str | None = None,
    model_type: str = "bert",
    cache_dir: str | None = None,
) -> PretrainedConfig:
    """Build the model config a recipe asks for.

    The config comes from ``config_name`` (Hub id or local folder) if given, else from
    ``model_name_or_path``, else it is a fresh default config of ``model_type``. ``config_overrides``
    (``"num_hidden_layers=4,hidden_size=256"``) is then applied with type checks; an unknown key or
    a config that cannot be loaded raises `RecipeError`.
    """
    source = config_name or model_name_or_path
    if source:
        try:
            config = AutoConfig.from_pretrained(source, cache_dir=cache_dir)
        except (OSError, ValueError) as err:
            raise RecipeError(f"could not load a model config from {source!r}: {err}") from err
    else:
        if model_type not in CONFIG_MAPPING:
            raise RecipeError(f"unknown model_type {model_type!r}")
        config = CONFIG_MAPPING[model_type]()
    if config_overrides:
        try:
            config.update_from_string(config_overrides)
        except ValueError as err:
            raise RecipeError(f"bad config_overrides {config_overrides!r}: {err}") from err
    return config


__all__ = ["ModelSourceArguments", "build_config"]
