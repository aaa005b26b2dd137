"""Task validity: does a task judged on model futures get the verdict the real environment gives?"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from simgate_tracking.functional._checks import NothingToScoreError, check_rank, check_same_shape
from simgate_tracking.functional.decision import decision_agreement
from simgate_tracking.functional.takes import relative_to_spread

TaskMode = Literal["agreement", "ranking", "decision"]
TASK_MODES: tuple[str, ...] = ("agreement", "ranking", "decision")


def _check_outcomes(pred: Tensor, real: Tensor) -> None:
    check_rank(pred, 1, "pred", "(B,)")
    check_rank(real, 1, "real", "(B,)")
    check_same_shape(pred, real, "pred", "real")


def _as_success(x: Tensor) -> Tensor:
    return x if x.dtype == torch.bool else x > 0.5


def _task_agreement_rows(pred: Tensor, real: Tensor) -> Tensor:
    """Each episode's confusion row ``[tp, fn, tn, fp]`` (B, 4), one count set; a non-finite prediction is wrong."""
    _check_outcomes(pred, real)
    wrong = ~torch.isfinite(pred) if pred.is_floating_point() else torch.zeros_like(real, dtype=torch.bool)
    truth = _as_success(real)
    said = torch.where(wrong, ~truth, _as_success(pred))
    return torch.stack([said & truth, ~said & truth, ~said & ~truth, said & ~truth], dim=1).to(torch.float64)


def _task_agreement_update(pred: Tensor, real: Tensor) -> Tensor:
    """Confusion counts ``[tp, fn, tn, fp]`` of predicted against real success; a non-finite prediction is wrong."""
    return _task_agreement_rows(pred, real).sum(dim=0)


def _soft_confusion(said: Tensor, frequency: Tensor) -> Tensor:
    """Per-episode confusion ``[tp, fn, tn, fp]`` (..., 4) of verdicts against real success frequencies in [0, 1]."""
    said, frequency = said.double(), frequency.double()
    unsaid, failure = 1 - said, 1 - frequency
    return torch.stack([said * frequency, unsaid * frequency, unsaid * failure, said * failure], dim=-1)


def _task_agreement_takes_rows(pred: Tensor, real: Tensor) -> tuple[Tensor, Tensor]:
    """Against R real takes, real (B, R): each episode's soft confusion (B, 4) and each held-out take's (B, R, 4).

    The model's verdict is compared with reality's success frequency over the takes; each take's own success with
    the frequency over the other takes (leave one take out).
    """
    check_rank(pred, 1, "pred", "(B,)")
    check_rank(real, 2, "real", "(B, R)")
    if real.shape[0] != pred.shape[0] or real.shape[1] < 2:
        raise ValueError(
            f"Expected `real` to have shape (B, R) = ({pred.shape[0]}, R >= 2) but got {tuple(real.shape)}"
        )
    wrong = ~torch.isfinite(pred) if pred.is_floating_point() else torch.zeros_like(pred, dtype=torch.bool)
    success = _as_success(real).double()
    frequency = success.mean(dim=1)
    said = torch.where(wrong, frequency < 0.5, _as_success(pred))
    others = (success.sum(dim=1, keepdim=True) - success) / (real.shape[1] - 1)
    return _soft_confusion(said, frequency), _soft_confusion(success, others)


def _task_agreement_takes_update(pred: Tensor, real: Tensor) -> tuple[Tensor, Tensor]:
    """Against R real takes, real (B, R): the model's soft confusion (4,) and each held-out take's (R, 4)."""
    model, takes = _task_agreement_takes_rows(pred, real)
    return model.sum(dim=0), takes.sum(dim=0)


def relative_informedness(model: Tensor, takes: Tensor) -> tuple[Tensor, Tensor]:
    """Informedness of the model relative to reality's (each take held out), and reality's own relative score."""
    return relative_to_spread(_task_agreement_compute(model).double(), _informedness(takes).double())


def _informedness(confusion: Tensor) -> Tensor:
    """``TPR + TNR - 1`` clamped at 0; a class with less than one episode's weight counts in proportion to it.

    With one take a class is present in whole episodes or absent (its rate then counts as 1). With real takes a
    class can be present as a fraction of an episode (one success in four takes of one episode): its rate counts
    with that weight, the rest as 1, so one rare real success cannot decide the whole score.
    """
    tp, fn, tn, fp = confusion.unbind(-1)
    positive, negative = (tp + fn).clamp(max=1.0), (tn + fp).clamp(max=1.0)
    tpr = positive * tp / (tp + fn).clamp_min(1e-12) + (1 - positive)
    tnr = negative * tn / (tn + fp).clamp_min(1e-12) + (1 - negative)
    return (tpr + tnr - 1).clamp_min(0.0)


def _task_agreement_compute(confusion: Tensor) -> Tensor:
    """Informedness ``TPR + TNR - 1`` clamped at 0; a class absent from reality counts its rate as 1."""
    return _informedness(confusion).float()


