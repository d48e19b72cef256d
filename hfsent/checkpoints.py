"""Checkpoints of a run and resuming from them: ``resume_from_checkpoint`` has one rule, here.

A value is unset (``null``, ``false``, ``""``), ``last`` (also ``true``: the newest *complete* checkpoint in
``output_dir``; none there starts afresh with a warning) or a checkpoint folder that must exist and be complete.
`check_resume_value` applies the rule to the value alone (before anything runs), `resolve_resume_checkpoint` to the
output folder (which checkpoint). Complete: weights, trainer state, optimizer and scheduler all readable
(`checkpoint_problem`); an incomplete one is skipped with a warning naming the reason. A checkpoint whose pickled
state torch's weights-only loader refuses is never resumed from (`check_checkpoint_safe`).
"""

from __future__ import annotations

import json
import logging
import os
import struct
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import RecipeError
from .outputs import CHECKPOINT_RE, TRAINER_STATE_FILE

if TYPE_CHECKING:
    from transformers import TrainingArguments

logger = logging.getLogger("hfsent")

# ``resume_from_checkpoint`` values meaning "not set", and "the newest complete checkpoint in output_dir"
RESUME_UNSET = ("", "false", "none", "null")
RESUME_LAST = ("last", "true")


def check_resume_value(value: str | None) -> str | None:
    """``None`` (unset), ``"last"`` or the checkpoint folder named; a `RecipeError` for a folder that does not exist."""
    if value is None or str(value).lower() in RESUME_UNSET:
        return None
    if str(value).lower() in RESUME_LAST:
        return "last"
    if not os.path.isdir(value):
        raise RecipeError(
            f"checkpoint not found: {value!r} (resume_from_checkpoint: a checkpoint folder, or 'last' for the newest "
            "one in output_dir)"
        )
    return str(value)


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
    """The checkpoint a run resumes from (see the module docstring): None to start afresh; a folder that cannot be
    resumed from raises `RecipeError` naming what it lacks, or the pickle it holds that torch's safe loader refuses
    (`check_checkpoint_safe`)."""
    value = check_resume_value(training_args.resume_from_checkpoint)
    if value is None:
        return None
    if value == "last":
        last = newest_complete_checkpoint(training_args.output_dir)
        if last is None:
            logger.warning(
                "resume_from_checkpoint=%s: no complete checkpoint in %s, starting afresh",
                training_args.resume_from_checkpoint,
                training_args.output_dir,
            )
        else:
            check_checkpoint_safe(last)
        return last
    if problem := checkpoint_problem(value):
        raise RecipeError(f"resume_from_checkpoint {value!r} is incomplete ({problem}): pick another, or 'last'")
    check_checkpoint_safe(value)
    return value


__all__ = [
    "RESUME_LAST",
    "RESUME_UNSET",
    "check_checkpoint_safe",
    "check_resume_value",
    "checkpoint_problem",
    "checkpoints",
    "newest_complete_checkpoint",
    "resolve_resume_checkpoint",
]
