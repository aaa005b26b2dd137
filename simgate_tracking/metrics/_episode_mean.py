"""The state every frame-based axis shares: a running sum of per-episode scores and their count."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from simgate_tracking._utils import check_int, rank_zero_warn
from simgate_tracking.functional._checks import NothingToScoreError
from simgate_tracking.functional.takes import EPS, has_takes, one_take, relative_to_spread
from simgate_tracking.metrics._base import SimgateMetric, count_update


class EpisodeMeanMetric(SimgateMetric):
    """Base of the frame-based axes: the mean over episodes of a per-episode score in [0, 1].

    States are running sums reduced with ``sum`` across processes, so memory does not grow with the probe set.
    With ``episode_scores=True`` the per-episode scores are also kept (a ``cat`` state), for reports.

    Args:
        episode_scores: Also keep every episode's score, readable with :meth:`episode_scores`.
        num_takes: R, the real takes of every episode in ``target`` (a takes dimension after B when R > 1). With
            takes the score is the model's agreement with them relative to reality's own spread, summed over
            episodes, and :meth:`real_baseline` gives reality's own score (see
            :mod:`simgate_tracking.functional.takes`).
        kwargs: Options of :class:`torchmetrics.Metric` (``sync_on_compute``, ``process_group``, ...).
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False
    plot_lower_bound = 0.0
    plot_upper_bound = 1.0

    axis: str = ""
    score_sum: Tensor
    take_sums: Tensor
    total: Tensor
    nonfinite: Tensor
    episodes: Any  # list of (B,) tensors while accumulating, one tensor once synced
    episode_agreements: Any  # with real takes: list of (B, 1 + R) tensors, one tensor once synced

    def __init__(self, episode_scores: bool = False, num_takes: int = 1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(episode_scores, bool):
            raise ValueError(f"Expected argument `episode_scores` to be a bool but got {episode_scores!r}")
        check_int(num_takes, "num_takes", 1)
        self.keeps_episode_scores = episode_scores
        self.num_takes = num_takes
        # a scorecard turns this off and warns once for all its axes
        self.warn_nonfinite = True
        self.nonfinite_seen = 0
        self.add_state("score_sum", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        # with real takes: each take's agreement with the other takes, summed over episodes (reality's spread)
        self.add_state("take_sums", torch.zeros(num_takes, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("total", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("nonfinite", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")
        if episode_scores:
            self.add_state("episodes", [], dist_reduce_fx="cat")
            if num_takes > 1:  # an interval of a ratio of sums resamples each episode's parts, not its ratio
                self.add_state("episode_agreements", [], dist_reduce_fx="cat")

    def add_scores(self, scores: Tensor, finite: Tensor, counted: Tensor | None = None) -> None:
        """Add per-episode scores computed elsewhere (the scorecard's one-pass kernel); counts as an update."""
        count_update(self)
        self._accumulate(scores, finite, counted)

    def _accumulate(
        self, scores: Tensor, finite: Tensor, counted: Tensor | None = None, takes: Tensor | None = None
    ) -> None:
        """Add a batch of per-episode scores; ``counted`` drops episodes with nothing to score. No host sync.

        ``takes``: (B, R) with real takes, each take's agreement with the other takes; ``scores`` is then the
        model's agreement with the takes (see :mod:`simgate_tracking.functional.takes`).
        """
        kept = torch.ones_like(finite) if counted is None else counted
        self.score_sum += torch.where(kept, scores, torch.zeros_like(scores)).sum(dtype=torch.float64)
        self.total += kept.sum()
        self.nonfinite += (~finite & kept).sum()
        if takes is not None and self.keeps_episode_scores:
            parts = torch.cat([scores.unsqueeze(1), takes], dim=1).double()
            self.episode_agreements.append(torch.where(kept.unsqueeze(1), parts, float("nan")))
        if takes is not None:
            self.take_sums += torch.where(kept.unsqueeze(1), takes, torch.zeros_like(takes)).sum(0, dtype=torch.float64)
            # an episode's own ratio, for per-episode reports only: the axis divides sums
            scores = ((scores + EPS) / (takes.mean(dim=1) + EPS)).clamp(0.0, 1.0)
        if self.keeps_episode_scores:
            self.episodes.append(torch.where(kept, scores, float("nan")).float())

    def _update_frames(self, preds: Tensor, target: Tensor, one_take_update: Any, takes_update: Any) -> None:
        """Score a batch with ``one_take_update`` or, where ``target`` holds real takes, with ``takes_update``."""
        preds, target = self.in_unit_range(preds, target)
        target = one_take(preds, target)
        self._check_takes(target.shape[1] if has_takes(preds, target) else 1)
        if has_takes(preds, target):
            agreement, finite, takes = takes_update(preds, target)
            self._accumulate(agreement, finite, takes=takes)
        else:
            self._accumulate(*one_take_update(preds, target))

    def _check_takes(self, takes: int) -> None:
        """Raise unless real takes in the input match ``num_takes`` (the states were sized for them)."""
        if takes != self.num_takes:
            raise ValueError(
                f"Expected `target` to hold R = {self.num_takes} real take(s) (argument `num_takes` of "
                f"{type(self).__name__}) but got R = {takes}: build the metric with num_takes={takes}"
            )

    def compute(self) -> Tensor:
        """Mean per-episode score; warns once if some rollouts were non-finite (they score 0).

        Raises:
            NothingToScoreError: (a ``RuntimeError``) If no episode was scored, for example ``compute()`` before
                any ``update()``, or no episode showed an object.
        """
        if int(self.total) == 0:
            raise NothingToScoreError(
                f"{type(self).__name__}.compute() found no scored episode: call update() with at least one "
                "episode first" + (" that shows an object (`visible` is all False)" if self.update_called else "")
            )
        self.nonfinite_seen = int(self.nonfinite)
        if self.nonfinite_seen and self.warn_nonfinite:
            rank_zero_warn(f"{self.nonfinite_seen} rollout(s) had NaN or Inf frames; they score 0 on {self.axis}")
        if self.num_takes > 1:
            return relative_to_spread(self.score_sum, self.take_sums)[0].float()
        return (self.score_sum / self.total).float()

    def real_baseline(self) -> Tensor:
        """Reality's own score on this axis: each real take held out and scored against the others, as the model is.

        1 with one take per episode (reality is its own reference). Synced like :meth:`compute`.
        """
        if self.num_takes == 1:
            return torch.ones((), device=self.device)
        with self.sync_context(self.dist_sync_fn, should_sync=self.sync_on_compute, should_unsync=self.sync_on_compute):
            return relative_to_spread(self.score_sum, self.take_sums)[1].float()

    def episode_statistics(self) -> Tensor:
        """What the axis sums per episode, in update order, synced: the input of its confidence interval.

        (n,) the episodes' scores with one take; (n, 1 + R) with R real takes: the model's agreement with reality,
        then each take's agreement with the other takes (see :func:`simgate_tracking.confidence.bootstrap_interval`).
        NaN for an episode with nothing to score.

        Raises:
            RuntimeError: If the metric was built without ``episode_scores=True``.
        """
        if self.num_takes == 1:
            return self.episode_scores()
        if not self.keeps_episode_scores:
            raise RuntimeError(f"Build {type(self).__name__}(episode_scores=True) to keep per-episode statistics")
        with self.sync_context(self.dist_sync_fn, should_sync=self.sync_on_compute, should_unsync=self.sync_on_compute):
            kept = self.episode_agreements
            if isinstance(kept, Tensor):
                return kept
            return torch.cat(kept) if kept else torch.zeros(0, 1 + self.num_takes, device=self.device)

    def episode_scores(self) -> Tensor:
        """Every episode's score in update order (NaN for an episode with nothing to score), synced across ranks.

        Raises:
            RuntimeError: If the metric was built without ``episode_scores=True``.
        """
        if not self.keeps_episode_scores:
            raise RuntimeError(f"Build {type(self).__name__}(episode_scores=True) to keep per-episode scores")
        with self.sync_context(self.dist_sync_fn, should_sync=self.sync_on_compute, should_unsync=self.sync_on_compute):
            kept = self.episodes
            if isinstance(kept, Tensor):
                return kept
            return torch.cat(kept) if kept else torch.zeros(0, device=self.device)
