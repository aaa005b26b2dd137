"""Task validity from summed per-episode rows: what a bootstrap over probe episodes resamples and recomputes.

Task validity is a statistic of counts summed over the probe set (an informedness of a confusion table, a rank
correlation of per-policy mean returns, a chance-corrected decision agreement), never a mean of per-episode scores.
Each episode therefore contributes a row of those counts; the rows of any set of episodes, summed, give the sums the
metric keeps, and the functions here turn such sums (..., k), batched over leading dimensions, into the score and
reality's own score exactly as :class:`~simgate_tracking.metrics.TaskValidity` computes them.
"""

from __future__ import annotations

import torch
from torch import Tensor

from simgate_tracking.functional.decision import _decision_compute
from simgate_tracking.functional.takes import relative_to_spread
from simgate_tracking.functional.task_validity import _task_agreement_compute, relative_informedness


def task_agreement_statistic(sums: Tensor, num_takes: int = 1) -> tuple[Tensor, Tensor]:
    """Informedness and reality's own score from summed agreement rows (..., 4) or, with R takes, (..., 4 (1 + R)).

    A row is the model's confusion ``[tp, fn, tn, fp]``, then with takes each held-out take's.

    Example:
        >>> import torch
        >>> score, reality = task_agreement_statistic(torch.tensor([[1.0, 1.0, 2.0, 0.0], [2.0, 0.0, 2.0, 0.0]]))
        >>> score.tolist(), reality.tolist()
        ([0.5, 1.0], [1.0, 1.0])
    """
    if num_takes == 1:
        score = _task_agreement_compute(sums).double()
        return score, torch.ones_like(score)
    return relative_informedness(sums[..., :4], sums[..., 4:].unflatten(-1, (num_takes, 4)))


def task_ranking_rows(pred: Tensor, real: Tensor, groups: Tensor, num_groups: int) -> Tensor:
    """Each episode's ranking row (B, (3 + R) G): its model return, real return and count under its policy's column.

    ``real`` is (B,) or, with R takes, (B, R): the real return is then the mean over takes, and each take's own return
    follows. Ids outside ``[0, num_groups)`` give a row of zeros, as the metric leaves them out.
    """
    ids = groups.long()
    kept = ((ids >= 0) & (ids < num_groups)).double()
    one_hot = torch.nn.functional.one_hot(ids.clamp(0, num_groups - 1), num_groups).double() * kept.unsqueeze(1)
    real = real.double()
    takes = list(real.unbind(1)) if real.ndim == 2 else []
    mean = real.mean(dim=1) if takes else real
    model = torch.nan_to_num(pred.double(), nan=0.0, posinf=0.0, neginf=0.0)
    values = torch.stack([model, mean, torch.ones_like(mean), *takes], dim=1)
    return (values.unsqueeze(2) * one_hot.unsqueeze(1)).flatten(1)


def _ranks(x: Tensor, used: Tensor) -> Tensor:
    """Average ranks among the used entries of the last dimension (ties share the mean of their positions)."""
    others = used.unsqueeze(-2)
    less = ((x.unsqueeze(-2) < x.unsqueeze(-1)) & others).sum(dim=-1)
    ties = ((x.unsqueeze(-2) == x.unsqueeze(-1)) & others).sum(dim=-1)
    return less.to(x.dtype) + (ties.to(x.dtype) - 1) / 2


def _spearman(model: Tensor, real: Tensor, counts: Tensor) -> Tensor:
    """Spearman correlation of per-group means (..., G), clamped at 0; NaN (undefined) with fewer than two groups."""
    used = counts > 0
    size = used.sum(dim=-1, keepdim=True).clamp_min(1).to(model.dtype)
    centred = []
    for sums in (model, real):
        ranks = _ranks(sums / counts.clamp_min(1), used)
        centred.append(torch.where(used, ranks - (ranks * used).sum(dim=-1, keepdim=True) / size, 0.0))
    a, b = centred
    denom = (a.square().sum(dim=-1) * b.square().sum(dim=-1)).sqrt()
    rho = torch.where(denom > 0, (a * b).sum(dim=-1) / denom.clamp_min(1e-12), torch.zeros_like(denom))
    return torch.where(used.sum(dim=-1) >= 2, rho.clamp_min(0.0), torch.full_like(rho, float("nan")))


def task_ranking_statistic(sums: Tensor, num_groups: int, num_takes: int = 1) -> tuple[Tensor, Tensor]:
    """Spearman of per-policy mean return and reality's own score from summed ranking rows (..., (3 + R) G).

    A resample holding fewer than two policies has no ranking: its score is NaN, and the bootstrap leaves it out.
    """
    table = sums.unflatten(-1, (-1, num_groups))
    score = _spearman(table[..., 0, :], table[..., 1, :], table[..., 2, :])
    if num_takes == 1:
        return score, torch.ones_like(score)
    takes = table[..., 3:, :]
    others = (takes.sum(dim=-2, keepdim=True) - takes) / (num_takes - 1)
    return relative_to_spread(score, _spearman(takes, others, table[..., 2:3, :]))


def task_decision_statistic(sums: Tensor) -> Tensor:
    """Chance-corrected decision agreement from summed decision rows (..., 4).

    A resample without an episode that has a decision to make has no score: NaN, which the bootstrap leaves out.
    """
    score = _decision_compute(sums)[0].double()
    return torch.where(sums[..., 3] > 0, score, torch.full_like(score, float("nan")))
