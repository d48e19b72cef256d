"""Model configs for recipes: ``model_name_or_path`` / ``config_name`` / ``config_overrides``, as run_mlm.py.

Shared by the pretraining and fine-tuning recipes.
"""

from __future__ import annotations

from transformers import CONFIG_MAPPING, AutoConfig, PretrainedConfig

from .recipe import RecipeError


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


__all__ = ["build_config"]
