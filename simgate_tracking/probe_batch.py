"""A batch of probe episodes, as the rollout loop sees it, and how a probe set's fields are cut into one."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor

SCORED_ONLY = ("targets", "masks", "visible")  # fields the world model never sees


@dataclass(frozen=True)
class ProbeBatch:
    """A batch of probe episodes, as the rollout loop sees it.

    Attributes:
        index: (B,) the episodes' positions in the probe set.
        context: (B, T0, C, H, W) reset observations.
        actions: (B, K+1, T, A), branch 0 the reference actions.
        targets: (B, K+1, T, C, H, W) real futures for every branch; (B, R, K+1, T, C, H, W) with R > 1 takes.
        masks: (B, [R,] T, M, H, W) bool object masks on the reference branch, or None.
        visible: (B, [R,] T, M) bool, or None.
        outcomes: (B, [R]) or (B, [R,] K+1) real task outcomes, or None.
        groups: (B,) policy ids, or None.
        seeds: (B,) int64 seeds.
    """

    index: Tensor
    context: Tensor
    actions: Tensor
    targets: Tensor
    masks: Tensor | None
    visible: Tensor | None
    outcomes: Tensor | None
    groups: Tensor | None
    seeds: Tensor

    def __len__(self) -> int:
        return int(self.index.shape[0])


def make_batch(fields: Mapping[str, Tensor | None], index: Tensor, device: torch.device | str | None) -> ProbeBatch:
    """The episodes ``index`` of every field, moved to ``device``; only those episodes' bytes are read.

    What only the scorecard reads, already on the device, is a view (no copy) for evenly spaced episodes.
    """
    span = _evenly_spaced(index)

    def pick(name: str, x: Tensor | None) -> Tensor | None:
        if x is None:
            return None
        if span is not None and name in SCORED_ONLY and torch.device(device or x.device) == x.device:
            return x[span]
        return x[index].to(device, non_blocking=True)

    picked = {name: pick(name, x) for name, x in fields.items()}
    return ProbeBatch(index=index.to(device), **picked)  # type: ignore[arg-type]


def _evenly_spaced(index: Tensor) -> slice | None:
    """``index`` as a slice when it runs up in equal steps (every episode in order, a DDP shard), else None."""
    values = index.tolist()
    step = values[1] - values[0] if len(values) > 1 else 1
    if not values or step < 1 or values != list(range(values[0], values[-1] + 1, step)):
        return None
    return slice(values[0], values[-1] + 1, step)
