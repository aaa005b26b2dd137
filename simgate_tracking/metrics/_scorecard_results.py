"""What a scorecard reports beyond its scores: reality's own, per-episode tables, interval statistics, pictures."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

from torch import Tensor
from torchmetrics import Metric

from simgate_tracking._utils import rank_zero_warn
from simgate_tracking.bootstrap import EpisodeStatistic
from simgate_tracking.functional._checks import NothingToScoreError
from simgate_tracking.gate import DEFAULT_THRESHOLD
from simgate_tracking.metrics._base import PlotValue
from simgate_tracking.metrics._composite import CompositeMetric, compute_child
from simgate_tracking.metrics._episode_mean import EpisodeMeanMetric
from simgate_tracking.metrics._episode_tables import episode_score_table, episode_statistics_table
from simgate_tracking.metrics._plot import plot_scorecard
from simgate_tracking.metrics.task_validity import TaskValidity

if TYPE_CHECKING:
    from simgate_tracking.metrics.scorecard import SimulatorScorecard


class ScorecardResults(CompositeMetric):
    """The reporting half of :class:`~simgate_tracking.metrics.SimulatorScorecard`, apart from its updates."""

    task_validity: TaskValidity

    def frame_axes(self) -> dict[str, EpisodeMeanMetric]:
        """The gated axes scored from frames, by name."""
        raise NotImplementedError

    def was_measured(self, axis: str) -> bool:
        """Whether any update reached the gated ``axis``."""
        raise NotImplementedError

    def real_baseline(self) -> dict[str, Tensor]:
        """Reality's own score on every measured simulator axis, each real take held out (1 with one take).

        Each take is scored against the other takes as the model is; with one take per episode reality is its own
        reference and scores 1 on every axis.
        """
        axes: dict[str, EpisodeMeanMetric | TaskValidity] = {**self.frame_axes(), "task_validity": self.task_validity}
        with self.sync_context(self.dist_sync_fn, should_sync=self.sync_on_compute, should_unsync=self.sync_on_compute):
            measured = [name for name, axis in axes.items() if self.was_measured(name) and int(axis.total)]
            return {name: axes[name].real_baseline() for name in measured}

    def _warn_nonfinite(self, scores: dict[str, Tensor]) -> None:
        """One warning for every axis that scored NaN or Inf model output as 0 (counts synced by the axes)."""
        axes = {**self.frame_axes(), "task_validity": self.task_validity}
        hit = {name: axes[name].nonfinite_seen for name in axes if name in scores and axes[name].nonfinite_seen}
        if hit:
            counts = ", ".join(f"{name} ({count})" for name, count in hit.items())
            rank_zero_warn(
                "The world model produced NaN or Inf output; those episodes score 0 (task outcomes count as wrong) "
                f"on: {counts}. Check its rollouts."
            )

    def episode_scores(self) -> dict[str, Tensor]:
        """Per-episode scores of every measured frame axis, sorted by ``episode_index`` (NaN: nothing to score).

        Raises:
            RuntimeError: If the scorecard was built without ``episode_scores=True``.
        """
        return episode_score_table(cast("SimulatorScorecard", self))

    def episode_statistics(self) -> dict[str, Tensor]:
        """What every measured axis sums per episode, sorted by ``episode_index``: the input of its interval.

        Frame axes: (n,) scores with one take, (n, 1 + R) with R real takes (see
        :meth:`~simgate_tracking.metrics._episode_mean.EpisodeMeanMetric.episode_statistics`); ``task_validity``:
        each episode's contribution rows (n, k), its judged rows (one per branch with per-branch outcomes) summed,
        whose score :meth:`interval_statistics` gives. Gathered across processes in episode order, so an interval
        taken from them equals the single-process one.

        Raises:
            RuntimeError: If the scorecard was built without ``episode_scores=True``.
        """
        return episode_statistics_table(cast("SimulatorScorecard", self))

    def interval_statistics(self) -> dict[str, EpisodeStatistic]:
        """Axes with their own statistic of summed episode rows (``task_validity``), for ``gate_intervals``."""
        return {"task_validity": self.task_validity.interval_statistic()}

    def plot(
        self,
        val: PlotValue = None,
        ax: Any = None,
        threshold: float | Mapping[str, float] = DEFAULT_THRESHOLD,
    ) -> tuple[Any, Any]:
        """Plot the scorecard picture of one value, or every gated axis over a sequence of values.

        One value (default :meth:`compute`, with reality's baseline) is drawn as the dashboards draw a check; a
        sequence of values (one per check) as a line per gated axis over the checks (see
        :func:`~simgate_tracking.metrics._plot.plot_scorecard`).

        Args:
            val: One value or a sequence of values; default :meth:`compute`.
            ax: A matplotlib ``Axes`` to draw the bars or the lines in; default a new figure.
            threshold: The gate's threshold, one for every axis or per axis, as
                :class:`~simgate_tracking.SimulatorGate` takes it.

        Returns:
            The figure and the ``Axes`` drawn in.

        Raises:
            ModuleNotFoundError: If matplotlib is not installed (the ``media`` extra).
        """
        if val is None:
            return plot_scorecard(self.compute(), ax, threshold, real_baseline=self.real_baseline())
        return plot_scorecard(val, ax, threshold)


def measure(scores: dict[str, Tensor], name: str, metric: Metric) -> None:
    """Add ``name``'s score; an axis with nothing to score (no visible object, one policy) is left out, warned."""
    try:
        scores[name] = compute_child(metric)
    except NothingToScoreError as err:
        rank_zero_warn(f"{name} is left out of the scorecard, it had nothing to score: {err}")
