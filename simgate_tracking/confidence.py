r"""Confidence in the verdict: bootstrap intervals of every axis over probe episodes, and how many episodes to use.

With 8 to 32 probe episodes every axis is an estimate. An axis is a statistic of sums over episodes: with one real
take the mean of per-episode scores, with R real takes the ratio ``clamp(sum m / sum s)`` of the model's agreement
with reality to reality's own spread (see :mod:`simgate_tracking.functional.takes`), and for task validity the
informedness (or rank correlation, or decision agreement) of summed per-episode counts. The interval resamples
*episodes* with replacement and recomputes that statistic from the resampled sums, never a mean of per-episode
ratios: an axis brings its own statistic as an :class:`~simgate_tracking.bootstrap.EpisodeStatistic`.

The interval is the BCa bootstrap interval at an expanded level (see :mod:`simgate_tracking.bootstrap`). Measured over
many small probe sets drawn from bounded and skewed populations, 95% intervals cover the population value in 90-98%
of draws with 8 episodes and 94-96% with 32 (``tests/test_confidence.py``); a failure that only a few episodes show
is the limit (see the Confidence page of the documentation). The resamples come from a seeded generator on the CPU,
from per-episode statistics in episode order: the same check gives the same interval, in one process or gathered
from several.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

import torch
from torch import Tensor

from simgate_tracking.bootstrap import (
    DEFAULT_LEVEL,
    DEFAULT_RESAMPLES,
    DEFAULT_SEED,
    MEAN_OR_RATIO,
    EpisodeStatistic,
    batched_bootstrap_interval,
    check_level,
    ndtri,
    t_quantile,
)

__all__ = [
    "DEFAULT_LEVEL",
    "DEFAULT_RESAMPLES",
    "DEFAULT_SEED",
    "MEAN_OR_RATIO",
    "EpisodeStatistic",
    "Interval",
    "Verdict",
    "batched_bootstrap_interval",
    "bootstrap_interval",
    "bootstrap_intervals",
    "check_level",
    "episodes_needed",
    "gate_intervals",
    "gate_verdict",
    "t_quantile",
]

Verdict = Literal["pass", "fail", "inconclusive"]
Interval = tuple[float, float]


def _episode_rows(statistics: Any, name: str, statistic: EpisodeStatistic = MEAN_OR_RATIO) -> Tensor:
    """(n, k) float64 rows on the CPU: with the default statistic a model column, then reality's takes (or ones).

    Episodes with nothing to score (a NaN anywhere in their row) are left out.
    """
    rows = torch.as_tensor(statistics).detach().to("cpu", torch.float64)
    if statistic is not MEAN_OR_RATIO:
        if rows.ndim != 2 or rows.shape[1] < 1:
            raise ValueError(f"Expected `{name}` as per-episode rows (n, k) but got shape {tuple(rows.shape)}")
        return rows[~rows.isnan().any(dim=1)]
    if rows.ndim == 1:
        rows = torch.stack([rows, torch.ones_like(rows)], dim=1)
    if rows.ndim != 2 or rows.shape[1] < 2:
        raise ValueError(
            f"Expected `{name}` as per-episode scores (n,) or per-episode sums (n, 1 + R) (the model's agreement, "
            f"then each real take's) but got shape {tuple(rows.shape)}"
        )
    return rows[~rows.isnan().any(dim=1)]


def bootstrap_interval(
    episode_statistics: Tensor,
    level: float = DEFAULT_LEVEL,
    num_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    reality: bool = False,
    statistic: EpisodeStatistic = MEAN_OR_RATIO,
) -> Interval:
    r"""A confidence interval of one axis by bootstrap over probe episodes (see the module docstring).

    Args:
        episode_statistics: Per-episode scores (n,), the axis being their mean; or, with R real takes, per-episode
            sums (n, 1 + R): the model's agreement with reality, then each take's agreement with the other takes, the
            axis being ``clamp(sum m / mean_r sum a_r)``; or per-episode rows (n, k) of an axis that brings its own
            ``statistic``. Episodes with a NaN (nothing to score) are left out.
        level: The confidence level, in (0, 1).
        num_resamples: Bootstrap resamples.
        seed: Seed of the resampling: the same statistics and seed give the same interval.
        reality: The interval of reality's own score (each real take held out) instead of the model's.
        statistic: How the axis follows from rows summed over episodes (default: the mean, or the ratio of sums with
            takes), such as :meth:`~simgate_tracking.metrics.TaskValidity.interval_statistic`.

    Returns:
        ``(low, high)``, holding the axis's own value; ``(0.0, 1.0)`` with fewer than two scored episodes.

    Raises:
        ValueError: On a bad argument, or no scored episode.

    Example:
        >>> import torch
        >>> scores = torch.tensor([0.62, 0.71, 0.80, 0.66, 0.75, 0.58, 0.77, 0.69])
        >>> low, high = bootstrap_interval(scores)
        >>> round(low, 3), round(float(scores.mean()), 3), round(high, 3)
        (0.627, 0.697, 0.756)
    """
    rows = _episode_rows(episode_statistics, "episode_statistics", statistic)
    if rows.shape[0] == 0:
        raise ValueError("Expected `episode_statistics` to hold at least one scored episode but got none (all NaN)")
    ends = batched_bootstrap_interval(rows.unsqueeze(0), level, num_resamples, seed, reality, statistic)
    low, high = ends[0].tolist()
    return low, high


def bootstrap_intervals(
    statistics: Mapping[str, Tensor],
    level: float = DEFAULT_LEVEL,
    num_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    reality: bool = False,
    statistic_fns: Mapping[str, EpisodeStatistic] | None = None,
) -> dict[str, Interval]:
    """:func:`bootstrap_interval` of every axis in ``statistics``; axes with no scored episode are left out.

    ``statistic_fns`` gives an axis's own statistic (see :func:`gate_intervals`); the others take the default.
    """
    fns = _checked_fns(statistic_fns)
    intervals = {}
    for name, values in statistics.items():
        statistic = fns.get(name, MEAN_OR_RATIO)
        if _episode_rows(values, name, statistic).shape[0]:
            intervals[name] = bootstrap_interval(values, level, num_resamples, seed, reality, statistic)
    return intervals


def gate_intervals(
    statistics: Mapping[str, Tensor],
    level: float = DEFAULT_LEVEL,
    num_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    statistic_fns: Mapping[str, EpisodeStatistic] | None = None,
) -> tuple[dict[str, Interval], dict[str, Interval]]:
    """The intervals of every axis's score and, for axes scored against real takes, of reality's own score.

    Args:
        statistics: Per-episode statistics by axis, in episode order, as
            :meth:`~simgate_tracking.metrics.SimulatorScorecard.episode_statistics` gives them.
        level: The confidence level, in (0, 1).
        num_resamples: Bootstrap resamples.
        seed: Seed of the resampling.
        statistic_fns: An axis's own statistic of its summed rows, by axis, as
            :meth:`~simgate_tracking.metrics.SimulatorScorecard.interval_statistics` gives them (task validity);
            other axes are the mean of their per-episode scores, or the ratio of sums with takes.

    Returns:
        ``(intervals, real_baseline_intervals)``, as :meth:`~simgate_tracking.SimulatorGate.evaluate` takes them.
        An axis with its own statistic has an interval of reality's score where the statistic has a ``reality``.

    Raises:
        ValueError: On a bad argument.
    """
    fns = _checked_fns(statistic_fns)
    intervals = bootstrap_intervals(statistics, level, num_resamples, seed, statistic_fns=fns)
    with_takes = {
        name: values
        for name, values in statistics.items()
        if (fns[name].reality is not None if name in fns else values.ndim == 2 and values.shape[1] > 2)
    }
    return intervals, bootstrap_intervals(with_takes, level, num_resamples, seed, reality=True, statistic_fns=fns)


def _checked_fns(statistic_fns: Mapping[str, EpisodeStatistic] | None) -> dict[str, EpisodeStatistic]:
    """``statistic_fns`` as a dict of :class:`EpisodeStatistic` by axis name, else a ``ValueError`` naming it."""
    fns = dict(statistic_fns or {})
    for name, statistic in fns.items():
        if not isinstance(statistic, EpisodeStatistic):
            raise ValueError(
                f"Expected argument `statistic_fns` to map axis names to EpisodeStatistic but got {name!r}: "
                f"{type(statistic).__name__}"
            )
    return fns


def episodes_needed(episode_scores: Tensor, width: float, level: float = DEFAULT_LEVEL) -> int:
    r"""How many probe episodes would give a ``level`` interval about ``width`` wide, from the spread seen so far.

    :math:`n = \lceil (2 z\, \sigma / w)^2 \rceil` with :math:`\sigma` the standard deviation of the per-episode
    scores and :math:`z` the normal quantile of the level; with real takes (rows (n, 1 + R)), :math:`\sigma` is that
    of each episode's pull on the ratio of sums, :math:`(m_i - \hat r\, s_i) / \bar s`. The interval narrows as
    :math:`1/\sqrt{n}`: halving the width takes four times the episodes.

    Args:
        episode_scores: Per-episode scores (n,), or per-episode sums (n, 1 + R) as :func:`bootstrap_interval` takes
            them; NaN episodes are left out.
        width: The interval width wanted, ``high - low``, in (0, 1].
        level: The confidence level, in (0, 1).

    Returns:
        The number of episodes, at least 2.

    Raises:
        ValueError: On a bad argument, or fewer than two scored episodes.

    Example:
        >>> import torch
        >>> scores = torch.tensor([0.62, 0.71, 0.80, 0.66, 0.75, 0.58, 0.77, 0.69])
        >>> episodes_needed(scores, width=0.05)
        36
    """
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not 0.0 < width <= 1.0:
        raise ValueError(f"Expected argument `width` to be a float in (0, 1] but got {width!r}")
    level = check_level(level)
    rows = _episode_rows(episode_scores, "episode_scores")
    if rows.shape[0] < 2:
        raise ValueError(
            "Expected `episode_scores` to hold at least 2 scored episodes, to see their spread, but got "
            f"{rows.shape[0]}"
        )
    spreads = rows[:, 1:].mean(dim=1)
    ratio = rows[:, 0].sum() / spreads.sum().clamp_min(1e-12)
    pulls = (rows[:, 0] - ratio * spreads) / spreads.mean().clamp_min(1e-12)
    sigma = float(pulls.std())
    z = ndtri(1 - (1 - level) / 2)
    return max(2, math.ceil((2 * z * sigma / width) ** 2))


def gate_verdict(
    scores: Mapping[str, float], thresholds: Mapping[str, float], intervals: Mapping[str, Interval]
) -> Verdict:
    """``"fail"`` if an interval lies at or below its threshold, ``"pass"`` if every one lies above, else inconclusive.

    A gated score without an interval (a score gated by an explicit threshold, such as ``psnr``) counts as an
    interval of its value alone.

    Example:
        >>> gate_verdict({"controllability": 0.7}, {"controllability": 0.65}, {"controllability": (0.6, 0.8)})
        'inconclusive'
        >>> gate_verdict({"controllability": 0.7}, {"controllability": 0.65}, {"controllability": (0.66, 0.8)})
        'pass'
    """
    ends = {name: intervals.get(name, (score, score)) for name, score in scores.items()}
    if any(high <= thresholds[name] for name, (_, high) in ends.items()):
        return "fail"
    if all(low > thresholds[name] for name, (low, _) in ends.items()):
        return "pass"
    return "inconclusive"
