"""Decision agreement: does a planner choosing among action branches on model futures pick what reality would?"""

from __future__ import annotations

import torch
from torch import Tensor

from simgate_tracking.functional._checks import check_rank, check_same_shape


def _decision_update(pred: Tensor, real: Tensor) -> Tensor:
    """Sums ``[agreement, chance, no_regret, decisive]`` over episodes that have a decision to make."""
    return _decision_rows(pred, real).sum(dim=0)


def _decision_rows(pred: Tensor, real: Tensor) -> Tensor:
    """Each episode's ``[agreement, chance, no_regret, decisive]`` (B, 4); zeros where it has no decision to make.

    A planner picks the branch with the highest value on model futures, uniformly among ties (a model that
    ignores actions ties every branch, so it is exactly at chance). An episode is decisive when its real branch
    values are not all equal. Non-finite predictions make the planner's choice uniform.
    """
    check_rank(pred, 2, "pred", "(B, K+1)")
    check_rank(real, 2, "real", "(B, K+1)")
    check_same_shape(pred, real, "pred", "real")
    p, y = pred.double(), real.double()
    p = torch.where(torch.isfinite(p).all(dim=1, keepdim=True), p, torch.zeros_like(p))
    chosen = (p == p.amax(dim=1, keepdim=True)).double()
    chosen = chosen / chosen.sum(dim=1, keepdim=True)  # the planner's choice, uniform among its ties
    best, worst = y.amax(dim=1, keepdim=True), y.amin(dim=1, keepdim=True)
    right = (y == best).double()
    decisive = (best > worst).squeeze(1)
    agreement = (chosen * right).sum(dim=1)
    chance = right.mean(dim=1)
    # real value of the model's choice on the scale worst (0) .. best (1)
    no_regret = (chosen * (y - worst)).sum(dim=1) / (best - worst).squeeze(1).clamp_min(1e-12)
    stats = torch.stack([agreement, chance, no_regret, torch.ones_like(agreement)], dim=1)
    return torch.where(decisive.unsqueeze(1), stats, torch.zeros_like(stats))


def _decision_compute(sums: Tensor) -> tuple[Tensor, Tensor]:
    """Chance-corrected decision agreement in [0, 1], and mean normalised no-regret in [0, 1], from sums (..., 4)."""
    agreement, chance, no_regret, decisive = sums.unbind(-1)
    n = decisive.clamp_min(1)
    a, c = agreement / n, chance / n
    score = torch.where(c < 1, (a - c) / (1 - c).clamp_min(1e-12), torch.ones_like(a)).clamp(0.0, 1.0)
    return score.float(), (no_regret / n).float()


def decision_agreement(pred: Tensor, real: Tensor) -> tuple[Tensor, Tensor]:
    r"""Decision agreement and normalised regret of a planner that chooses among action branches on model futures.

    Per episode, a planner picks the branch with the highest task value judged on model futures (uniformly among
    ties); reality's choice is the branch with the best real outcome. With :math:`a` the mean probability that the
    model's choice is one of reality's best and :math:`c` the same for a uniformly random choice (chance), the score
    is :math:`(a - c) / (1 - c)` clamped to [0, 1], over the episodes whose real branches differ. 1: the planner always
    picks a best branch. 0: no better than picking at random, e.g. a model that ignores actions.

    The second value is the mean normalised no-regret: the real value of the model's choice from the worst (0) to
    the best (1) real branch value; 1 = no regret.

    Args:
        pred: Task value of every branch judged on model futures, (B, K+1).
        real: Real outcome of every branch, (B, K+1).

    Example:
        >>> import torch
        >>> real = torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
        >>> decision_agreement(real, real)
        (tensor(1.), tensor(1.))
        >>> decision_agreement(torch.zeros(2, 3), real)  # ignores actions: every branch ties
        (tensor(0.), tensor(0.3333))
    """
    return _decision_compute(_decision_update(pred, real))
