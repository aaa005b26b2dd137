"""Genie-style delta-PSNR as a streaming metric, reported beside controllability."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from simgate_tracking.functional.controllability import _delta_psnr_update
from simgate_tracking.metrics._base import SimgateMetric, count_update


class DeltaPSNR(SimgateMetric):
    """PSNR with the right actions minus PSNR with another branch's actions, in dB; the mean over episodes.

    ``update(preds, target)`` takes (B, K+1, T, C, H, W) like :class:`Controllability`. Not gated: it is
    unbounded and depends on how much the scene moves. See :func:`simgate_tracking.functional.delta_psnr`.

    Example:
        >>> import torch
        >>> real = torch.rand(2, 2, 3, 3, 8, 8, generator=torch.Generator().manual_seed(0))
        >>> metric = DeltaPSNR()
        >>> metric.update(real[:, :1].expand_as(real), real)
        >>> metric.compute()
        tensor(0.)
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False
    sum_delta: Tensor
    total: Tensor

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_state("sum_delta", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("total", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, preds: Tensor, target: Tensor) -> None:
        """Add a batch of episodes, (B, K+1, T, C, H, W) each."""
        preds, target = self.in_unit_range(preds, target)
        self._accumulate(_delta_psnr_update(preds, target))

    def add_deltas(self, delta: Tensor) -> None:
        """Add per-episode delta-PSNR values computed elsewhere, (B,) in dB; counts as an update."""
        count_update(self)
        self._accumulate(delta)

    def _accumulate(self, delta: Tensor) -> None:
        self.sum_delta += delta.sum(dtype=torch.float64)
        self.total += delta.numel()

    def compute(self) -> Tensor:
        """Mean delta-PSNR in dB."""
        if int(self.total) == 0:
            raise RuntimeError("DeltaPSNR.compute() found no episode: call update() first")
        return (self.sum_delta / self.total).float()
