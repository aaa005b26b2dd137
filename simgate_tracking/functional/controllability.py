"""Controllability: do different actions change the future the way they change it in reality?"""

from __future__ import annotations

import torch
from torch import Tensor

from simgate_tracking.functional._checks import frame_pair
from simgate_tracking.functional._concordance import concordance_from_sums
from simgate_tracking.functional._distances import branch_distances
from simgate_tracking.functional.takes import (
    concordance_with_takes,
    fields_gram,
    frames_with_takes,
    has_takes,
    score_from_agreements,
)

_LAYOUT = "(B, K+1, T, C, H, W)"


def _branch_frames(preds: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    p, y = frame_pair(preds, target, 6, _LAYOUT, ("preds", "target"))
    if p.shape[1] < 2:
        raise ValueError(
            f"Expected `preds` to hold the reference branch plus K >= 1 counterfactual branches in dim 1 "
            f"{_LAYOUT} but got K+1 = {p.shape[1]}"
        )
    return p, y


def _controllability_update(preds: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """Per-episode controllability (mean over the K counterfactual branches) and a per-episode finite flag."""
    return _controllability_from_distances(branch_distances(*_branch_frames(preds, target)))


def _controllability_takes_update(preds: Tensor, target: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Per-episode agreement with R real takes, finite flag, and each take's agreement with the others, (B, R).

    Each action change's effect ``P_k - P_0`` is compared with its effect in every take, ``Y_k - Y_0`` of the same
    take (the takes share their randomness across branches); the mean over k.
    """
    p, y = frames_with_takes(preds, target, 6, _LAYOUT)
    if p.shape[1] < 2:
        raise ValueError(f"Expected `preds` to hold K+1 >= 2 branches in dim 1 {_LAYOUT} but got K+1 = {p.shape[1]}")
    b, r, k = y.shape[0], y.shape[1], p.shape[1] - 1
    p_rows, y_rows = p.reshape(b, k + 1, -1), y.reshape(b, r, k + 1, -1)

    def effects(out: Tensor, columns: slice) -> None:  # the model's effect, then each take's, per (episode, branch)
        torch.sub(p_rows[:, 1:, columns], p_rows[:, :1, columns], out=out[:, :, 0, 0])
        torch.sub(y_rows[:, :, 1:, columns], y_rows[:, :, :1, columns], out=out[:, :, 1:, 0].transpose(1, 2))

    gram = fields_gram(effects, (b, k, 1 + r), p_rows.shape[-1], p)
    model_agreement, take_agreement, energy = concordance_with_takes(gram.view(b * k, 1 + r, 1 + r), p.dtype)
    finite = torch.isfinite(energy).view(b, k).all(dim=1)
    agreement = model_agreement.view(b, k).mean(dim=1)
    return torch.where(finite, agreement, torch.zeros_like(agreement)), finite, take_agreement.view(b, k, r).mean(1)


def _controllability_from_distances(distances: Tensor) -> tuple[Tensor, Tensor]:
    """Per-episode controllability and finite flag from :func:`branch_distances`' (B, 2(K+1), 2(K+1)) matrix."""
    branches = distances.shape[1] // 2
    k = torch.arange(1, branches, device=distances.device)

    def d(i: Tensor | int, j: Tensor | int) -> Tensor:  # |row i - row j|^2; rows: P_0..P_K, then Y_0..Y_K
        return distances[:, i, j]

    # each counterfactual branch's effect of the action change, x = P_k - P_0 against y = Y_k - Y_0; by
    # polarisation 2<x, y> = |P_k - Y_0|^2 + |P_0 - Y_k|^2 - |P_k - Y_k|^2 - |P_0 - Y_0|^2
    twice_inner = d(k, branches) + d(0, branches + k) - d(k, branches + k) - d(0, branches).unsqueeze(1)
    energy = d(k, 0) + d(branches + k, branches)
    finite = torch.isfinite(distances[:, :branches, :branches]).flatten(1).all(dim=1)
    scores = concordance_from_sums(twice_inner, energy).mean(dim=1)
    return torch.where(finite, scores, torch.zeros_like(scores)), finite


def _mean_compute(score_sum: Tensor, count: Tensor) -> Tensor:
    """Mean of per-episode scores from their running sum and count."""
    return score_sum / count


def controllability(preds: Tensor, target: Tensor) -> Tensor:
    r"""Controllability of a world model, in [0, 1].

    For each episode and counterfactual branch :math:`k \geq 1`,
    :math:`\mathrm{conc}(P_k - P_0, Y_k - Y_0)` over the whole branch, where branch 0 follows the reference
    actions; the mean over (episode, k). 1: the model answers every action change exactly as reality does.
    0: the model ignores actions (or answers with the opposite change).

    With R real takes, ``target`` (B, R, K+1, T, C, H, W): per episode, the mean over (k, take r) of
    :math:`\mathrm{conc}(P_k - P_0, Y^r_k - Y^r_0)`, summed over episodes relative to the same sum of each take
    against the other takes (see :mod:`simgate_tracking.functional.takes`).

    Args:
        preds: Model rollouts, (B, K+1, T, C, H, W), float in [0, 1] or uint8.
        target: Real futures for the same branches, same shape, or (B, R, K+1, T, C, H, W) with R takes.

    Example:
        >>> import torch
        >>> real = torch.rand(2, 3, 4, 3, 8, 8, generator=torch.Generator().manual_seed(0))
        >>> controllability(real, real)
        tensor(1.)
        >>> ignores_actions = real[:, :1].expand_as(real)
        >>> round(float(controllability(ignores_actions, real)), 6)
        0.0
    """
    if has_takes(preds, target):
        agreement, _, takes = _controllability_takes_update(preds, target)
        return score_from_agreements(agreement, takes)
    scores, _ = _controllability_update(preds, target)
    return scores.mean()


def _psnr(squared_error: Tensor, numel: int) -> Tensor:
    """PSNR in dB of frames in [0, 1]; a non-finite rollout counts as the largest error, 1 per value."""
    mse = torch.nan_to_num(squared_error / numel, nan=1.0, posinf=1.0)
    return -10.0 * torch.log10(mse.clamp_min(1e-10))


def _delta_psnr_update(preds: Tensor, target: Tensor) -> Tensor:
    """Per-episode Genie-style delta-PSNR, averaged over branches."""
    p, y = _branch_frames(preds, target)
    return _delta_psnr_from_distances(branch_distances(p, y), p[0, 0].numel())


def _delta_psnr_from_distances(distances: Tensor, numel: int) -> Tensor:
    """Per-episode delta-PSNR from :func:`branch_distances`' matrix; ``numel`` values per branch."""
    branches = distances.shape[1] // 2
    k = torch.arange(branches, device=distances.device)
    right = distances[:, k, branches + k]  # |P_k - Y_k|^2
    # every branch is compared with the model's rollout for the next branch's actions
    other = distances[:, (k + 1) % branches, branches + k]  # |P_{k+1} - Y_k|^2
    return (_psnr(right, numel) - _psnr(other, numel)).mean(dim=1)


def delta_psnr(preds: Tensor, target: Tensor) -> Tensor:
    """Genie's delta-PSNR in dB: PSNR with the right actions minus PSNR with another branch's actions.

    Branch ``k``'s real future is compared with the model's rollout for branch ``k`` and for branch ``k+1`` (mod
    K+1); the mean over (episode, branch). Near 0 when the model ignores actions; larger is more controllable.
    Reported beside controllability, not gated (it is unbounded and scene dependent).

    Args:
        preds: Model rollouts, (B, K+1, T, C, H, W).
        target: Real futures, same shape.

    Example:
        >>> import torch
        >>> real = torch.zeros(1, 2, 1, 1, 2, 2)
        >>> real[:, 1] = 0.5
        >>> delta_psnr(real[:, :1].expand_as(real), real)
        tensor(0.)
    """
    return _delta_psnr_update(preds, target).mean()
