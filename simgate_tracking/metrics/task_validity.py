"""Task validity as a streaming metric."""

from __future__ import annotations

from functools import partial
from typing import Any

import torch
from torch import Tensor

from simgate_tracking._utils import check_int, rank_zero_warn
from simgate_tracking.bootstrap import EpisodeStatistic
from simgate_tracking.functional._checks import NothingToScoreError
from simgate_tracking.functional.decision import _decision_compute, _decision_rows
from simgate_tracking.functional.task_statistics import (
    task_agreement_statistic,
    task_decision_statistic,
    task_ranking_rows,
    task_ranking_statistic,
)
from simgate_tracking.functional.task_validity import (
    TASK_MODES,
    TaskMode,
    _task_agreement_compute,
    _task_agreement_rows,
    _task_agreement_takes_rows,
    _task_ranking_compute,
    _task_ranking_takes_compute,
    _task_ranking_update,
    relative_informedness,
)
from simgate_tracking.metrics._base import SimgateMetric


class TaskValidity(SimgateMetric):
    r"""Does a task judged on model futures get the verdict the real environment gives?

    ``mode="agreement"``: informedness :math:`\mathrm{TPR} + \mathrm{TNR} - 1` of success judged on model futures
    against real success, clamped at 0 (a judge that always says "success" scores 0).
    ``mode="ranking"``: Spearman correlation of per-policy mean return, model against real, clamped at 0.
    ``mode="decision"``: chance-corrected agreement between the action branch a planner picks on model futures and
    the best real branch; :meth:`no_regret` gives the planner's mean normalised regret (1 = none).
    See :func:`simgate_tracking.functional.task_validity`.

    ``update(pred, real, groups=None)`` takes outcomes of shape (B,): bool or success probability in agreement
    mode; returns plus an int policy id per episode in ranking mode; (B, K+1) task values per action branch in
    decision mode.

    With R real takes ``real`` has a takes dimension after B, (B, R) or (B, R, K+1). Agreement: the model's verdict
    is compared with reality's success frequency over the takes (soft counts), and its informedness is reported
    relative to reality's own, each take's success against the frequency over the other takes. Ranking: the
    model's Spearman correlation with the mean return over takes, relative to each held-out take's correlation
    with the other takes' mean. Decision: the mean task value over takes is the real value of each branch.
    :meth:`real_baseline` gives reality's own score on the same scale (1 with one take).

    Args:
        mode: ``"agreement"``, ``"ranking"`` or ``"decision"``.
        num_groups: Ranking mode: the number of policy ids (ids run from 0 to ``num_groups - 1``).
        num_takes: R, the real takes of every episode that ``real`` holds (1: no takes dimension).
        episode_scores: Also keep each episode's contribution to the sums (:meth:`episode_statistics`), from which
            :meth:`interval_statistic` recomputes the score: the input of a bootstrap interval over episodes.
        validate_args: Check that policy ids are in ``[0, num_groups)``; ids outside it are left out of the ranking
            and reported by :meth:`compute` (``update`` never reads them on the host).
        kwargs: Options of :class:`torchmetrics.Metric`.

    Raises:
        ValueError: If ``mode`` or ``num_groups`` is invalid.

    Example:
        >>> import torch
        >>> from simgate_tracking.metrics import TaskValidity
        >>> metric = TaskValidity()
        >>> metric.update(torch.tensor([True, True, False, False]), torch.tensor([True, False, False, False]))
        >>> metric.compute()
        tensor(0.6667)
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False
    plot_lower_bound = 0.0
    plot_upper_bound = 1.0

    axis = "task_validity"
    confusion: Tensor
    take_confusion: Tensor
    group_sums: Tensor
    take_group_sums: Tensor
    decision_sums: Tensor
    total: Tensor
    nonfinite: Tensor
    bad_groups: Tensor
    non_binary: Tensor
    episode_rows: Any  # list of (B, k) tensors while accumulating, one tensor once synced

    def __init__(
        self,
        mode: TaskMode = "agreement",
        num_groups: int = 64,
        validate_args: bool = True,
        num_takes: int = 1,
        episode_scores: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if mode not in TASK_MODES:
            raise ValueError(f"Expected argument `mode` to be one of {TASK_MODES} but got {mode!r}")
        if not isinstance(episode_scores, bool):
            raise ValueError(f"Expected argument `episode_scores` to be a bool but got {episode_scores!r}")
        check_int(num_groups, "num_groups", 2)
        check_int(num_takes, "num_takes", 1)
        self.mode = mode
        self.num_groups = num_groups
        self.num_takes = num_takes
        self.validate_args = validate_args
        self.keeps_episode_scores = episode_scores
        self.warn_nonfinite = True
        self.nonfinite_seen = 0
        self.add_state("confusion", torch.zeros(4, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("group_sums", torch.zeros(3, num_groups, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("take_confusion", torch.zeros(num_takes, 4, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("take_group_sums", torch.zeros(num_takes, num_groups, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("decision_sums", torch.zeros(4, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("total", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("nonfinite", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("bad_groups", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("non_binary", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")
        if episode_scores:  # an interval resamples episodes and recomputes the score from their summed rows
            self.add_state("episode_rows", [], dist_reduce_fx="cat")

    def update(self, pred: Tensor, real: Tensor, groups: Tensor | None = None) -> None:
        """Add a batch of outcomes, (B,) each; ``groups`` (B,) int policy ids in ranking mode."""
        takes = self._takes(pred, real)
        if takes and self.mode == "decision":
            real = real.double().mean(dim=1)
        if self.mode == "agreement":
            if real.is_floating_point():  # counted here, said by compute(): no host read during update
                self.non_binary += ((real != 0) & (real != 1)).sum()
            if takes:
                model, per_take = _task_agreement_takes_rows(pred, real)
                self.confusion += model.sum(dim=0)
                self.take_confusion += per_take.sum(dim=0)
                self._keep(torch.cat([model, per_take.flatten(1)], dim=1))
            else:
                rows = _task_agreement_rows(pred, real)
                self.confusion += rows.sum(dim=0)
                self._keep(rows)
        elif self.mode == "decision":
            rows = _decision_rows(pred, real)
            self.decision_sums += rows.sum(dim=0)
            self._keep(rows)
        else:
            if groups is None:
                raise ValueError("Expected `groups` (policy id per episode, (B,) int) with mode='ranking' but got None")
            self.group_sums += _task_ranking_update(
                pred, real.double().mean(dim=1) if takes else real, groups, self.num_groups
            )
            for take in range(self.num_takes if takes else 0):
                self.take_group_sums[take] += _task_ranking_update(pred, real[:, take], groups, self.num_groups)[1]
            self._keep(task_ranking_rows(pred, real, groups, self.num_groups) if self.keeps_episode_scores else None)
            if self.validate_args:
                # counted here, reported by compute(): reading the ids on the host would synchronise the device
                self.bad_groups += ((groups < 0) | (groups >= self.num_groups)).sum()
        self.total += real.shape[0]
        if pred.is_floating_point():
            self.nonfinite += (~torch.isfinite(pred)).sum()

    def _keep(self, rows: Tensor | None) -> None:
        """Keep each episode's contribution rows (B, k), with ``episode_scores=True``."""
        if self.keeps_episode_scores and rows is not None:
            self.episode_rows.append(rows)

    def episode_columns(self) -> int:
        """k, the width of an episode's contribution row: 4 numbers, or (3 + R) G in ranking mode, more with takes."""
        takes = self.num_takes if self.num_takes > 1 and self.mode != "decision" else 0
        if self.mode == "ranking":
            return (3 + takes) * self.num_groups
        return 4 * (1 + takes)

    def episode_statistics(self) -> Tensor:
        """Each episode's contribution to the sums, (n, k) in update order, synced: the input of its interval.

        Agreement: the confusion ``[tp, fn, tn, fp]``, then with R takes each held-out take's; ranking: model return,
        real return and count under the episode's policy column (G each), then each take's return; decision:
        ``[agreement, chance, no_regret, decisive]``. Summed over any episodes, :meth:`interval_statistic` gives
        their score; summed over all, :meth:`compute`'s.

        Raises:
            RuntimeError: If the metric was built without ``episode_scores=True``.
        """
        if not self.keeps_episode_scores:
            raise RuntimeError("Build TaskValidity(episode_scores=True) to keep per-episode statistics")
        with self.sync_context(self.dist_sync_fn, should_sync=self.sync_on_compute, should_unsync=self.sync_on_compute):
            kept = self.episode_rows
            if isinstance(kept, Tensor):
                return kept
            columns = self.episode_columns()
            return torch.cat(kept) if kept else torch.zeros(0, columns, dtype=torch.float64, device=self.device)

    def interval_statistic(self) -> EpisodeStatistic:
        """The score (and reality's own, with takes) from :meth:`episode_statistics` rows summed over episodes.

        Batched over leading dimensions, as :func:`simgate_tracking.confidence.bootstrap_interval` takes it. A
        resample where the score is undefined (fewer than two policies to rank, no decision to make) is NaN.
        """
        takes = self.num_takes > 1
        if self.mode == "decision":
            return EpisodeStatistic(task_decision_statistic)
        if self.mode == "ranking":
            statistic = partial(task_ranking_statistic, num_groups=self.num_groups, num_takes=self.num_takes)
        else:
            statistic = partial(task_agreement_statistic, num_takes=self.num_takes)
        return EpisodeStatistic(lambda sums: statistic(sums)[0], (lambda sums: statistic(sums)[1]) if takes else None)

    def compute(self) -> Tensor:
        """Informedness (agreement) or clamped Spearman correlation (ranking).

        Raises:
            NothingToScoreError: (a ``RuntimeError``) If ``compute()`` is called before any ``update()``.
            ValueError: If a policy id given in ranking mode was outside ``[0, num_groups)``.
        """
        if int(self.total) == 0:
            raise NothingToScoreError(
                "TaskValidity.compute() found no outcome: call update() with at least one episode first"
            )
        if int(self.bad_groups):
            raise ValueError(
                f"Expected `groups` (policy ids) in [0, {self.num_groups}) but got {int(self.bad_groups)} id(s) "
                "outside it: raise `num_groups`"
            )
        if int(self.non_binary):
            rank_zero_warn(
                f"Expected `real` task outcomes to be 0 or 1 (success) with mode='agreement' but got "
                f"{int(self.non_binary)} other value(s); they count as success above 0.5. For returns, use "
                "mode='ranking'"
            )
        self.nonfinite_seen = int(self.nonfinite)
        if self.nonfinite_seen and self.warn_nonfinite:
            rank_zero_warn(
                f"{self.nonfinite_seen} task outcome(s) judged on model futures were NaN or Inf; they count as wrong"
            )
        if self.mode == "agreement":
            if self.num_takes > 1:
                return relative_informedness(self.confusion, self.take_confusion)[0].float()
            return _task_agreement_compute(self.confusion)
        if self.mode == "decision":
            return _decision_compute(self.decision_sums)[0]
        if self.num_takes > 1:
            return _task_ranking_takes_compute(self.group_sums, self.take_group_sums)[0].float()
        return _task_ranking_compute(self.group_sums)

    def _takes(self, pred: Tensor, real: Tensor) -> bool:
        """True where ``real`` holds the real takes this metric was built for; raise where it holds others."""
        if not isinstance(real, Tensor) or not isinstance(pred, Tensor) or real.ndim != pred.ndim + 1:
            if self.num_takes > 1:
                raise ValueError(
                    f"Expected `real` to hold R = {self.num_takes} takes after the batch dimension but got shape "
                    f"{tuple(real.shape) if isinstance(real, Tensor) else type(real).__name__}"
                )
            return False
        if real.shape[1] != self.num_takes:
            raise ValueError(
                f"Expected `real` to hold R = {self.num_takes} takes (argument `num_takes`) in dim 1 but got shape "
                f"{tuple(real.shape)}"
            )
        return True

    def real_baseline(self) -> Tensor:
        """Reality's own score: each real take held out, scored against the others as the model is (1 with 1 take)."""
        with self.sync_context(self.dist_sync_fn, should_sync=self.sync_on_compute, should_unsync=self.sync_on_compute):
            if self.num_takes == 1 or self.mode == "decision":
                return torch.ones((), device=self.device)
            if self.mode == "agreement":
                return relative_informedness(self.confusion, self.take_confusion)[1].float()
            return _task_ranking_takes_compute(self.group_sums, self.take_group_sums)[1].float()

    def no_regret(self) -> Tensor:
        """Decision mode: mean normalised no-regret of the planner's choices, in [0, 1] (1 = no regret).

        Raises:
            RuntimeError: In another mode.
        """
        if self.mode != "decision":
            raise RuntimeError(f"TaskValidity.no_regret() needs mode='decision' but the mode is {self.mode!r}")
        with self.sync_context(self.dist_sync_fn, should_sync=self.sync_on_compute, should_unsync=self.sync_on_compute):
            return _decision_compute(self.decision_sums)[1]
