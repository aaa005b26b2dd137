"""The state every frame-based axis shares: a running sum of per-episode scores and their count."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric

from simgate_tracking.functional._checks import NothingToScoreError
from simgate_tracking.metrics._rank_zero import rank_zero_warn


class EpisodeMeanMetric(Metric):
    """Base of the frame-based axes: the mean over episodes of a per-episode score in [0, 1].

    States are running sums reduced with ``sum`` across processes, so memory does not grow with the probe set.
    With ``episode_scores=True`` the per-episode scores are also kept (a ``cat`` state), for reports.

    Args:
        episode_scores: Also keep every episode's score, readable with :meth:`episode_scores`.
        kwargs: Options of :class:`torchmetrics.Metric` (``sync_on_compute``, ``process_group``, ...).
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False
    plot_lower_bound = 0.0
    plot_upper_bound = 1.0

    axis: str = ""
    score_sum: Tensor
    baseline_sum: Tensor
    total: Tensor
    nonfinite: Tensor
    episodes: Any  # list of (B,) tensors while accumulating, one tensor once synced

    def __init__(self, episode_scores: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(episode_scores, bool):
            raise ValueError(f"Expected argument `episode_scores` to be a bool but got {episode_scores!r}")
        self.keeps_episode_scores = episode_scores
        # a scorecard turns this off and warns once for all its axes
        self.warn_nonfinite = True
        self.nonfinite_seen = 0
        self.add_state("score_sum", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        # reality's own score per episode, each real take held out in turn (1 with one take)
        self.add_state("baseline_sum", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("total", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("nonfinite", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")
        if episode_scores:
            self.add_state("episodes", [], dist_reduce_fx="cat")

    def add_scores(self, scores: Tensor, finite: Tensor, counted: Tensor | None = None) -> None:
        """Add per-episode scores computed elsewhere (the scorecard's one-pass kernel); counts as an update."""
        count_update(self)
        self._accumulate(scores, finite, counted)

    def _accumulate(
        self, scores: Tensor, finite: Tensor, counted: Tensor | None = None, baseline: Tensor | None = None
    ) -> None:
        """Add a batch of per-episode scores; ``counted`` drops episodes with nothing to score. No host sync.

        ``baseline``: reality's own per-episode score with real takes (default 1: one take is its own reference).
        """
        baseline = torch.ones_like(scores) if baseline is None else baseline
        if counted is None:
            self.score_sum += scores.sum(dtype=torch.float64)
            self.baseline_sum += baseline.sum(dtype=torch.float64)
            self.total += scores.numel()
            self.nonfinite += (~finite).sum()
        else:
            self.score_sum += torch.where(counted, scores, torch.zeros_like(scores)).sum(dtype=torch.float64)
            self.baseline_sum += torch.where(counted, baseline, torch.zeros_like(baseline)).sum(dtype=torch.float64)
            self.total += counted.sum()
            self.nonfinite += (~finite & counted).sum()
        if self.keeps_episode_scores:
            kept = scores.float() if counted is None else torch.where(counted, scores, float("nan")).float()
            self.episodes.append(kept)

    def compute(self) -> Tensor:
        """Mean per-episode score; warns once if some rollouts were non-finite (they score 0).

        Raises:
            NothingToScoreError: (a ``RuntimeError``) If no episode was scored, for example ``compute()`` before
                any ``update()``, or no episode showed an object.
        """
        if int(self.total) == 0:
            raise NothingToScoreError(
                f"{type(self).__name__}.compute() found no scored episode: call update() with at least one "
                "episode first" + (" that shows an object (`visible` is all False)" if self._update_count else "")
            )
        self.nonfinite_seen = int(self.nonfinite)
        if self.nonfinite_seen and self.warn_nonfinite:
            rank_zero_warn(f"{self.nonfinite_seen} rollout(s) had NaN or Inf frames; they score 0 on {self.axis}")
        return (self.score_sum / self.total).float()

    def real_baseline(self) -> Tensor:
        """Reality's own score on this axis: each real take held out and scored against the others, as the model is.

        1 with one take per episode (reality is its own reference). Synced like :meth:`compute`.
        """
        with self.sync_context(should_sync=self._to_sync, should_unsync=self._should_unsync):
            return (self.baseline_sum / self.total.clamp_min(1)).float()

    def episode_scores(self) -> Tensor:
        """Every episode's score in update order (NaN for an episode with nothing to score), synced across ranks.

        Raises:
            RuntimeError: If the metric was built without ``episode_scores=True``.
        """
        if not self.keeps_episode_scores:
            raise RuntimeError(f"Build {type(self).__name__}(episode_scores=True) to keep per-episode scores")
        with self.sync_context(should_sync=self._to_sync, should_unsync=self._should_unsync):
            kept = self.episodes
            if isinstance(kept, Tensor):
                return kept
            return torch.cat(kept) if kept else torch.zeros(0, device=self.device)


def count_update(metric: Metric) -> None:
    """Record an update made without calling ``update``, as torchmetrics' wrapper of ``update`` records one."""
    metric._update_count += 1
    metric._computed = None
