"""Length-grouped optimizer steps that keep every step's label mix: fast batches without label skew.

transformers' ``group_by_length`` sorts mega-batches of 50 batches by length, so each batch holds texts
of one length. In review data length goes with the label (short and truncated reviews are mostly
positive, mid-length ones half negative), so those batches are label-skewed too: on the seed-repro
benchmark that cost a from-scratch model about 5 points of test accuracy against random batches
(docs/benchmarks.md).

``train_sampling_strategy: group_by_length_stratified`` (hfsent's default) groups by length *within each
label*: in a group of ``length_group_steps`` optimizer steps drawn at random, each label's examples are
sorted by length and the labels are interleaved by length rank, so every step holds the group's label mix
and reviews of similar length *for their label*. The steps are then shuffled. A step (``per-device batch x
gradient_accumulation_steps x processes`` examples) stays whole and in length order, so its micro-batches,
on one process or many, are length neighbours, and any split of a step trains alike.
``length_group_steps: 1`` makes every step a random sample, only sorted into its micro-batches.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Sampler

GROUP_BY_LENGTH_STRATIFIED = "group_by_length_stratified"


def _length_order(indices: list[int], lengths: Sequence[int], labels: Sequence[int] | None) -> list[int]:
    """``indices`` by decreasing length; with ``labels``, each label sorted on its own and the labels
    interleaved by length rank (quantile), so every stretch of the result keeps the label mix."""
    if labels is None:
        return sorted(indices, key=lambda i: -lengths[i])
    keyed: list[tuple[float, int]] = []
    for label in sorted({labels[i] for i in indices}):
        members = sorted((i for i in indices if labels[i] == label), key=lambda i: -lengths[i])
        keyed += [((rank + 0.5) / len(members), i) for rank, i in enumerate(members)]
    return [i for _, i in sorted(keyed)]


def length_grouped_step_indices(
    lengths: Sequence[int],
    step_size: int,
    generator: torch.Generator,
    labels: Sequence[int] | None = None,
    group_steps: int = 50,
) -> list[int]:
    """A permutation of ``range(len(lengths))`` read as optimizer steps of ``step_size`` indices.

    The data is drawn at random into groups of ``group_steps`` steps; each group is put in length order
    (`_length_order`, label-stratified when ``labels`` are given) and cut into steps; the steps of all
    groups are then shuffled. Within a step the indices run from longest to shortest. The last step may
    be shorter.
    """
    if step_size < 1 or group_steps < 1:
        raise ValueError(f"step_size and group_steps must be >= 1, got {step_size} and {group_steps}")
    order = torch.randperm(len(lengths), generator=generator).tolist()
    group = step_size * group_steps
    steps: list[list[int]] = []
    for start in range(0, len(order), group):
        ordered = _length_order(order[start : start + group], lengths, labels)
        steps += [ordered[s : s + step_size] for s in range(0, len(ordered), step_size)]
    # a short step (the epoch's tail) stays last, so that every other step is full
    full = [step for step in steps if len(step) == step_size]
    shuffled = [full[k] for k in torch.randperm(len(full), generator=generator).tolist()]
    tail = [step for step in steps if len(step) != step_size]
    return [i for step in shuffled + tail for i in sorted(step, key=lambda i: -lengths[i])]


class LengthGroupedStepSampler(Sampler[int]):
    """Yield `length_grouped_step_indices`, reshuffled each epoch from ``seed + epoch``.

    Every process builds the same order from the same seed (accelerate then deals the micro-batches out),
    and a resumed run rebuilds the interrupted epoch's order exactly.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        step_size: int,
        labels: Sequence[int] | None = None,
        group_steps: int = 50,
        seed: int = 0,
    ) -> None:
        self.lengths = list(lengths)
        self.labels = None if labels is None else list(labels)
        self.step_size = step_size
        self.group_steps = group_steps
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Called by the Trainer (through accelerate) at the start of each epoch."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        return iter(length_grouped_step_indices(self.lengths, self.step_size, generator, self.labels, self.group_steps))
