"""Temporal consistency: does the rollout evolve smoothly, with no shimmer, freeze or jump that reality lacks?"""

from __future__ import annotations

import torch
from torch import Tensor

from simgate_tracking.functional._checks import frame_pair
from simgate_tracking.functional._concordance import concordance, concordance_from_energies
from simgate_tracking.functional.takes import (
    agreement_with_takes,
    fields_gram,
    frames_with_takes,
    has_takes,
    score_from_agreements,
)

_LAYOUT = "(B, T, C, H, W)"


def _temporal_consistency_update(preds: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """Per-episode temporal consistency and a per-episode finite flag."""
    p, y = frame_pair(preds, target, 5, _LAYOUT, ("preds", "target"))
    if p.shape[1] < 2:
        raise ValueError(f"Expected `preds` to have T >= 2 steps in {_LAYOUT} but got T = {p.shape[1]}")
    # summed over all steps before the ratio, so steps where reality is still cannot dominate
    scores, change = concordance(p[:, 1:] - p[:, :-1], y[:, 1:] - y[:, :-1], dims=(1, 2, 3, 4), overwrite_x=True)
    return _finite_scores(scores, change)


def _temporal_takes_update(preds: Tensor, target: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Per-episode agreement with R real takes (B, R, T, C, H, W), finite flag, each take's with the others'."""
    p, y = frames_with_takes(preds, target, 5, _LAYOUT)
    if p.shape[1] < 2:
        raise ValueError(f"Expected `preds` to have T >= 2 steps in {_LAYOUT} but got T = {p.shape[1]}")
    b, r, t = y.shape[:3]
    p_rows, y_rows = p.reshape(b, t, -1), y.reshape(b, r, t, -1)

    def changes(out: Tensor, columns: slice) -> None:  # the model's change over every step, then each take's
        torch.sub(p_rows[:, 1:, columns], p_rows[:, :-1, columns], out=out[:, 0])
        torch.sub(y_rows[:, :, 1:, columns], y_rows[:, :, :-1, columns], out=out[:, 1:])

    return agreement_with_takes(fields_gram(changes, (b, 1 + r), p_rows.shape[-1], p, depth=t - 1), p.dtype)


def _temporal_from_energies(model_change: Tensor, real_change: Tensor, gap: Tensor) -> tuple[Tensor, Tensor]:
    """Per-episode temporal consistency and finite flag from |dP|^2, |dY|^2 and |dP - dY|^2 summed per episode."""
    return _finite_scores(concordance_from_energies(model_change, real_change, gap), model_change)


def _finite_scores(scores: Tensor, model_change: Tensor) -> tuple[Tensor, Tensor]:
    # a NaN or Inf frame makes its episode's change non-finite: no separate pass over the frames
    finite = torch.isfinite(model_change)
    return torch.where(finite, scores, torch.zeros_like(scores)), finite


def temporal_consistency(preds: Tensor, target: Tensor) -> Tensor:
    r"""Temporal consistency of a rollout, in [0, 1].

    Per episode, :math:`\mathrm{conc}(\Delta P, \Delta Y)` with :math:`\Delta P_t = P_{t+1} - P_t`, summed over every
    step of the episode before the ratio; the mean over episodes. 1: frame-to-frame change equals reality's.
    0: the model freezes where reality moves, or its changes are unrelated to reality's (shimmer, jumps).

    With R real takes, ``target`` (B, R, T, C, H, W): the mean over takes of :math:`\mathrm{conc}(\Delta P, \Delta
    Y^r)`, summed over episodes relative to the same sum of each take against the other takes (see
    :mod:`simgate_tracking.functional.takes`).

    Args:
        preds: Model rollouts of the reference branch, (B, T, C, H, W), float in [0, 1] or uint8.
        target: Real futures, same shape, or (B, R, T, C, H, W) with R takes.

    Example:
        >>> import torch
        >>> real = torch.linspace(0, 1, 4).view(1, 4, 1, 1, 1).expand(1, 4, 1, 2, 2)
        >>> temporal_consistency(real, real)
        tensor(1.)
        >>> frozen = real[:, :1].expand_as(real)
        >>> round(float(temporal_consistency(frozen, real)), 6)
        0.0
    """
    if has_takes(preds, target):
        agreement, _, takes = _temporal_takes_update(preds, target)
        return score_from_agreements(agreement, takes)
    scores, _ = _temporal_consistency_update(preds, target)
    return scores.mean()
