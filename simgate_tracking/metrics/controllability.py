"""Controllability as a streaming metric."""

from __future__ import annotations

from torch import Tensor

from simgate_tracking.functional.controllability import _controllability_takes_update, _controllability_update
from simgate_tracking.metrics._episode_mean import EpisodeMeanMetric


class Controllability(EpisodeMeanMetric):
    r"""Do different actions change the future the way they change it in reality?

    For each episode and counterfactual branch :math:`k`, :math:`\mathrm{conc}(P_k - P_0, Y_k - Y_0)` with
    :math:`\mathrm{conc}(x, y) = (2\langle x, y\rangle + \epsilon) / (\|x\|^2 + \|y\|^2 + \epsilon)` over the whole
    branch; the mean over (episode, k). See :func:`simgate_tracking.functional.controllability`.

    ``update(preds, target)`` takes model rollouts and real futures of shape (B, K+1, T, C, H, W), float in
    [0, 1] or uint8, branch 0 following the reference actions and K >= 1 counterfactual branches.

    Args:
        episode_scores: Also keep every episode's score.
        kwargs: Options of :class:`torchmetrics.Metric`.

    Raises:
        ValueError: If shapes differ or K + 1 < 2.

    Example:
        >>> import torch
        >>> from simgate_tracking.metrics import Controllability
        >>> real = torch.rand(4, 3, 5, 3, 8, 8, generator=torch.Generator().manual_seed(0))
        >>> metric = Controllability()
        >>> metric.update(real[:, :1].expand_as(real), real)  # ignores actions
        >>> metric.update(real, real)  # answers every action as reality does
        >>> metric.compute()
        tensor(0.5000)
    """

    axis = "controllability"

    def update(self, preds: Tensor, target: Tensor) -> None:
        """Add a batch of episodes: ``preds`` and ``target`` of shape (B, K+1, T, C, H, W)."""
        self._update_frames(preds, target, _controllability_update, _controllability_takes_update)