def _task_ranking_update(pred: Tensor, real: Tensor, groups: Tensor, num_groups: int) -> Tensor:
    """Per-group sums ``(3, G)``: model return, real return, episode count. Non-finite predictions count as 0.

    Policy ids outside ``[0, num_groups)`` are left out, without reading them on the host.
    """
    _check_outcomes(pred, real)
    check_rank(groups, 1, "groups", "(B,)")
    check_same_shape(groups, real, "groups", "real")
    if groups.is_floating_point() or groups.dtype == torch.bool:
        raise TypeError(f"Expected `groups` to be an integer tensor of policy ids but got dtype {groups.dtype}")
    ids = groups.long()
    kept = ((ids >= 0) & (ids < num_groups)).double()  # ids out of range are left out; the metric counts them
    ids = ids.clamp(0, num_groups - 1)
    sums = torch.zeros(3, num_groups, dtype=torch.float64, device=real.device)
    values = torch.stack([torch.nan_to_num(pred.double(), nan=0.0, posinf=0.0, neginf=0.0), real.double()])
    sums[:2].index_add_(1, ids, values * kept)
    sums[2].index_add_(0, ids, kept)
    return sums


def _rank(x: Tensor) -> Tensor:
    """Average ranks (ties share the mean of their positions), as Spearman's correlation needs."""
    order = x.argsort()
    ranks = torch.empty_like(x)
    ranks[order] = torch.arange(len(x), dtype=x.dtype, device=x.device)
    ties = (x.unsqueeze(0) == x.unsqueeze(1)).to(x.dtype)
    return (ties @ ranks) / ties.sum(dim=1)


def _task_ranking_takes_compute(sums: Tensor, take_sums: Tensor) -> tuple[Tensor, Tensor]:
    """Ranking against R takes: the model's Spearman relative to each held-out take's, and reality's own score.

    Args:
        sums: (3, G) model return, real return (mean over takes) and episode count per policy.
        take_sums: (R, G) real return per take and policy.
    """
    r = take_sums.shape[0]
    others = (take_sums.sum(dim=0, keepdim=True) - take_sums) / (r - 1)
    takes = torch.stack([_task_ranking_compute(torch.stack([take_sums[a], others[a], sums[2]])) for a in range(r)])
    return relative_to_spread(_task_ranking_compute(sums).double(), takes.double())


def _task_ranking_compute(sums: Tensor) -> Tensor:
    """Spearman correlation of per-group mean return, model against real, clamped at 0."""
    used = sums[2] > 0
    if int(used.sum()) < 2:
        raise NothingToScoreError(
            f"Expected outcomes from at least 2 policy groups to rank but got {int(used.sum())}: "
            "give `groups` with several policy ids, or use mode='agreement'"
        )
    means = sums[:2, used] / sums[2, used]
    a, b = _rank(means[0]), _rank(means[1])
    a, b = a - a.mean(), b - b.mean()
    denom = (a.square().sum() * b.square().sum()).sqrt()
    rho = torch.where(denom > 0, (a * b).sum() / denom.clamp_min(1e-12), torch.zeros_like(denom))
    return rho.clamp_min(0.0).float()


def task_validity(pred: Tensor, real: Tensor, groups: Tensor | None = None, mode: TaskMode = "agreement") -> Tensor:
    r"""Task validity of a world model, in [0, 1].

    ``mode="agreement"``: binary outcomes (success judged on model futures against real success); informedness
    :math:`\mathrm{TPR} + \mathrm{TNR} - 1`, clamped at 0. 1: every verdict matches reality. 0: the judge on
    model futures is no better than chance, e.g. it always says "success".

    ``mode="ranking"``: returns per episode and a policy id per episode; Spearman correlation of the per-group
    mean return, model against real, clamped at 0. 1: the model ranks policies as reality does. 0: no
    agreement or a reversed ranking.

    ``mode="decision"``: task values of every action branch, (B, K+1); chance-corrected agreement between the
    branch a planner picks on model futures and the best real branch (see
    :func:`~simgate_tracking.functional.decision.decision_agreement`). 1: always the right choice. 0: chance.

    Args:
        pred: Outcomes judged on model futures, (B,): bool or success probability in agreement mode, returns in
            ranking mode; (B, K+1) task values per branch in decision mode.
        real: Real outcomes, same shape.
        groups: Policy id per episode, (B,) int; needed in ranking mode.
        mode: ``"agreement"``, ``"ranking"`` or ``"decision"``.

    Example:
        >>> import torch
        >>> real = torch.tensor([True, False, True, False])
        >>> task_validity(real, real)
        tensor(1.)
        >>> task_validity(torch.ones(4, dtype=torch.bool), real)
        tensor(0.)
        >>> returns, groups = torch.tensor([1.0, 2.0, 3.0]), torch.tensor([0, 1, 2])
        >>> task_validity(returns.flip(0), returns, groups, mode="ranking")
        tensor(0.)
    """
    if mode == "agreement":
        return _task_agreement_compute(_task_agreement_update(pred, real))
    if mode == "ranking":
        if groups is None:
            raise ValueError("Expected `groups` (policy id per episode) with mode='ranking' but got None")
        if groups.numel() and int(groups.min()) < 0:
            raise ValueError(f"Expected `groups` to hold policy ids >= 0 but got an id of {int(groups.min())}")
        num_groups = int(groups.max()) + 1 if groups.numel() else 1
        return _task_ranking_compute(_task_ranking_update(pred, real, groups, num_groups))
    if mode == "decision":
        return decision_agreement(pred, real)[0]
    raise ValueError(f"Expected argument `mode` to be one of {TASK_MODES} but got {mode!r}")
