r"""Object persistence against R real takes: is each object present, looking like itself, where reality could have it?

With one take, presence compares the model's pixels under the object's mask with reality's. In a stochastic world
an object's place is itself random (a pedestrian, a dynamic obstacle), so a perfect model puts it elsewhere than
any one take does. Per object and step, presence is therefore the best over

- every take ``r`` that shows the object, comparing under take ``r``'s mask, and
- every shift ``d`` of the model's frame with ``|d|`` (Chebyshev, pixels) at most reality's own spread of that
  object at that step: the largest distance between its centres in two takes,

of :math:`p = 1 - (|M^r| / \max_s |M^r_s|)\, \|(P(\cdot + d) - Y^r) M^r\|^2 / \|(Y^r - B^r) M^r\|^2`, clamped. An
object whose takes agree (the agent under its own actions, a wall-mounted door) has spread 0 and is held to its
place exactly; one that reality scatters may be anywhere within that scatter of some take's place. A vanished
object, or one wearing another object's look, finds no shift that shows it. A step counts where every take shows
the object. A track scores its worst step; each track is then taken relative to reality's spread of the same track
(each take held out in turn, scored against the other takes), and the episode scores its weakest track.

Shifted comparisons for every shift at once are cross-correlations, taken with FFTs of the zero-padded frames;
the unshifted comparison is taken directly, so an object whose takes agree scores exactly as with one take.
"""

from __future__ import annotations

import torch
from torch import Tensor

from simgate_tracking.functional._checks import check_dims
from simgate_tracking.functional._precision import full_precision_matmul
from simgate_tracking.functional.object_persistence import _region_sums, contrast_and_share
from simgate_tracking.functional.takes import EPS, frames_with_takes

_LAYOUT = "(B, T, C, H, W)"


def _check_take_masks(masks: Tensor, visible: Tensor | None, takes: Tensor) -> None:
    b, r, t, _, h, w = takes.shape
    check_dims(masks, (b, r, t, None, h, w), "masks", "(B, R, T, N, H, W)")
    if masks.dtype != torch.bool:
        raise TypeError(f"Expected `masks` to be a bool tensor but got dtype {masks.dtype}")
    if visible is not None:
        check_dims(visible, (b, r, t, masks.shape[3]), "visible", "(B, R, T, N)")
        if visible.dtype != torch.bool:
            raise TypeError(f"Expected `visible` to be a bool tensor but got dtype {visible.dtype}")


def _centres(masks: Tensor, area: Tensor) -> Tensor:
    """(B, R, T, N, 2) centre (row, column) of every mask, in pixels."""
    h, w = masks.shape[-2:]
    weights = masks.to(area.dtype)
    rows = (weights.sum(dim=-1) * torch.arange(h, device=masks.device, dtype=area.dtype)).sum(dim=-1)
    cols = (weights.sum(dim=-2) * torch.arange(w, device=masks.device, dtype=area.dtype)).sum(dim=-1)
    return torch.stack([rows, cols], dim=-1) / area.clamp_min(1.0).unsqueeze(-1)


def _spread(centres: Tensor, shown: Tensor, include: Tensor) -> Tensor:
    """(B, S, T, N) reality's spread per candidate: the largest distance between two included takes' centres."""
    gap = (centres.unsqueeze(2) - centres.unsqueeze(1)).abs().amax(dim=-1)  # (B, R, R, T, N)
    pair = shown.unsqueeze(2) & shown.unsqueeze(1)  # (B, R, R, T, N)
    both = include.unsqueeze(2) & include.unsqueeze(1)  # (S, R, R)
    both = both.view(1, *both.shape, 1, 1)
    gap = torch.where(pair.unsqueeze(1) & both, gap.unsqueeze(1), torch.zeros_like(gap.unsqueeze(1)))
    return gap.amax(dim=(2, 3)).ceil()


def _shifted_errors(candidates: Tensor, takes: Tensor, weights: Tensor, max_shift: int) -> Tensor:
    r"""(B, S, R, T, N, Lh, Lw) :math:`\|(C_s(\cdot + d) - Y_r) M_r\|^2` for every shift ``d``, by FFT correlation."""
    h, w = takes.shape[-2:]
    size = (h + max_shift, w + max_shift)  # zero padding: a shift of up to max_shift never wraps onto the frame

    def spectrum(x: Tensor) -> Tensor:
        return torch.fft.rfft2(x, s=size)

    frames, squares = spectrum(candidates), spectrum(candidates.square().sum(dim=3))  # (B,S,T,C,..), (B,S,T,..)
    masked = spectrum(weights.unsqueeze(4) * takes.unsqueeze(3))  # (B, R, T, N, C, ..)
    area = spectrum(weights)  # (B, R, T, N, ..)
    # correlation with the mask: sum_x M(x) f(x + d) = irfft(conj(M^) f^)
    cross = torch.einsum("brtnchw,bstchw->bsrtnhw", masked.conj(), frames)
    energy = area.conj().unsqueeze(1) * squares.unsqueeze(2).unsqueeze(4)
    real_energy = (weights.unsqueeze(4) * takes.unsqueeze(3).square()).sum(dim=(4, 5, 6))  # (B, R, T, N)
    shifted = torch.fft.irfft2(energy - 2 * cross, s=size)
    return shifted + real_energy.unsqueeze(1).unsqueeze(-1).unsqueeze(-1)


