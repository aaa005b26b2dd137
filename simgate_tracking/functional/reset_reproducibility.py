"""Reset reproducibility: does the same reset and seed give the same rollout, whatever ran before it?"""

from __future__ import annotations

from typing import cast

import torch
from torch import Tensor

from simgate_tracking.functional._checks import check_same_shape, frame_pair
from simgate_tracking.functional._reality_cache import RealityCache
from simgate_tracking.functional.takes import frames_with_takes, has_takes

_LAYOUT = "(B, T, C, H, W)"
EPS = 1e-8
SCALES: RealityCache[Tensor] = RealityCache()  # reality's scale of a difference that matters, per episode


def _reset_reproducibility_update(first: Tensor, second: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """Per-episode reset reproducibility and a per-episode finite flag (both passes finite)."""
    p1, y = frame_pair(first, target, 5, _LAYOUT, ("first", "target"))
    p2, _ = frame_pair(second, target, 5, _LAYOUT, ("second", "target"))
    check_same_shape(first, second, "first", "second")
    p2 = p2.to(p1.dtype)
    dims = (1, 2, 3, 4)
    scratch = p1 - p2
    drift = torch.linalg.vector_norm(scratch, dim=dims).square()
    # the buffer is reused because fresh memory is slow on CPU
    centred = torch.sub(y, y.mean(dim=1, keepdim=True), out=scratch)
    return _reset_from_energies(drift, torch.linalg.vector_norm(centred, dim=dims).square())


def _reset_takes_update(first: Tensor, second: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """Reset reproducibility with R real takes (B, R, T, C, H, W).

    The question does not change in a stochastic world: the same reset and seed must give the same rollout (a real
    take replayed with its own seed reproduces exactly, so reality's own score is 1). What changes is the scale of
    a difference that matters: two passes that differ as much as two real takes do (a model that draws its
    randomness afresh instead of from the seed) score 0. The scale is the smaller of the takes' spread, the mean
    |Y^a - Y^b|^2 over pairs of takes, and twice the takes' mean variation over time (the one-take scale); takes
    that all agree keep the one-take scale.
    """
    p1, y = frames_with_takes(first, target, 5, _LAYOUT, ("first", "target"))
    p2, _ = frames_with_takes(second, target, 5, _LAYOUT, ("second", "target"))
    check_same_shape(first, second, "first", "second")
    drift = torch.linalg.vector_norm(p1 - p2.to(p1.dtype), dim=(1, 2, 3, 4)).square()
    if y.device.type != "cpu":
        return _reset_from_energies(drift, _takes_scale(y))
    # the scale is reality's alone: on CPU it is kept per episode, so a fixed probe set pays for it once
    keys = [SCALES.digest(takes, ("reset_reproducibility",)) for takes in y]
    scales = [SCALES.get(key) for key in keys]
    missing = [i for i, scale in enumerate(scales) if scale is None]
    if missing:
        for i, scale in zip(missing, _takes_scale(y[missing]), strict=True):
            SCALES.put(keys[i], scale.clone())
            scales[i] = scale
    return _reset_from_energies(drift, torch.stack(cast(list[Tensor], scales)))


def _takes_scale(y: Tensor) -> Tensor:
    """(B,) the scale of a difference that matters, from (B, R, T, C, H, W) real takes (see `_reset_takes_update`)."""
    dims = (2, 3, 4, 5)
    variation = torch.linalg.vector_norm(y - y.mean(dim=2, keepdim=True), dim=dims).square().mean(dim=1)
    # mean over ordered pairs of takes of |Y^a - Y^b|^2 = 2 sum_a |Y^a - mean_r Y|^2 / (R - 1)
    spread = 2 * torch.linalg.vector_norm(y - y.mean(dim=1, keepdim=True), dim=dims).square().sum(1) / (y.shape[1] - 1)
    return torch.where(spread > 0, torch.minimum(spread / 2, variation), variation)


def _reset_from_energies(drift: Tensor, variation: Tensor) -> tuple[Tensor, Tensor]:
    """Per-episode score and finite flag from |P1 - P2|^2 and |Y - mean_t Y|^2 summed per episode."""
    # a NaN or Inf in either pass makes its drift non-finite: no separate pass over the frames
    finite = torch.isfinite(drift)
    # reality's own variation over time sets the scale of a difference that matters
    scores = (1 - drift / (2 * variation + EPS)).clamp(0.0, 1.0)
    return torch.where(finite, scores, torch.zeros_like(scores)), finite


def reset_reproducibility(first: Tensor, second: Tensor, target: Tensor) -> Tensor:
    r"""Reset reproducibility of a world model, in [0, 1].

    Two rollouts of each episode from the same reset and seed (the second pass in another episode order):
    :math:`1 - \|P_1 - P_2\|^2 / (2\|Y - \mathrm{mean}_t Y\|^2 + \epsilon)`, clamped; the mean over episodes.
    1: both passes are identical. 0: the passes differ by as much as two unrelated frames of the real episode.

    Args:
        first: First-pass rollouts of the reference branch, (B, T, C, H, W).
        second: Second-pass rollouts, same episodes in the same order, same shape.
        target: Real futures, same shape (only its variation over time is used, as the scale), or
            (B, R, T, C, H, W) with R takes (the scale is then the smaller of the takes' spread and their
            variation over time: passes that differ as two real takes do score 0).

    Example:
        >>> import torch
        >>> real = torch.rand(2, 4, 3, 8, 8, generator=torch.Generator().manual_seed(0))
        >>> reset_reproducibility(real, real.clone(), real)
        tensor(1.)
        >>> reset_reproducibility(real, real.roll(1, dims=0), real)
        tensor(0.)
    """
    update = _reset_takes_update if has_takes(first, target) else _reset_reproducibility_update
    scores, _ = update(first, second, target)
    return scores.mean()
