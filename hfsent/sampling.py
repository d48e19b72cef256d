"""Length-sorted optimizer steps: less padding, and every step still a random sample of the data.

transformers' ``group_by_length`` sorts mega-batches of 50 batches by length, so each batch holds texts
of one length. In review data length goes with the label (short and truncated reviews are mostly
positive, mid-length ones half negative), so such batches are label-skewed too; on the seed-repro
benchmark that cost a from-scratch model about 5 points of test accuracy against random batches
(docs/benchmarks.md).

``train_sampling_strategy: length_sorted_steps`` sorts by length only *within one optimizer step*: each
step draws ``per_device_train_batch_size x gradient_accumulation_steps x processes`` examples at random,
exactly as random sampling would, and cuts them by length into that step's micro-batches. The loss of a
step is the mean over equal micro-batches, so its gradient is the one of a random batch of that size; the
micro-batches just carry less padding. With one micro-batch per step it is plain random sampling.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Sampler

LENGTH_SORTED_STEPS = "length_sorted_steps"


def length_sorted_step_indices(lengths: Sequence[int], step_size: int, generator: torch.Generator) -> list[int]:
    """A random permutation of ``range(len(lengths))`` in which each run of ``step_size`` indices (one
    optimizer step) is sorted by decreasing length; the last run may be shorter."""
    if step_size < 1:
        raise ValueError(f"step_size must be >= 1, got {step_size}")
    order = torch.randperm(len(lengths), generator=generator).tolist()
    return [
        i
        for start in range(0, len(order), step_size)
        for i in sorted(order[start : start + step_size], key=lambda i: -lengths[i])
    ]


class LengthSortedStepSampler(Sampler[int]):
    """Yield `length_sorted_step_indices`, reshuffled each epoch from ``seed + epoch``.

    Every process builds the same order from the same seed (accelerate then deals the micro-batches out),
    and a resumed run rebuilds the interrupted epoch's order exactly.
    """

    def __init__(self, lengths: Sequence[int], step_size: int, seed: int = 0) -> None:
        self.lengths = list(lengths)
        self.step_size = step_size
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Called by the Trainer (through accelerate) at the start of each epoch."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        return iter(length_sorted_step_indices(self.lengths, self.step_size, generator))