def _allowed_shifts(spread: Tensor, size: tuple[int, int]) -> Tensor:
    """(B, S, 1, T, N, Lh, Lw) True for every non-zero shift within the spread (Chebyshev)."""
    offsets = []
    for length in size:
        index = torch.arange(length, device=spread.device)
        offsets.append(torch.where(index <= length // 2, index, index - length).abs().to(spread.dtype))
    reach = torch.maximum(offsets[0].view(-1, 1), offsets[1].view(1, -1))  # (Lh, Lw)
    allowed = reach <= spread.unsqueeze(-1).unsqueeze(-1)
    allowed[..., 0, 0] = False  # the unshifted comparison is taken directly
    return allowed.unsqueeze(2)


def _presence(  # noqa: PLR0913
    candidates: Tensor, takes: Tensor, masks: Tensor, visible: Tensor, include: Tensor, ring_width: int, max_shift: int
) -> tuple[Tensor, Tensor]:
    """(B, S, T, N) presence of each candidate's objects against its included takes, and where it is scored."""
    b, r, t, c, h, w = takes.shape
    n, s = masks.shape[3], candidates.shape[1]
    flat_takes, flat_masks = takes.flatten(0, 1), masks.flatten(0, 1)
    inside, around, _ = _region_sums(flat_takes, flat_takes, flat_masks, ring_width)
    shown, contrast, share = contrast_and_share(inside, around, visible.flatten(0, 1))
    shown, contrast, share = (x.view(b, r, t, n) for x in (shown, contrast, share))
    weights = masks.to(takes.dtype)
    # unshifted squared error of every candidate under every take's masks: one contraction over pixels per take
    errors = []
    for take in range(r):
        gap = (candidates - takes[:, take : take + 1]).square().sum(dim=3).flatten(3)  # (B, S, T, HW)
        with full_precision_matmul():
            errors.append(torch.einsum("btnx,bstx->bstn", weights[:, take].flatten(3), gap))
    error = torch.stack(errors, dim=2)  # (B, S, R, T, N)
    scale = (share / (contrast + EPS)).unsqueeze(1)  # (B, 1, R, T, N)
    presence = (1 - scale * error).clamp(0.0, 1.0)
    spread = _spread(_centres(masks, inside[..., 1].view(b, r, t, n)), shown, include)  # (B, S, T, N)
    if max_shift > 0 and r > 1:
        shifted = _shifted_errors(candidates, takes, weights, max_shift)
        allowed = _allowed_shifts(spread.clamp(max=max_shift), (h + max_shift, w + max_shift))
        best = torch.where(allowed, shifted, torch.full_like(shifted, float("inf"))).amin(dim=(-2, -1))
        presence = torch.maximum(presence, (1 - scale * best).clamp(0.0, 1.0))
    counted = include.view(1, s, r, 1, 1) & shown.unsqueeze(1)
    best_take = torch.where(counted, presence, torch.zeros_like(presence)).amax(dim=2)  # (B, S, T, N)
    # a step counts where every take the candidate is held to shows the object
    scored = (counted | ~include.view(1, s, r, 1, 1)).all(dim=2) & counted.any(dim=2)
    return torch.nan_to_num(best_take, nan=0.0), scored


def _object_persistence_takes_update(  # noqa: PLR0913
    preds: Tensor,
    target: Tensor,
    masks: Tensor,
    visible: Tensor | None = None,
    ring_width: int = 1,
    max_shift: int | None = None,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Per-episode persistence against R takes, finite flag, has-objects flag and reality's own score.

    Args:
        preds: (B, T, C, H, W) model rollouts of the reference branch.
        target: (B, R, T, C, H, W) real takes.
        masks: (B, R, T, N, H, W) bool, per take.
        visible: (B, R, T, N) bool, per take; default: mask non-empty.
        ring_width: Width of the background ring, pixels.
        max_shift: The largest shift searched, pixels; default half the frame's shorter side.
    """
    p, y = frames_with_takes(preds, target, 5, _LAYOUT)
    _check_take_masks(masks, visible, y)
    b, r = y.shape[:2]
    shift = min(y.shape[-2:]) // 2 if max_shift is None else max_shift
    visible = masks.flatten(-2).any(dim=-1) if visible is None else visible
    finite = torch.isfinite(p.flatten(1).sum(dim=1))
    # the model is held to every take; each take, held out in turn, to the others
    include = torch.ones(r + 1, r, dtype=torch.bool, device=y.device)
    include[1:] = ~torch.eye(r, dtype=torch.bool, device=y.device)
    candidates = torch.cat([torch.nan_to_num(p, nan=0.0, posinf=0.0, neginf=0.0).unsqueeze(1), y], dim=1)
    # one episode at a time: the shifted comparisons of a whole batch would not fit in memory
    found = [
        _presence(candidates[i : i + 1], y[i : i + 1], masks[i : i + 1], visible[i : i + 1], include, ring_width, shift)
        for i in range(b)
    ]
    presence, scored = (torch.cat(parts) for parts in zip(*found, strict=True))
    tracks = torch.where(scored, presence, torch.ones_like(presence)).amin(dim=2)  # (B, S, N) worst step
    seen = scored.any(dim=2)
    tracks = torch.where(seen, tracks, torch.ones_like(tracks))
    spread = tracks[:, 1:].mean(dim=1)  # (B, N) reality's own presence, each take against the others
    ratio = ((tracks + EPS) / (spread.unsqueeze(1) + EPS)).clamp(0.0, 1.0)
    ratio = torch.where(seen, ratio, torch.ones_like(ratio)).amin(dim=2)  # (B, S): the weakest track
    has_objects = seen[:, 0].any(dim=1)
    scores = torch.where(finite & has_objects, ratio[:, 0], torch.zeros_like(ratio[:, 0]))
    return scores, finite, has_objects, ratio[:, 1:].mean(dim=1)
