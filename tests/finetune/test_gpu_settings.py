"""GPU settings that resolve by machine: the GPU recipe, data-loading workers; checked here on a CPU."""

from __future__ import annotations

import pytest

from hfsent.finetune import DataArguments, HfSentTrainingArguments, ModelArguments
from hfsent.recipe import RecipeParser, load_yaml
from hfsent.training_args import accelerator_available, loader_workers

from ..fixtures.helpers import ROOT

FINETUNE_RECIPES = sorted((ROOT / "recipes" / "finetune").glob("*.yaml"))


def _parse(recipe, tmp_path, *cli: str):
    parser = RecipeParser((ModelArguments, DataArguments, HfSentTrainingArguments))
    return parser.parse_recipe([str(recipe), "--output_dir", str(tmp_path / "out"), *cli])


@pytest.mark.parametrize("recipe", FINETUNE_RECIPES, ids=lambda p: p.stem)
def test_finetune_recipes_parse_on_a_cpu(recipe, tmp_path):
    if accelerator_available():
        pytest.skip("checks the CPU resolution of the recipes")
    _, _, training_args = _parse(recipe, tmp_path)
    # on a CPU: fp32, no data-loading workers, no pinned memory (the settings a GPU gets are resolved there)
    assert training_args.bf16 is False
    assert training_args.dataloader_num_workers == 0
    assert training_args.dataloader_persistent_workers is False
    assert training_args.dataloader_pin_memory is False


def test_gpu_recipe_is_set_for_one_gpu(tmp_path):
    _, data_args, training_args = _parse(ROOT / "recipes" / "finetune" / "bert-base-chinese.yaml", tmp_path)
    assert data_args.max_length == 128
    assert training_args.per_device_train_batch_size == 128
    assert training_args.learning_rate == pytest.approx(5e-5)
    assert "bf16" not in load_yaml(ROOT / "recipes" / "finetune" / "bert-base-chinese.yaml")  # on where a GPU has it
    assert training_args.optim.value == "adamw_torch_fused"
    assert training_args.pad_to_multiple_of is None  # hfsent's default: 16 on an accelerator, none on a CPU
    assert training_args.save_steps % training_args.eval_steps == 0  # load_best_model_at_end needs it
    # a recipe's own setting wins over hfsent's defaults for the machine
    _, _, explicit = _parse(
        ROOT / "recipes" / "finetune" / "bert-base-chinese.yaml",
        tmp_path,
        "--dataloader_num_workers",
        "3",
        "--dataloader_persistent_workers",
        "false",
    )
    assert explicit.dataloader_num_workers == 3 and explicit.dataloader_persistent_workers is False


def test_loader_workers_only_on_an_accelerator():
    assert loader_workers(False, cpus=64) == 0
    assert loader_workers(True, cpus=16) == 4
    assert loader_workers(True, cpus=4) == 2
    assert loader_workers(True, cpus=16, processes=8) == 1
    assert loader_workers(True, cpus=1) == 0
