"""Reset reproducibility as a streaming metric."""

from __future__ import annotations

from torch import Tensor

from simgate_tracking.functional.reset_reproducibility import _reset_reproducibility_update, _reset_takes_update
from simgate_tracking.functional.takes import has_takes, one_take
from simgate_tracking.metrics._episode_mean import EpisodeMeanMetric


class ResetReproducibility(EpisodeMeanMetric):
    r"""Does the same reset and seed give the same rollout, whatever ran before it?

    Per episode, :math:`1 - \|P_1 - P_2\|^2 / (2\|Y - \mathrm{mean}_t Y\|^2 + \epsilon)`, clamped, for two rollouts
    from the same reset and seed; the mean over episodes.
    See :func:`simgate_tracking.functional.reset_reproducibility`.

    ``update(first, second, target)`` takes the first and second pass of the same episodes and their real
    futures, each (B, T, C, H, W).

    Args:
        episode_scores: Also keep every episode's score.
        kwargs: Options of :class:`torchmetrics.Metric`.

    Example:
        >>> import torch
        >>> from simgate_tracking.metrics import ResetReproducibility
        >>> real = torch.rand(2, 4, 3, 8, 8, generator=torch.Generator().manual_seed(0))
        >>> metric = ResetReproducibility()
        >>> metric.update(real, real.clone(), real)
        >>> metric.compute()
        tensor(1.)
    """

    axis = "reset_reproducibility"

    def update(self, first: Tensor, second: Tensor, target: Tensor) -> None:
        """Add a batch of episodes: two passes and the real futures, each (B, T, C, H, W)."""
        first, second, target = self.in_unit_range(first, second, target)
        target = one_take(first, target)
        update = _reset_takes_update if has_takes(first, target) else _reset_reproducibility_update
        self._accumulate(*update(first, second, target))
