r"""The bootstrap core: BCa intervals of a statistic of summed per-episode rows, resampling probe episodes.

An axis is a statistic of sums over probe episodes: by default the mean of per-episode scores, or with R real takes
the ratio ``clamp(sum m / sum s)`` of the model's agreement with reality to reality's own spread (see
:mod:`simgate_tracking.functional.takes`). An axis may bring its own :class:`EpisodeStatistic` instead (task
validity's informedness of summed confusion counts). Each resample draws *episodes* with replacement, sums their
rows and recomputes the statistic from those sums, never a mean of per-episode ratios.

The interval is the bias-corrected and accelerated (BCa) bootstrap interval at an expanded level: the percentiles
use :math:`\alpha' = 2\,\Phi\!\left(-\sqrt{n/(n-1)}\; t_{1-\alpha/2,\,n-1}\right)` instead of :math:`\alpha`, which
undoes the bootstrap's narrowness with few episodes (Hesterberg, *What teachers should know about the bootstrap*,
2015). The resamples come from a seeded generator on the CPU, from per-episode rows in episode order: the same check
gives the same interval, in one process or gathered from several.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from simgate_tracking.functional.takes import relative_to_spread

DEFAULT_LEVEL = 0.95
DEFAULT_RESAMPLES = 2000
DEFAULT_SEED = 0
_CHUNK_VALUES = 2**22  # resampled rows held at once: probe sets x resamples x episodes x columns


def _mean_or_ratio(sums: Tensor) -> Tensor:
    """The axis from summed rows (..., 1 + R): the model's sum relative to the takes' (a mean for plain scores)."""
    if sums.shape[-1] == 2:  # plain scores and a count (real takes come two or more): the mean, as the axis takes it
        return sums[..., 0] / sums[..., 1]
    return relative_to_spread(sums[..., 0], sums[..., 1:])[0]


def _reality_of_ratio(sums: Tensor) -> Tensor:
    """Reality's own score from summed rows (..., 1 + R), each take held out (1 with one take)."""
    if sums.shape[-1] == 2:
        return torch.ones_like(sums[..., 0])
    return relative_to_spread(sums[..., 0], sums[..., 1:])[1]


@dataclass(frozen=True)
class EpisodeStatistic:
    """How an axis turns per-episode rows, summed over the episodes of a probe set or a resample, into its score.

    Both functions map summed rows (..., k) to values (...,), batched over the leading dimensions.

    Attributes:
        score: The axis's score from summed rows.
        reality: Reality's own score from summed rows, or ``None`` where reality is its own reference (one real take):
            such an axis has no interval of reality's score.
    """

    score: Callable[[Tensor], Tensor]
    reality: Callable[[Tensor], Tensor] | None = None


# the frame axes': rows (n, 1 + R), the mean of per-episode scores (rows ``(x, 1)``) or the ratio of sums with takes
MEAN_OR_RATIO = EpisodeStatistic(_mean_or_ratio, _reality_of_ratio)


def check_level(level: Any, name: str = "level") -> float:
    """``level`` as a float strictly between 0 and 1, else a ``ValueError`` naming ``name``."""
    if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0.0 < level < 1.0:
        raise ValueError(f"Expected argument `{name}` to be a float in (0, 1) but got {level!r}")
    return float(level)


