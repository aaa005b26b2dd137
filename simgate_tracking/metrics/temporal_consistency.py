"""Temporal consistency as a streaming metric."""

from __future__ import annotations

from torch import Tensor

from simgate_tracking.functional.temporal_consistency import _temporal_consistency_update, _temporal_takes_update
from simgate_tracking.metrics._episode_mean import EpisodeMeanMetric


class TemporalConsistency(EpisodeMeanMetric):
    r"""Does the rollout evolve smoothly, with no shimmer, freeze or jump that reality lacks?

    Per episode, :math:`\mathrm{conc}(\Delta P, \Delta Y)` with :math:`\Delta P_t = P_{t+1} - P_t`, summed over all
    steps before the ratio; the mean over episodes. See :func:`simgate_tracking.functional.temporal_consistency`.

    ``update(preds, target)`` takes reference-branch rollouts and real futures of shape (B, T, C, H, W), T >= 2.

    Args:
        episode_scores: Also keep every episode's score.
        kwargs: Options of :class:`torchmetrics.Metric`.

    Example:
        >>> import torch
        >>> from simgate_tracking.metrics import TemporalConsistency
        >>> real = torch.linspace(0, 1, 4).view(1, 4, 1, 1, 1).expand(2, 4, 3, 8, 8)
        >>> metric = TemporalConsistency()
        >>> metric.update(real, real)
        >>> metric.compute()
        tensor(1.)
    """

    axis = "temporal_consistency"

    def update(self, preds: Tensor, target: Tensor) -> None:
        """Add a batch of episodes: ``preds`` and ``target`` of shape (B, T, C, H, W)."""
        self._update_frames(preds, target, _temporal_consistency_update, _temporal_takes_update)
