"""`RunTrainingArguments`: transformers' `TrainingArguments` with ``overwrite_output_dir`` and defaults resolved for the
machine at hand (CPU DDP under any launcher; bf16, pinned memory and loader workers only on an accelerator; progress
bars only on a terminal). Both recipes' training arguments derive from it.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field

from transformers import TrainingArguments


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


__all__ = ["RunTrainingArguments", "accelerator_available", "gpu_has_bf16", "launched_distributed", "loader_workers"]
