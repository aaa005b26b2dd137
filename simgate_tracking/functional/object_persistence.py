"""Object persistence: does every object that reality shows stay present, in place, with its own identity?"""

from __future__ import annotations

import torch
from torch import Tensor

from simgate_tracking.functional._checks import check_dims, frame_pair
from simgate_tracking.functional._precision import full_precision_matmul
from simgate_tracking.functional.takes import has_takes, score_from_agreements

_FRAMES = "(B, T, C, H, W)"
EPS = 1e-8


def _check_masks(masks: Tensor, visible: Tensor | None, frames: Tensor) -> None:
    b, t, _, h, w = frames.shape
    check_dims(masks, (b, t, None, h, w), "masks", "(B, T, N, H, W)")
    if masks.dtype != torch.bool:
        raise TypeError(f"Expected `masks` to be a bool tensor but got dtype {masks.dtype}")
    if visible is None:
        return
    check_dims(visible, (b, t, masks.shape[2]), "visible", "(B, T, N)")
    if visible.dtype != torch.bool:
        raise TypeError(f"Expected `visible` to be a bool tensor but got dtype {visible.dtype}")


def _dilate(masks: Tensor, width: int) -> Tensor:
    """Each mask grown by ``width`` pixels on every side."""
    grown = masks
    # a (2w+1) square dilation is a row pass then a column pass of shifted ORs: bool ops, no float pooling
    for dim in (-1, -2):
        spread, n = grown.clone(), grown.shape[dim]
        for shift in range(1, min(width, n - 1) + 1):
            spread.narrow(dim, shift, n - shift).logical_or_(grown.narrow(dim, 0, n - shift))
            spread.narrow(dim, 0, n - shift).logical_or_(grown.narrow(dim, shift, n - shift))
        grown = spread
    return grown


def _region_sums(p: Tensor, y: Tensor, masks: Tensor, ring_width: int) -> tuple[Tensor, Tensor, Tensor]:
    """Sums over every object's mask and ring in one contraction over pixels, and a per-episode finite flag.

    Returns (B, T, N, 2 + 2C) sums under the masks and under the rings, columns: squared error summed over
    channels, area, the C real channels, their C squares; and (B,) True where the rollout is finite.
    """
    b, t, c, h, w = p.shape
    n = masks.shape[2]
    # masks are binary, so every masked sum is a matrix product over pixels: no (B, T, N, C, H, W) temporary.
    # bool converts to float several times faster through uint8 on CPU
    weights = p.new_empty(b, t, 2 * n, h, w)
    weights[:, :, :n].copy_(masks.view(torch.uint8))
    weights[:, :, n:].copy_(_dilate(masks, ring_width).view(torch.uint8))
    values = p.new_empty(b, t, 2 + 2 * c, h, w)
    error, area, colour, colour_sq = values.split((1, 1, c, c), dim=2)
    # the squared error summed over channels, channel by channel: the area column is scratch until filled below
    torch.sub(p[:, :, :1], y[:, :, :1], out=error).square_()
    for channel in range(1, c):
        difference = torch.sub(p[:, :, channel : channel + 1], y[:, :, channel : channel + 1], out=area)
        error.addcmul_(difference, difference)
    # a NaN or Inf frame makes its episode's error non-finite: no separate pass over the rollouts
    finite = torch.isfinite(error.sum(dim=(1, 2, 3, 4)))
    # an overflowing error (finite but huge output) must not turn into NaN where a mask weighs it by 0
    error.nan_to_num_()
    area.fill_(1.0)
    colour.copy_(y)
    torch.mul(y, y, out=colour_sq)
    with full_precision_matmul():
        sums = torch.bmm(weights.view(b * t, 2 * n, h * w), values.view(b * t, 2 + 2 * c, h * w).transpose(1, 2))
    sums = sums.view(b, t, 2 * n, 2 + 2 * c)
    # the ring, the thin band just outside a mask (what the region would show if the object vanished), is its
    # dilation less the mask itself
    return sums[:, :, :n], sums[:, :, n:] - sums[:, :, :n], finite


def _object_persistence_update(
    preds: Tensor, target: Tensor, masks: Tensor, visible: Tensor | None = None, ring_width: int = 1
) -> tuple[Tensor, Tensor, Tensor]:
    """Per-episode persistence (its weakest track), a finite flag, and a flag for episodes with any visible object."""
    p, y = frame_pair(preds, target, 5, _FRAMES, ("preds", "target"))
    _check_masks(masks, visible, p)
    return _persistence_from_sums(*_region_sums(p, y, masks, ring_width), visible)


