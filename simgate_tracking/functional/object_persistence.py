"""Object persistence: does every object that reality shows stay present, in place, with its own identity?"""

from __future__ import annotations

import torch
from torch import Tensor

from simgate_tracking.functional._checks import check_dims, finite_episodes, frame_pair

_FRAMES = "(B, T, C, H, W)"
EPS = 1e-8


def _check_masks(masks: Tensor, visible: Tensor | None, frames: Tensor) -> tuple[Tensor, Tensor]:
    b, t, _, h, w = frames.shape
    check_dims(masks, (b, t, None, h, w), "masks", "(B, T, N, H, W)")
    if masks.dtype != torch.bool:
        raise TypeError(f"Expected `masks` to be a bool tensor but got dtype {masks.dtype}")
    present = masks.flatten(3).view(torch.uint8).amax(dim=3).bool()  # any(), but a fast reduction on CPU
    if visible is None:
        return masks, present
    check_dims(visible, (b, t, masks.shape[2]), "visible", "(B, T, N)")
    if visible.dtype != torch.bool:
        raise TypeError(f"Expected `visible` to be a bool tensor but got dtype {visible.dtype}")
    # an object flagged visible with an empty mask has nothing to score
    return masks, visible & present


def _ring(masks: Tensor, width: int) -> Tensor:
    """The thin band of pixels just outside each mask: what the region would show if the object vanished."""
    grown = masks
    # a (2w+1) square dilation is a row pass then a column pass of shifted ORs: bool ops, no float pooling
    for dim in (-1, -2):
        spread, n = grown.clone(), grown.shape[dim]
        for shift in range(1, min(width, n - 1) + 1):
            spread.narrow(dim, shift, n - shift).logical_or_(grown.narrow(dim, 0, n - shift))
            spread.narrow(dim, 0, n - shift).logical_or_(grown.narrow(dim, shift, n - shift))
        grown = spread
    return grown & ~masks


def _as_weights(mask: Tensor, dtype: torch.dtype) -> Tensor:
    """A bool mask as 0/1 weights; through uint8, which converts several times faster than bool on CPU."""
    return mask.view(torch.uint8).to(dtype)


def _masked_sums(weights: Tensor, values: Tensor) -> Tensor:
    """(B, T, N, C): per-pixel sums of every channel of ``values`` (B, T, C, H, W) under every mask of ``weights``."""
    b, t, n, h, w = weights.shape
    # values go in as a transposed view, which BLAS reads in place (einsum would copy them into its own layout)
    sums = torch.bmm(weights.reshape(b * t, n, h * w), values.reshape(b * t, -1, h * w).transpose(1, 2))
    return sums.view(b, t, n, -1)


def _object_persistence_update(
    preds: Tensor, target: Tensor, masks: Tensor, visible: Tensor | None = None, ring_width: int = 1
) -> tuple[Tensor, Tensor, Tensor]:
    """Per-episode persistence (its weakest track), a finite flag, and a flag for episodes with any visible object."""
    p, y = frame_pair(preds, target, 5, _FRAMES, ("preds", "target"))
    masks, visible = _check_masks(masks, visible, p)
    finite = finite_episodes(p)
    m, ring = _as_weights(masks, p.dtype), _as_weights(_ring(masks, ring_width), p.dtype)
    # masks are binary, so every masked sum is one contraction over pixels: no (B, T, N, C, H, W) temporary
    # an overflowing error (finite but huge output) must not turn into NaN where a mask weighs it by 0
    scratch = p - y
    error = _masked_sums(m, torch.nan_to_num(scratch.square_().sum(dim=2, keepdim=True))).squeeze(-1)
    area = m.sum(dim=(-2, -1))  # (B, T, N)
    y = y.contiguous()  # a branch of a bigger tensor: copied once here, not by each contraction below
    background = _masked_sums(ring, y) / ring.sum(dim=(-2, -1)).unsqueeze(-1).clamp_min(1.0)
    inside = _masked_sums(m, y)
    inside_sq = _masked_sums(m, torch.mul(y, y, out=scratch))  # reuses the buffer: fresh memory is slow on CPU
    # |(Y - B) M|^2 expanded: sum_M y^2 - 2 B sum_M y + B^2 |M|
    contrast = (
        (inside_sq - 2 * background * inside + background.square() * area.unsqueeze(-1)).sum(dim=-1).clamp_min(0.0)
    )
    # a step that shows only part of an object weighs in proportion to the part shown (occlusion slivers)
    share = area / torch.where(visible, area, torch.zeros_like(area)).amax(dim=1, keepdim=True).clamp_min(1.0)
    presence = (1 - share * error / (contrast + EPS)).clamp(0.0, 1.0)
    inf = torch.full_like(presence, float("inf"))
    tracks = torch.where(visible, presence, inf).amin(dim=1)  # (B, N): each track's worst visible step
    seen = visible.any(dim=1)
    episodes = torch.where(seen, tracks, torch.ones_like(tracks)).amin(dim=1)  # the weakest track
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

    Args:
        preds: Model rollouts of the reference branch, (B, T, C, H, W).
        target: Real futures, same shape.
        masks: Per-object masks, (B, T, N, H, W) bool.
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
    scores, _, has_objects = _object_persistence_update(preds, target, masks, visible, ring_width)
    count = has_objects.sum()
    if count == 0:
        raise ValueError("Expected at least one object visible in at least one episode but `visible` is all False")
    return scores.sum() / count
