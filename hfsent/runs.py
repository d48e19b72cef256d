"""Run folders, shared by fine-tuning and pretraining: one run per ``output_dir``, resumable checkpoints.

- `RunTrainingArguments`: `TrainingArguments` with ``overwrite_output_dir`` and defaults that fit the machine
  (CPU DDP under any launcher, pinned memory only with an accelerator, progress bars only on a terminal).
- `claim_output_dir`: an output folder is empty (or absent), or holds an earlier run of the same recipe
  (resumed or re-run); anything else needs ``--overwrite_output_dir true``, which removes only what hfsent
  wrote there.
- `resolve_resume_checkpoint`: ``last`` is the newest *complete* checkpoint (weights, trainer state,
  optimizer and scheduler all readable); incomplete ones are skipped with a warning naming the reason.
- `InterruptCallback`: a Ctrl-C that a library swallowed ends the run at the Trainer's next event.
- `RecipeCheckpointCallback`: every checkpoint carries the resolved ``recipe.yaml`` (what a resume compares).
- `staged_output`: a run's final output is assembled in ``.staging`` and moved into place only once whole.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import re
import shutil
import struct
import sys
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from transformers import TrainerCallback, TrainingArguments

from .errors import raise_pending_interrupt
from .recipe import PLOT_FILES, RECIPE_FILE, RESULTS_FILE, TRAINER_STATE_FILE, RecipeError, safe_yaml_load, save_recipe

logger = logging.getLogger("hfsent")

STAGING_DIR = ".staging"  # the final output is assembled here, then moved into place
TOKENIZER_DIR = ".tokenizer"  # a tokenizer trained by the main process, read by the other ranks
CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")
# What hfsent writes at the top of an output folder (fine-tuning and pretraining); `--overwrite_output_dir`
# removes these (and hfsent's checkpoints), never anything else.
OUTPUT_FILES = frozenset(
    {
        "README.md",
        "model_card_data.json",
        "config.json",
        "generation_config.json",
        "model.safetensors",
        "model.safetensors.index.json",
        "configuration_hfsent.py",
        "modeling_hfsent.py",
        "handler.py",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "added_tokens.json",
        "vocab.txt",
        RESULTS_FILE,
        "train_results.json",
        "eval_results.json",
        "init_eval_results.json",
        RECIPE_FILE,
        TRAINER_STATE_FILE,
        "training_args.bin",
        *PLOT_FILES.values(),
    }
)
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


def launched_distributed() -> bool:
    """Whether a launcher (accelerate launch, torchrun) started this process as one of several."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def accelerator_available() -> bool:
    """Whether torch sees a GPU (or another accelerator) in this process."""
    import torch

    return bool(torch.accelerator.is_available())