def check_count(value: Any, name: str, low: int) -> int:
    """``value`` as an int ``>= low``, else a ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"Expected argument `{name}` to be an int >= {low} but got {value!r}")
    return value


def t_quantile(p: float, df: int) -> float:
    """The ``p`` quantile of Student's t with ``df`` degrees of freedom (exact for 1 and 2, else to about 1e-3).

    Example:
        >>> round(t_quantile(0.975, 7), 3)
        2.365
    """
    if df == 1:
        return math.tan(math.pi * (p - 0.5))
    if df == 2:
        return (2 * p - 1) / math.sqrt(2 * p * (1 - p))
    z = ndtri(p)
    # Cornish-Fisher expansion in 1/df (Abramowitz and Stegun 26.7.5)
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    g4 = (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160
    return z + g1 / df + g2 / df**2 + g3 / df**3 + g4 / df**4


def ndtr(x: float) -> float:
    """The standard normal distribution function at ``x``."""
    return float(torch.special.ndtr(torch.tensor(x, dtype=torch.float64)))


def ndtri(p: float) -> float:
    """The standard normal quantile of ``p``."""
    return float(torch.special.ndtri(torch.tensor(p, dtype=torch.float64)))


def _resampled(rows: Tensor, statistic: Callable[[Tensor], Tensor], num_resamples: int, seed: int) -> Tensor:
    """The statistic of ``num_resamples`` resamples of the episodes of each probe set, (D, B), sorted per set.

    ``rows``: (D, n, k), D probe sets of n episodes. A few resamples at a time, so memory stays bounded.
    """
    sets, n, width = rows.shape
    generator = torch.Generator().manual_seed(seed)
    chunk = max(1, _CHUNK_VALUES // (sets * n * width))
    which = torch.arange(sets).view(sets, 1, 1)
    values = []
    for start in range(0, num_resamples, chunk):
        picks = torch.randint(n, (sets, min(chunk, num_resamples - start), n), generator=generator)
        values.append(statistic(rows[which, picks].sum(dim=2)).double())
    return torch.cat(values, dim=1).sort(dim=1).values


def _checked_rows(
    rows: Tensor, statistic: EpisodeStatistic, reality: bool
) -> tuple[Tensor, Callable[[Tensor], Tensor]]:
    """``rows`` as (D, n, k) float64 on the CPU, and the function to bootstrap; a ``ValueError`` on bad input."""
    rows = torch.as_tensor(rows).detach().to("cpu", torch.float64)
    least = 2 if statistic is MEAN_OR_RATIO else 1
    if rows.ndim != 3 or rows.shape[2] < least or rows.shape[1] < 1 or bool(rows.isnan().any()):
        raise ValueError(
            f"Expected `rows` of shape (D, n >= 1, {'1 + R' if least == 2 else 'k'}) without NaN but got shape "
            f"{tuple(rows.shape)}" + (" with NaN" if rows.numel() and bool(rows.isnan().any()) else "")
        )
    if not reality:
        return rows, statistic.score
    if statistic.reality is None:
        raise ValueError("Expected argument `statistic` to have a `reality` function with reality=True but got None")
    return rows, statistic.reality


def batched_bootstrap_interval(
    rows: Tensor,
    level: float = DEFAULT_LEVEL,
    num_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    reality: bool = False,
    statistic: EpisodeStatistic = MEAN_OR_RATIO,
) -> Tensor:
    """:func:`~simgate_tracking.confidence.bootstrap_interval` of D probe sets at once, vectorised (coverage checks).

    Args:
        rows: (D, n, k) per-episode rows of D probe sets of n scored episodes each (no NaN). With the default
            statistic, k = 1 + R: the model's agreement, then each real take's; per-episode scores ``x`` go in as
            ``(x, 1)`` rows.
        level: The confidence level, in (0, 1).
        num_resamples: Bootstrap resamples per set.
        seed: Seed of the resampling.
        reality: Intervals of reality's own score instead of the model's.
        statistic: How summed rows give the axis (default: the mean, or the ratio of sums with takes).

    Returns:
        (D, 2) float64: each set's ``(low, high)``.

    Raises:
        ValueError: On a bad argument.
    """
    level = check_level(level)
    check_count(num_resamples, "num_resamples", 10)
    check_count(seed, "seed", 0)
    rows, function = _checked_rows(rows, statistic, reality)
    n = rows.shape[1]
    estimate = function(rows.sum(dim=1)).double()
    if n < 2:  # one episode says nothing about the spread between episodes
        return torch.stack([torch.zeros_like(estimate), torch.ones_like(estimate)], dim=1)
    values = _resampled(rows, function, num_resamples, seed)
    # a resample where the statistic is undefined (NaN: a ranking of fewer than two policies) is left out
    counts = (~values.isnan()).sum(dim=1)
    usable = counts.clamp_min(1).double()
    # bias correction: where the estimate sits among the resamples (ties count half)
    below = ((values < estimate[:, None]).sum(dim=1) + 0.5 * (values == estimate[:, None]).sum(dim=1)) / usable
    z0 = torch.special.ndtri(torch.minimum(torch.maximum(below, 1 / usable), 1 - 1 / usable))
    # acceleration: skewness of the jackknife (leave one episode out) values
    jackknife = function(rows.sum(dim=1, keepdim=True) - rows).double()
    defined = ~jackknife.isnan()
    centre = torch.where(defined, jackknife, 0.0).sum(dim=1, keepdim=True) / defined.sum(dim=1, keepdim=True).clamp_min(
        1
    )
    spread = torch.where(defined, centre - jackknife, 0.0)
    energy = spread.square().sum(dim=1)
    acceleration = torch.where(
        energy > 1e-24, spread.pow(3).sum(dim=1) / (6 * energy.clamp_min(1e-24) ** 1.5), torch.zeros_like(energy)
    )
    alpha = 2 * ndtr(-math.sqrt(n / (n - 1)) * t_quantile(1 - (1 - level) / 2, n - 1))  # the expanded level
    ends = []
    last = (counts - 1).clamp_min(0)
    for z in (ndtri(alpha / 2), ndtri(1 - alpha / 2)):
        shift = (z0 + z) / (1 - acceleration * (z0 + z)).clamp_min(1e-6)
        index = torch.minimum((torch.special.ndtr(z0 + shift) * last).round().long().clamp_min(0), last)
        ends.append(values.gather(1, index[:, None])[:, 0])
    nothing = counts == 0  # no resample defined the statistic: nothing is known beyond [0, 1]
    ends = [
        torch.where(nothing, torch.full_like(ends[0], bound), end) for bound, end in zip((0.0, 1.0), ends, strict=True)
    ]
    # the interval always holds the estimate the gate judges
    return torch.stack([torch.minimum(ends[0], estimate), torch.maximum(ends[1], estimate)], dim=1)
