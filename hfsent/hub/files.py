"""What a push sends from an output directory: regular files inside it whose names a model repo holds, and why
everything else stays local (`collect_files`); files sent with local paths reduced to ``<local>/<name>``
(`redacted`)."""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path

from ..cards import public_value
from ..outputs import (
    CARD_FILE,
    HANDLER_FILE,
    RECIPE_FILE,
    RESULTS_FILE,
    TOKENIZER_FILES,
    TRAINER_STATE_FILE,
    split_results_file,
)
from ..recipe import safe_yaml_load
from .errors import HubError

# What a published model repo holds (top level of the output directory), by glob.
ALLOWED_FILES = (
    # weights and config
    "config.json", "generation_config.json", "model.safetensors", "model-*-of-*.safetensors",
    "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model-*-of-*.bin", "pytorch_model.bin.index.json",
    # model code (remote code) and the Inference Endpoints handler
    "configuration_*.py", "modeling_*.py", "tokenization_*.py", HANDLER_FILE,
    # tokenizer
    *TOKENIZER_FILES, "vocab.json", "merges.txt", "*.model",
    # card, results, plots
    CARD_FILE, RESULTS_FILE, split_results_file("*"), RECIPE_FILE, TRAINER_STATE_FILE, "*.png",
)  # fmt: skip
CHECKPOINT_DIR = "checkpoint-*"
# What a checkpoint-*/ folder holds besides ALLOWED_FILES: the Trainer's state to resume from.
CHECKPOINT_STATE_FILES = (
    "optimizer.pt", "scheduler.pt", "scaler.pt", "rng_state*.pth",
    "adapter_config.json", "adapter_model.safetensors",  # LoRA runs checkpoint their adapters
)  # fmt: skip
# Files a run writes that stay local at any depth, with the reason `--dry-run` gives.
LOCAL_FILES = {
    # torch.save(TrainingArguments): cannot be redacted without unpickling (running) it; Trainer never loads it
    "training_args.bin": "local paths: the run's TrainingArguments pickled (output_dir, logging_dir, ...); "
    "resuming does not read it",
}
HARD_LINK_REASON = "hard link: its content is shared with another path (maybe outside the folder); copy the file"
# Files uploaded with local paths reduced to ``<local>/<name>`` (as in the card); the local file is not changed.
REDACTED_FILES = {RECIPE_FILE: "yaml", TRAINER_STATE_FILE: "json"}


def collect_files(output_dir: Path, *, include_checkpoints: bool) -> tuple[dict[str, Path | bytes], dict[str, str]]:
    """``(files, left_out)``: each path in the repo with its local file (or redacted content, see `REDACTED_FILES`),
    and each path left local (folders end in ``/``) with the reason.

    Only regular files inside ``output_dir`` whose names a model repo holds (`ALLOWED_FILES`; in ``checkpoint-*/``
    folders also `CHECKPOINT_STATE_FILES`) are sent. Left out: hidden files and folders at any depth, symbolic
    links (whether they point inside the folder or out of it: the repo would get a copy of whatever they point to
    when the push runs), hard links (a regular file with more than one link, ``st_nlink > 1``: its content is
    shared with a path that may lie outside the folder; hfsent and the Trainer write every file anew, with one
    link, so a run's own files are never left out by this), files holding local paths that cannot be redacted
    (`LOCAL_FILES`), other folders, other files.
    """
    files: dict[str, Path | bytes] = {}
    left_out: dict[str, str] = {}
    _collect(output_dir, "", files, left_out, include_checkpoints=include_checkpoints, in_checkpoint=False)
    for path, content in files.items():
        kind = REDACTED_FILES.get(path.rsplit("/", 1)[-1])
        if kind is not None and isinstance(content, Path):
            files[path] = redacted(content, kind)
    return files, left_out


def _collect(
    folder: Path,
    prefix: str,
    files: dict[str, Path | bytes],
    left_out: dict[str, str],
    *,
    include_checkpoints: bool,
    in_checkpoint: bool,
) -> None:
    """Add the files of ``folder`` that a push sends to ``files``, and the others to ``left_out`` with the reason."""
    allowed = ALLOWED_FILES + CHECKPOINT_STATE_FILES if in_checkpoint else ALLOWED_FILES
    for path in sorted(folder.iterdir()):
        name = prefix + path.name
        is_dir = path.is_dir()
        shown = name + "/" if is_dir else name
        if path.name.startswith("."):
            left_out[shown] = "hidden"
        elif path.is_symlink():
            left_out[shown] = "symlink: only regular files inside the folder are uploaded"
        elif is_dir and not in_checkpoint and fnmatch.fnmatch(path.name, CHECKPOINT_DIR):
            if include_checkpoints:
                _collect(path, name + "/", files, left_out, include_checkpoints=False, in_checkpoint=True)
            else:
                left_out[shown] = "checkpoint: --include-checkpoints uploads it"
        elif is_dir:
            left_out[shown] = "folder: not part of a model repo"
        elif not path.is_file():
            left_out[shown] = "not a regular file"
        elif path.stat().st_nlink > 1:
            left_out[shown] = HARD_LINK_REASON
        elif path.name in LOCAL_FILES:
            left_out[shown] = LOCAL_FILES[path.name]
        elif any(fnmatch.fnmatch(path.name, pattern) for pattern in allowed):
            files[name] = path
        else:
            left_out[shown] = "not a model file"


def redacted(path: Path, kind: str) -> bytes:
    """``path``'s content with local paths reduced to ``<local>/<name>`` (`hfsent.cards.public_value`)."""
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
        if kind == "yaml":
            return yaml.safe_dump(public_value(safe_yaml_load(text)), sort_keys=False, allow_unicode=True).encode()
        return (json.dumps(public_value(json.loads(text)), indent=2, sort_keys=True) + "\n").encode()
    except (OSError, ValueError, yaml.YAMLError) as err:
        mark = getattr(err, "problem_mark", None)  # YAML marks count lines from 0, JSON errors from 1
        line = mark.line + 1 if mark is not None else getattr(err, "lineno", None)
        at = f" at line {line}" if line else ""
        raise HubError(
            f"could not read {path}: not valid {kind.upper()}{at} ({type(err).__name__}); fix or remove the file",
            bad_input=True,
        ) from None


__all__ = [
    "ALLOWED_FILES",
    "CHECKPOINT_STATE_FILES",
    "LOCAL_FILES",
    "REDACTED_FILES",
    "collect_files",
    "redacted",
]