def gpu_has_bf16() -> bool:
    """Whether this process sees a CUDA GPU with bf16 arithmetic (Ampere or newer)."""
    import torch

    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def loader_workers(on_accelerator: bool, cpus: int | None = None, processes: int = 1) -> int:
    """hfsent's default ``dataloader_num_workers``: on an accelerator up to 4 worker processes per training process
    (half of this machine's CPUs shared between the processes), so batches are fetched, collated and masked while
    the device computes; on a CPU none (workers would take cores from the training's own threads)."""
    if not on_accelerator:
        return 0
    cpus = os.cpu_count() if cpus is None else cpus
    return max(0, min(4, (cpus or 1) // (2 * max(1, processes))))


@dataclass
class RunTrainingArguments(TrainingArguments):
    """`TrainingArguments` plus ``overwrite_output_dir``, with defaults resolved for the machine at hand.

    - Several processes on a machine without an accelerator train with DDP over gloo (``use_cpu``), however
      they were launched (``accelerate launch --config_file recipes/accelerate/multi-process-cpu.yaml``,
      ``--multi_gpu``, ``torchrun``); otherwise accelerate leaves each process training alone.
    - ``bf16`` defaults to on on a CUDA GPU with bf16 units (`gpu_has_bf16`), off elsewhere.
    - ``dataloader_pin_memory`` defaults to on only where an accelerator is used (pinning needs one);
      ``dataloader_num_workers`` to `loader_workers` (workers only on an accelerator), and
      ``dataloader_persistent_workers`` to on wherever there are workers (not forked again every epoch).
    - ``disable_tqdm`` defaults to on when stderr is not a terminal (bars in a log file are debris).
    """

    overwrite_output_dir: bool = field(
        default=False,
        metadata={
            "help": "Allow an output_dir that holds another run (or other files): hfsent's own files there are "
            "removed first, nothing else."
        },
    )
    dataloader_pin_memory: bool | None = field(
        default=None, metadata={"help": "Pin data-loader memory (default: only when training on an accelerator)."}
    )

    bf16: bool | None = field(
        default=None,
        metadata={
            "help": "bf16 mixed precision (default: on when training on a GPU that has bf16 units and fp16 is off)."
        },
    )
    dataloader_num_workers: int | None = field(
        default=None,
        metadata={"help": "Data-loading worker processes (default: up to 4 when training on an accelerator, else 0)."},
    )
    dataloader_persistent_workers: bool | None = field(
        default=None, metadata={"help": "Keep the data-loading workers between epochs (default: on with workers)."}
    )

    def __post_init__(self) -> None:
        if self.disable_tqdm is None:
            self.disable_tqdm = not sys.stderr.isatty()
        if not self.use_cpu and launched_distributed() and not accelerator_available():
            self.use_cpu = True
        on_accelerator = not self.use_cpu and accelerator_available()
        if self.bf16 is None:
            self.bf16 = on_accelerator and not self.fp16 and gpu_has_bf16()
        if self.dataloader_pin_memory is None:
            self.dataloader_pin_memory = on_accelerator
        if self.dataloader_num_workers is None:
            processes = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
            self.dataloader_num_workers = loader_workers(on_accelerator, processes=processes)
        if self.dataloader_persistent_workers is None:
            self.dataloader_persistent_workers = self.dataloader_num_workers > 0
        super().__post_init__()


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


@contextmanager
def staged_output(output_dir: str | os.PathLike) -> Iterator[Path]:
    """Assemble a run's final output in an empty ``output_dir/.staging`` (yielded), then move it into place.

    When the block ends, each file of the staging folder is moved into ``output_dir`` by an atomic rename and the
    folder is removed. When it fails (a full disk, Ctrl-C, a crash), the staging folder is removed and the
    exception goes on: ``output_dir`` is left as it was, with no half-written output. Main process only.
    """
    raise_pending_interrupt()  # a Ctrl-C swallowed since the Trainer's last event: nothing is written
    output_dir = Path(output_dir)
    staging = output_dir / STAGING_DIR
    shutil.rmtree(staging, ignore_errors=True)
    try:
        staging.mkdir(parents=True)
        yield staging
        for path in sorted(staging.iterdir()):
            os.replace(path, output_dir / path.name)
        staging.rmdir()
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


# ---------------------------------------------------------------------------------------- checkpoints


def checkpoints(directory: str | os.PathLike) -> list[Path]:
    """The ``checkpoint-N`` folders of ``directory``, oldest (smallest N) first."""
    path = Path(directory)
    if not path.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in path.iterdir() if (m := CHECKPOINT_RE.match(p.name)) and p.is_dir()]
    return [p for _, p in sorted(found)]


def _safetensors_problem(path: Path) -> str | None:
    """Why ``path`` is not a whole safetensors file (header unreadable or data cut short), or None."""
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            (length,) = struct.unpack("<Q", f.read(8))
            if length > size - 8:
                return f"{path.name} is truncated"
            header = json.loads(f.read(length))
    except (OSError, struct.error, ValueError):
        return f"{path.name} is not a readable safetensors file"
    ends = [v["data_offsets"][1] for k, v in header.items() if k != "__metadata__" and isinstance(v, dict)]
    if 8 + length + max(ends, default=0) > size:
        return f"{path.name} is truncated"
    return None


def checkpoint_problem(checkpoint: str | os.PathLike) -> str | None:
    """Why ``checkpoint`` cannot be resumed from, or None when it is complete.

    Complete: ``trainer_state.json`` parses; the weights (``model.safetensors``, its shards, or a LoRA
    ``adapter_model.safetensors``) have a valid header and all their data; ``optimizer.pt`` and
    ``scheduler.pt`` are whole torch archives (DeepSpeed keeps its optimizer state in ``global_step*``).
    """
    path = Path(checkpoint)
    try:
        json.loads((path / TRAINER_STATE_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return "no trainer_state.json"
    except (OSError, ValueError):
        return "trainer_state.json is unreadable"
    index = path / "model.safetensors.index.json"
    if index.is_file():
        try:
            weights = sorted({path / name for name in json.loads(index.read_text())["weight_map"].values()})
        except (OSError, ValueError, KeyError, TypeError):
            return "model.safetensors.index.json is unreadable"
    else:
        weights = [p for p in (path / "model.safetensors", path / "adapter_model.safetensors") if p.is_file()][:1]
    if not weights:
        return "no model weights (model.safetensors)"
    for file in weights:
        if not file.is_file():
            return f"no {file.name}"
        if problem := _safetensors_problem(file):
            return problem
    if not any(path.glob("global_step*")):
        for name in ("optimizer.pt", "scheduler.pt"):
            if not (path / name).is_file():
                return f"no {name}"
            if not zipfile.is_zipfile(path / name):
                return f"{name} is truncated"
    return None


# The Trainer's pickled state in a checkpoint, which resuming loads with torch's safe (weights-only) unpickler
PICKLED_STATE_FILES = ("optimizer.pt", "scheduler.pt", "scaler.pt", "rng_state*.pth")


def check_checkpoint_safe(checkpoint: str | os.PathLike) -> None:
    """`RecipeError` naming the checkpoint and the file if a pickle the Trainer loads when resuming
    (`PICKLED_STATE_FILES`) holds objects torch's weights-only loader refuses (a pickle can run code: such a file
    is never loaded otherwise) or cannot be read. Tensors are memory-mapped, not read."""
    import pickle

    import torch
    from transformers.trainer_pt_utils import safe_globals  # the numpy types the Trainer allows in rng_state

    path = Path(checkpoint)
    for file in sorted(f for pattern in PICKLED_STATE_FILES for f in path.glob(pattern) if f.is_file()):
        try:
            with safe_globals():
                torch.load(file, map_location="cpu", weights_only=True, mmap=True)
        except pickle.UnpicklingError:
            raise RecipeError(
                f"checkpoint {str(path)!r} cannot be resumed from: {file.name} holds objects that are not tensors or "
                "plain values (a pickle that could run code when loaded); resume from a checkpoint your own run "
                "wrote, or start afresh"
            ) from None
        except (OSError, RuntimeError, ValueError, EOFError) as err:
            raise RecipeError(
                f"checkpoint {str(path)!r} cannot be resumed from: {file.name} is unreadable ({type(err).__name__})"
            ) from None


def newest_complete_checkpoint(directory: str | os.PathLike) -> str | None:
    """The complete checkpoint with the most steps in ``directory`` (logging each newer one skipped, and why)."""
    for checkpoint in reversed(checkpoints(directory)):
        problem = checkpoint_problem(checkpoint)
        if problem is None:
            return str(checkpoint)
        logger.warning("resume: skipping %s (incomplete: %s)", checkpoint, problem)
    return None


def resolve_resume_checkpoint(training_args: TrainingArguments) -> str | None:
    """``resume_from_checkpoint``: a checkpoint folder, or ``last``/``true`` for the newest complete one in
    ``output_dir`` (none there: start afresh, with a warning). A folder that cannot be resumed from raises
    `RecipeError` naming what it lacks, or the pickle it holds that torch's safe loader refuses
    (`check_checkpoint_safe`)."""
    value = training_args.resume_from_checkpoint
    if value is None or str(value).lower() in ("", "false", "none"):
        return None
    if str(value).lower() in ("last", "true"):
        last = newest_complete_checkpoint(training_args.output_dir)
        if last is None:
            logger.warning(
                "resume_from_checkpoint=%s: no complete checkpoint in %s, starting afresh",
                value,
                training_args.output_dir,
            )
        else:
            check_checkpoint_safe(last)
        return last
    if not os.path.isdir(value):
        raise RecipeError(f"resume_from_checkpoint {value!r} is not a checkpoint folder (or use 'last')")
    if problem := checkpoint_problem(value):
        raise RecipeError(f"resume_from_checkpoint {value!r} is incomplete ({problem}): pick another, or 'last'")
    check_checkpoint_safe(value)
    return value


__all__ = [
    "OUTPUT_FILES",
    "InterruptCallback",
    "RecipeCheckpointCallback",
    "RunTrainingArguments",
    "check_apart_from_data",
    "check_checkpoint_safe",
    "checkpoint_problem",
    "checkpoints",
    "claim_output_dir",
    "identity_keys",
    "newest_complete_checkpoint",
    "recipe_differences",
    "resolve_resume_checkpoint",
    "staged_output",
]
