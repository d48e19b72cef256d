"""One run per output folder, shared by fine-tuning and pretraining.

- `claim_output_dir`: an output folder is empty (or absent), or holds an earlier run of the same recipe
  (resumed or re-run); anything else needs ``--overwrite_output_dir true``, which removes only what hfsent
  wrote there (`hfsent.outputs.OUTPUT_FILES`); it must lie apart from the run's data (`check_apart_from_data`).
- `claim_run`: what both recipes do first: claim the folder, resolve the checkpoint to resume from.
- `InterruptCallback`: a Ctrl-C that a library swallowed ends the run at the Trainer's next event.
- `RecipeCheckpointCallback`: every checkpoint carries the resolved ``recipe.yaml`` (what a resume compares).

The machine's defaults are in `hfsent.training_args`, checkpoints and resuming in `hfsent.checkpoints`, the names
of what a run writes and its staged output in `hfsent.outputs`.
"""

from __future__ import annotations

import glob
import logging
import os
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from transformers import TrainerCallback

from .checkpoints import checkpoints, resolve_resume_checkpoint
from .errors import RecipeError, raise_pending_interrupt
from .outputs import CHECKPOINT_RE, OUTPUT_FILES, RECIPE_FILE, STAGING_DIR, TOKENIZER_DIR
from .recipe import recipe_to_dict, safe_yaml_load, save_recipe

logger = logging.getLogger("hfsent")

# Keys of TrainingArguments that decide what a run trains: a resume must not change them.
TRAINING_IDENTITY_KEYS = (
    "seed",
    "learning_rate",
    "weight_decay",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "num_train_epochs",
    "max_steps",
    "lr_scheduler_type",
    "warmup_steps",
    "optim",
    "train_sampling_strategy",
    "length_group_steps",
)


# -------------------------------------------------------------------------------------------- recipes


def _plain(values: Mapping[str, Any]) -> dict[str, Any]:
    """Values as they read back from recipe.yaml (so that saved and current recipes compare equal)."""
    return yaml.safe_load(yaml.safe_dump(dict(values), allow_unicode=True)) or {}


def saved_recipe(directory: Path) -> dict[str, Any] | None:
    """The recipe of the run in ``directory``: its own ``recipe.yaml``, else its newest checkpoint's."""
    candidates = [directory / RECIPE_FILE]
    candidates += [path / RECIPE_FILE for path in reversed(checkpoints(directory))]
    for path in candidates:
        if path.is_file():
            try:
                data = safe_yaml_load(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, yaml.YAMLError):
                continue
            if isinstance(data, dict):
                return data
    return None


def recipe_differences(saved: Mapping[str, Any], current: Mapping[str, Any], keys: Iterable[str]) -> list[str]:
    """``key: saved -> current`` for each of ``keys`` whose value differs (keys the saved recipe lacks are skipped)."""
    saved, current = _plain(saved), _plain(current)
    return [
        f"{key}: {saved[key]!r} there, {current.get(key)!r} now"
        for key in keys
        if key in saved and saved[key] != current.get(key)
    ]


def identity_keys(*dataclass_types: type, exclude: Iterable[str] = ()) -> list[str]:
    """The recipe keys that decide what a run trains: every field of ``dataclass_types`` plus
    `TRAINING_IDENTITY_KEYS`, less ``exclude``."""
    import dataclasses

    names = [f.name for cls in dataclass_types for f in dataclasses.fields(cls)] + list(TRAINING_IDENTITY_KEYS)
    skip = set(exclude)
    return [name for name in dict.fromkeys(names) if name not in skip]


def _data_locations(source: str) -> list[Path]:
    """The local files and folders a data source reads: a file, a folder (read with its subfolders), the files a
    glob matches (a recursive ``**`` glob: the folder before its first wildcard); none for a Hub id or builtin."""
    expanded = os.path.expanduser(source)
    if glob.has_magic(expanded) and "**" not in expanded:
        return [Path(f).resolve() for f in glob.glob(expanded)]
    if glob.has_magic(expanded):
        parts = Path(expanded).parts
        expanded = str(Path(*parts[: next(i for i, part in enumerate(parts) if glob.has_magic(part))] or ["."]))
    return [Path(expanded).resolve()] if os.path.exists(expanded) else []


def check_apart_from_data(output_dir: str | os.PathLike, sources: Iterable[str | None]) -> None:
    """`RecipeError` naming both paths if ``output_dir`` is a data source, lies inside a data folder (folders are
    read with their subfolders) or holds a data file: the run, or the next one, would read its own output as data.
    Hub ids and builtins are not local and never overlap."""
    out = Path(output_dir).expanduser().resolve()
    for source, location in ((s, loc) for s in sources if s for loc in _data_locations(str(s))):
        if out == location or location in out.parents or out in location.parents:
            where = "is" if out == location else "lies inside" if location in out.parents else "holds"
            raise RecipeError(
                f"output_dir {str(output_dir)!r} {where} the data {str(source)!r}: a run would read its own output "
                "as data; choose an output_dir outside the data's folders"
            )


