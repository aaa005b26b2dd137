"""Controllability: do different actions change the future the way they change it in reality?"""

from __future__ import annotations

import torch
from torch import Tensor

from simgate_tracking.functional._checks import finite_episodes, frame_pair
from simgate_tracking.functional._concordance import concordance

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
    p, y = _branch_frames(preds, target)
    finite = finite_episodes(p)
    # each counterfactual branch's effect of the action change, model against reality
    scores = concordance(p[:, 1:] - p[:, :1], y[:, 1:] - y[:, :1], dims=(2, 3, 4, 5)).mean(dim=1)
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

    Args:
        preds: Model rollouts, (B, K+1, T, C, H, W), float in [0, 1] or uint8.
        target: Real futures for the same branches, same shape.

    Example:
        >>> import torch
        >>> real = torch.rand(2, 3, 4, 3, 8, 8, generator=torch.Generator().manual_seed(0))
        >>> controllability(real, real)
        tensor(1.)
        >>> ignores_actions = real[:, :1].expand_as(real)
        >>> round(float(controllability(ignores_actions, real)), 6)
        0.0
    """
    scores, _ = _controllability_update(preds, target)
    return scores.mean()


def _psnr(p: Tensor, y: Tensor, dims: tuple[int, ...]) -> Tensor:
    mse = torch.nan_to_num((p - y).square(), nan=1.0, posinf=1.0).mean(dim=dims)
    return -10.0 * torch.log10(mse.clamp_min(1e-10))


def _delta_psnr_update(preds: Tensor, target: Tensor) -> Tensor:
    """Per-episode Genie-style delta-PSNR, averaged over branches."""
    p, y = _branch_frames(preds, target)
    # every branch is compared with the model's rollout for the next branch's actions
    other = torch.roll(p, shifts=-1, dims=1)
    dims = (2, 3, 4, 5)
    return (_psnr(p, y, dims) - _psnr(other, y, dims)).mean(dim=1)


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