def contrast_and_share(inside: Tensor, around: Tensor, visible: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
    """(B, T, N) visibility, contrast |(Y - B) M|^2 and visible share of the largest area, from the region sums."""
    c = (inside.shape[-1] - 2) // 2
    area = inside[..., 1]
    # an object flagged visible with an empty mask has nothing to score
    visible = area > 0 if visible is None else visible & (area > 0)
    background = around[..., 2 : 2 + c] / around[..., 1:2].clamp_min(1.0)  # mean real colour of the ring
    # |(Y - B) M|^2 expanded: sum_M y^2 - 2 B sum_M y + B^2 |M|
    contrast = inside[..., 2 + c :] - 2 * background * inside[..., 2 : 2 + c] + background.square() * area[..., None]
    contrast = contrast.sum(dim=-1).clamp_min(0.0)
    # a step that shows only part of an object weighs in proportion to the part shown (occlusion slivers)
    share = area / torch.where(visible, area, torch.zeros_like(area)).amax(dim=1, keepdim=True).clamp_min(1.0)
    return visible, contrast, share


def weakest_track(tracks: Tensor, seen: Tensor) -> Tensor:
    """(..., ) the weakest of (..., N) tracks among those seen; 1 where none is (masks with no object slot too)."""
    if tracks.shape[-1] == 0:
        return tracks.new_ones(tracks.shape[:-1])
    return torch.where(seen, tracks, torch.ones_like(tracks)).amin(dim=-1)


def _persistence_from_sums(
    inside: Tensor, around: Tensor, finite: Tensor, visible: Tensor | None
) -> tuple[Tensor, Tensor, Tensor]:
    """Per-episode persistence, finite flag and has-objects flag from :func:`_region_sums`' sums.

    ``inside`` and ``around``: (B, T, N, 2 + 2C) sums under each mask and its ring, columns squared error, area,
    the C real channels and their squares (only area and channels are read from ``around``).
    """
    visible, contrast, share = contrast_and_share(inside, around, visible)
    presence = (1 - share * inside[..., 0] / (contrast + EPS)).clamp(0.0, 1.0)
    inf = torch.full_like(presence, float("inf"))
    tracks = torch.where(visible, presence, inf).amin(dim=1)  # (B, N): each track's worst visible step
    seen = visible.any(dim=1)
    episodes = weakest_track(tracks, seen)
    has_objects = seen.any(dim=1)
    scores = torch.where(finite, episodes, torch.zeros_like(episodes))
    return torch.where(has_objects, scores, torch.zeros_like(scores)), finite, has_objects


def object_persistence(
    preds: Tensor, target: Tensor, masks: Tensor, visible: Tensor | None = None, ring_width: int = 1
) -> Tensor:
    r"""Object persistence of a rollout, in [0, 1].

    For object :math:`n` visible at step :math:`t`, presence
    :math:`p = 1 - (|M| / \max_s |M_s|) \, \|(P - Y) M\|^2 / \|(Y - B) M\|^2`, clamped, where :math:`M` is the
    object's mask, :math:`\max_s |M_s|` its largest visible area over the episode and :math:`B` the mean real colour
    of a thin ring around it (what the region would show if the object vanished). A step that shows only part of
    the object counts in proportion to the part shown, so a slight blur on a sliver peeking past an occluder does
    not read as a missing object, while a vanished object still scores 0 at full view. A track scores its worst
    visible step; an episode scores its weakest track (one missing object breaks planning);
    the mean over episodes that show at least one object. 1: every object is where reality has it, with its
    own appearance. 0: some object vanished into the background, or took another object's identity.

    With R real takes, ``target`` (B, R, T, C, H, W), ``masks`` (B, R, T, N, H, W) and ``visible`` (B, R, T, N):
    each object may be wherever reality itself scatters it (see
    :mod:`simgate_tracking.functional.object_persistence_takes`).

    Args:
        preds: Model rollouts of the reference branch, (B, T, C, H, W).
        target: Real futures, same shape, or (B, R, T, C, H, W) with R takes.
        masks: Per-object masks, (B, T, N, H, W) bool; (B, R, T, N, H, W) with takes.
        visible: Per-object visibility, (B, T, N) bool; absent slots are all False. Default: mask non-empty.
        ring_width: Width in pixels of the ring that estimates the background.

    Raises:
        ValueError: If no object is visible in any episode.

    Example:
        >>> import torch
        >>> real = torch.zeros(1, 3, 3, 8, 8)
        >>> real[:, :, 0, 2:5, 2:5] = 1.0  # a red square
        >>> masks = torch.zeros(1, 3, 1, 8, 8, dtype=torch.bool)
        >>> masks[:, :, 0, 2:5, 2:5] = True
        >>> object_persistence(real, real, masks)
        tensor(1.)
        >>> vanished = real.clone()
        >>> vanished[:, 2] = 0.0  # gone at the last step
        >>> object_persistence(vanished, real, masks)
        tensor(0.)
    """
    if has_takes(preds, target):
        from simgate_tracking.functional.object_persistence_takes import _object_persistence_takes_update

        agreement, _, has_objects, takes = _object_persistence_takes_update(preds, target, masks, visible, ring_width)
        if not bool(has_objects.any()):
            raise ValueError("Expected at least one object visible in at least one episode but `visible` is all False")
        return score_from_agreements(agreement, takes, counted=has_objects)
    scores, _, has_objects = _object_persistence_update(preds, target, masks, visible, ring_width)
    count = has_objects.sum()
    if count == 0:
        raise ValueError("Expected at least one object visible in at least one episode but `visible` is all False")
    return scores.sum() / count