def claim_output_dir(
    output_dir: str | os.PathLike,
    recipe: Mapping[str, Any],
    keys: Iterable[str],
    overwrite: bool,
    main: bool = True,
    data_sources: Iterable[str | None] = (),
) -> None:
    """Make sure ``output_dir`` may take this run; raise `RecipeError` (naming what is there) if not.

    First, ``output_dir`` must be apart from every local path of ``data_sources`` (`check_apart_from_data`).
    Accepted: an absent or empty folder (hfsent's own leftovers ``.staging``/``.tokenizer`` do not count), or
    one holding a run (finished or interrupted) of the same recipe (the ``keys`` of its ``recipe.yaml`` equal
    ``recipe``'s). Anything else needs ``overwrite``: then the main process removes the files hfsent wrote
    there (`OUTPUT_FILES`, checkpoints holding a ``recipe.yaml``, its hidden folders), keeping all others.
    """
    check_apart_from_data(output_dir, data_sources)
    path = Path(output_dir)
    if not path.exists():
        return
    if not path.is_dir():
        raise RecipeError(f"output_dir {str(path)!r} is a file, not a folder: choose a folder")
    entries = sorted(p.name for p in path.iterdir() if p.name not in (STAGING_DIR, TOKENIZER_DIR))
    if not entries:
        return
    saved = saved_recipe(path)
    differences = None if saved is None else recipe_differences(saved, recipe, keys)
    if differences == []:
        return
    if overwrite:
        if main:
            remove_run_files(path)
        return
    if differences:
        what = f"holds a run of another recipe ({'; '.join(differences[:3])})"
    else:
        shown = ", ".join(entries[:5]) + (", ..." if len(entries) > 5 else "")
        what = f"is not empty and holds no hfsent run ({shown})"
    raise RecipeError(
        f"output_dir {str(path)!r} {what}: choose an empty folder, resume the same recipe there, or pass "
        "--overwrite_output_dir true to replace hfsent's files in it (other files are kept)"
    )


def remove_run_files(directory: Path) -> None:
    """Remove what hfsent wrote in ``directory``: its output files, hidden folders and own checkpoints."""
    has_run = (directory / RECIPE_FILE).is_file()
    removed = []
    for entry in directory.iterdir():
        ours = (
            entry.name in (STAGING_DIR, TOKENIZER_DIR)
            or (entry.is_dir() and CHECKPOINT_RE.match(entry.name) and (entry / RECIPE_FILE).is_file())
            or (has_run and entry.is_file() and entry.name in OUTPUT_FILES)
        )
        if not ours:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
        removed.append(entry.name)
    logger.warning("overwrite_output_dir: removed %d earlier hfsent file(s)/folder(s) from %s", len(removed), directory)


def claim_run(
    model_args: Any,
    data_args: Any,
    training_args: Any,
    exclude: Iterable[str] = (),
    data_sources: Iterable[str | None] = (),
) -> str | None:
    """What both recipes do before any data loads: claim ``output_dir`` for this run (`claim_output_dir`, the main
    process first, keyed by every field of the model and data arguments but ``exclude``, apart from every local
    path of ``data_sources``) and resolve the checkpoint to resume from
    (`hfsent.checkpoints.resolve_resume_checkpoint`; None: start afresh)."""
    with training_args.main_process_first(desc="checking the output folder"):
        claim_output_dir(
            training_args.output_dir,
            recipe_to_dict(model_args, data_args, training_args),
            identity_keys(type(model_args), type(data_args), exclude=exclude),
            getattr(training_args, "overwrite_output_dir", False),
            main=training_args.local_process_index == 0,
            data_sources=data_sources,
        )
    return resolve_resume_checkpoint(training_args)


class InterruptCallback(TrainerCallback):
    """Ends the run at the Trainer's next event if a Ctrl-C was swallowed before (`raise_pending_interrupt`): while
    the data was prepared (``datasets`` swallows it while hashing a map's function) or by anything during training."""

    def _check(self, args, state, control, **kwargs):
        raise_pending_interrupt()

    on_train_begin = on_epoch_begin = on_step_begin = on_step_end = on_substep_end = _check
    on_evaluate = on_predict = on_prediction_step = on_save = on_log = on_train_end = _check


class RecipeCheckpointCallback(TrainerCallback):
    """Writes the resolved recipe into every checkpoint, so that a resume can tell its own run from another."""

    def __init__(self, *recipe_args: Any) -> None:
        self.recipe_args = recipe_args

    def on_save(self, args, state, control, **kwargs):
        """After each checkpoint: ``checkpoint-N/recipe.yaml`` (main process)."""
        if state.is_world_process_zero:
            checkpoint = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if checkpoint.is_dir():
                save_recipe(checkpoint, *self.recipe_args, filename=RECIPE_FILE)


__all__ = [
    "InterruptCallback",
    "RecipeCheckpointCallback",
    "check_apart_from_data",
    "claim_output_dir",
    "claim_run",
    "identity_keys",
    "recipe_differences",
    "remove_run_files",
    "saved_recipe",
]
