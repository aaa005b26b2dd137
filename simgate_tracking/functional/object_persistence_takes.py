r"""Object persistence against R real takes: is each object present, looking like itself, where reality could have it?

With one take, presence compares the model's pixels under the object's mask with reality's. In a stochastic world
an object's place is itself random (a pedestrian, a dynamic obstacle), so a perfect model puts it elsewhere than
any one take does. Per object and step, presence is therefore the best over

- every take ``r`` of a set of R - 1 takes that shows the object, comparing under take ``r``'s mask, and
- every shift ``d`` of the model's frame with ``|d|`` (Chebyshev, pixels) at most reality's own spread of that
  object at that step: the largest distance between its centres in two takes,

of :math:`p = 1 - (|M^r| / \max_s |M^r_s|)\, \|(P(\cdot + d) - Y^r) M^r\|^2 / \|(Y^r - B^r) M^r\|^2`, clamped. An
object whose takes agree (the agent under its own actions, a wall-mounted door) has spread 0 and is held to its
place exactly; one that reality scatters may be anywhere within that scatter of some take's place. A vanished
object, or one wearing another object's look, finds no shift that shows it. A step counts where every take shows
the object. A track scores its worst step and the episode its weakest track. Each take, held out, is scored against
the other R - 1 takes, and the model against each of the same R sets of R - 1 takes (averaged), so that a held-out
real take is compared exactly as a probe take is; the axis is the model's sum over episodes relative to reality's
(see :mod:`simgate_tracking.functional.takes`).

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
    """(R, T, N, 2) centre (row, column) of every mask, in pixels."""
    h, w = masks.shape[-2:]
    weights = masks.to(area.dtype)
    rows = (weights.sum(dim=-1) * torch.arange(h, device=masks.device, dtype=area.dtype)).sum(dim=-1)
    cols = (weights.sum(dim=-2) * torch.arange(w, device=masks.device, dtype=area.dtype)).sum(dim=-1)
    return torch.stack([rows, cols], dim=-1) / area.clamp_min(1.0).unsqueeze(-1)


def _spread(centres: Tensor, shown: Tensor, include: Tensor) -> Tensor:
    """(V, T, N) reality's spread per view: the largest distance between the centres of two of its takes."""
    gap = (centres.unsqueeze(1) - centres.unsqueeze(0)).abs().amax(dim=-1)  # (R, R, T, N)
    pair = shown.unsqueeze(1) & shown.unsqueeze(0)  # (R, R, T, N)
    both = (include.unsqueeze(2) & include.unsqueeze(1)).view(*include.shape, include.shape[1], 1, 1)  # (V, R, R, 1, 1)
    return torch.where(pair & both, gap, torch.zeros_like(gap)).amax(dim=(1, 2)).ceil()


def _windows(masks: Tensor, reach: Tensor, max_shift: int) -> tuple[Tensor, tuple[int, int], int]:
    """Where to correlate each of P (step, object) pairs: its masks' box over every take, grown by its reach.

    ``masks``: (R, P, H, W) each pair's masks in every take; ``reach``: (P,) the largest shift searched for it.
    Returns the windows' top-left corners (P, 2), their common size and the largest shift. On CPU the windows are
    read on the host and cut to the objects; elsewhere every window is the whole frame, with no sync.
    """
    p, (h, w) = masks.shape[1], masks.shape[-2:]
    if masks.device.type != "cpu":
        return torch.zeros(p, 2, dtype=torch.long, device=masks.device), (h, w), max_shift
    union, grow = masks.any(dim=0), reach.long()
    corners, size = [], []
    for covered, length in ((union.any(dim=2), h), (union.any(dim=1), w)):  # rows, then columns, each (P, length)
        index = torch.arange(length).expand(p, length)
        low = (torch.where(covered, index, length).amin(dim=1) - grow).clamp(min=0)
        high = (torch.where(covered, index, -1).amax(dim=1) + grow + 1).clamp(max=length)
        corners.append(low)
        size.append(int((high - low).max()))
    return torch.stack(corners, dim=1), (size[0], size[1]), int(grow.max())


def _crop(frames: Tensor, corners: Tensor, size: tuple[int, int]) -> Tensor:
    """(S, P, ..., h, w) each pair's window of (S, P, ..., H, W) frames; what lies outside the frame reads 0."""
    p, (h, w) = frames.shape[1], frames.shape[-2:]
    rows = corners[:, :1] + torch.arange(size[0], device=frames.device)  # (P, h)
    cols = corners[:, 1:] + torch.arange(size[1], device=frames.device)  # (P, w)
    middle = [1] * (frames.ndim - 4)
    rows_at = rows.clamp(max=h - 1).view(1, p, *middle, size[0], 1).expand(*frames.shape[:-2], size[0], w)
    picked = frames.gather(-2, rows_at)
    cols_at = cols.clamp(max=w - 1).view(1, p, *middle, 1, size[1]).expand(*frames.shape[:-2], *size)
    picked = picked.gather(-1, cols_at)
    inside = (rows < h).unsqueeze(2) & (cols < w).unsqueeze(1)  # (P, h, w)
    return picked * inside.view(1, p, *middle, *size).to(picked.dtype)


def _shifted_errors(candidates: Tensor, takes: Tensor, mask: Tensor, shift: int) -> Tensor:
    r"""(S, R, P, Lh, Lw) :math:`\|(C_s(\cdot + d) - Y_r) M_r\|^2` at every shift ``d``, for P windows.

    ``candidates`` (S, P, C, h, w), ``takes`` (R, P, C, h, w) and ``mask`` (R, P, h, w) are cut to the same windows.
    Cross-correlations by FFT, zero-padded so that a shift of up to ``shift`` never wraps.
    """
    size = (mask.shape[-2] + shift, mask.shape[-1] + shift)
    frames = torch.fft.rfft2(candidates, s=size)  # (S, P, C, ..)
    masked = torch.fft.rfft2(mask.unsqueeze(2) * takes, s=size).conj()  # (R, P, C, ..)
    # correlation with the mask: sum_x M(x) f(x + d) = irfft(conj(M^) f^); channel by channel, no (S, R, C) product
    spectrum = torch.fft.rfft2(mask, s=size).conj().unsqueeze(0) * torch.fft.rfft2(
        candidates.square().sum(dim=2), s=size
    ).unsqueeze(1)
    for channel in range(takes.shape[2]):
        spectrum.sub_(2 * masked[:, :, channel].unsqueeze(0) * frames[:, :, channel].unsqueeze(1))
    real_energy = (mask.unsqueeze(2) * takes.square()).sum(dim=(2, 3, 4))  # (R, P)
    return torch.fft.irfft2(spectrum, s=size) + real_energy.unsqueeze(-1).unsqueeze(-1)


def _best_within(errors: Tensor, limit: int) -> Tensor:
    """(S, R, P, limit + 1): the least error over non-zero shifts of Chebyshev length at most k, for every k."""
    size = errors.shape[-2:]
    offsets = []
    for length in size:
        index = torch.arange(length, device=errors.device)
        offsets.append(torch.where(index <= length // 2, index, index - length).abs())
    reach = torch.maximum(offsets[0].view(-1, 1), offsets[1].view(1, -1)).flatten().clamp(max=limit + 1)
    # the unshifted comparison (cell 0) is taken directly: it goes to a bin no view reads
    reach = torch.where(reach == 0, limit + 1, reach)
    flat = errors.flatten(-2)
    binned = flat.new_full((*flat.shape[:-1], limit + 2), float("inf"))
    binned.scatter_reduce_(-1, reach.expand_as(flat), flat, reduce="amin")
    return binned[..., : limit + 1].cummin(dim=-1).values


def _episode_presence(  # noqa: PLR0913
    model: Tensor, takes: Tensor, masks: Tensor, visible: Tensor, ring_width: int, max_shift: int
) -> tuple[Tensor, Tensor]:
    """(V, T, N) presence of one episode's objects in each of the 2R views, and where each view scores a step.

    Views ``0 .. R-1``: the model held to every take but take ``a``; views ``R .. 2R-1``: take ``a`` held to the
    other takes.
    """
    r = takes.shape[0]
    inside, around, _ = _region_sums(takes, takes, masks, ring_width)
    shown, contrast, share = contrast_and_share(inside, around, visible)  # (R, T, N) each
    others = ~torch.eye(r, dtype=torch.bool, device=takes.device)
    include = torch.cat([others, others])  # (V, R): the takes each view is held to
    candidates = torch.cat([model.unsqueeze(0), takes])  # (S = R + 1, T, C, H, W)
    # view -> candidate: the model for views 0 .. R-1, take a for view R + a (made on the device: no copy to it)
    source = torch.cat(
        [torch.zeros(r, dtype=torch.long, device=takes.device), torch.arange(1, r + 1, device=takes.device)]
    )
    weights = masks.to(takes.dtype)
    # unshifted squared error of every candidate under every take's masks: one contraction over pixels per take
    errors = []
    for take in range(r):
        gap = (candidates - takes[take : take + 1]).square().sum(dim=2).flatten(2)  # (S, T, HW)
        with full_precision_matmul():
            errors.append(torch.einsum("tnx,stx->stn", weights[take].flatten(2), gap))
    scale = share / (contrast + EPS)  # (R, T, N)
    presence = (1 - scale * torch.stack(errors, dim=1)).clamp(0.0, 1.0)[source]  # (V, R, T, N)
    spread = _spread(_centres(masks, inside[..., 1]), shown, include).clamp(max=max_shift)  # (V, T, N)
    # only objects that reality scatters are searched; where every view's spread is 0 the unshifted score stands.
    # On CPU the moving objects are picked out (a host read); elsewhere every object is searched, with no sync
    moving = spread.amax(dim=0) > 0
    if takes.device.type == "cpu":
        pairs = moving.nonzero()
    else:  # every (step, object) pair, built without reading the device
        steps_all = torch.arange(moving.shape[0], device=takes.device).repeat_interleave(moving.shape[1])
        pairs = torch.stack([steps_all, torch.arange(moving.shape[1], device=takes.device).repeat(moving.shape[0])], 1)
    if max_shift > 0 and r > 1 and len(pairs):
        steps, objects = pairs.unbind(1)
        reach = spread[:, steps, objects]  # (V, P)
        window = weights[:, steps, objects]  # (R, P, H, W)
        corners, size, limit = _windows(masks[:, steps, objects], reach.amax(dim=0), max_shift)
        shifted = _shifted_errors(
            _crop(candidates[:, steps], corners, size),
            _crop(takes[:, steps], corners, size),
            _crop(window, corners, size),
            limit,
        )
        best = _best_within(shifted, limit)  # (S, R, P, limit + 1)
        index = reach.long().view(-1, 1, len(pairs), 1).expand(-1, r, -1, 1)  # (V, R, P, 1)
        least = best[source].gather(-1, index).squeeze(-1)  # (V, R, P)
        found = (1 - scale[:, steps, objects] * least).clamp(0.0, 1.0)
        presence[:, :, steps, objects] = torch.maximum(presence[:, :, steps, objects], found)
    counted = include.view(-1, r, 1, 1) & shown.unsqueeze(0)  # (V, R, T, N)
    best_take = torch.where(counted, presence, torch.zeros_like(presence)).amax(dim=1)  # (V, T, N)
    # a step counts where every take the view is held to shows the object
    scored = (counted | ~include.view(-1, r, 1, 1)).all(dim=1) & counted.any(dim=1)
    return torch.nan_to_num(best_take, nan=0.0), scored


def _object_persistence_takes_update(  # noqa: PLR0913
    preds: Tensor,
    target: Tensor,
    masks: Tensor,
    visible: Tensor | None = None,
    ring_width: int = 1,
    max_shift: int | None = None,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Per-episode persistence against R takes, finite flag, has-objects flag, and each take's against the others.

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
    model = torch.nan_to_num(p, nan=0.0, posinf=0.0, neginf=0.0)
    # one episode at a time: the shifted comparisons of a whole batch would not fit in memory
    found = [_episode_presence(model[i], y[i], masks[i], visible[i], ring_width, shift) for i in range(b)]
    presence, scored = (torch.stack(parts) for parts in zip(*found, strict=True))  # (B, V, T, N)
    tracks = torch.where(scored, presence, torch.ones_like(presence)).amin(dim=2)  # (B, V, N) worst step
    seen = scored.any(dim=2)
    weakest = torch.where(seen, tracks, torch.ones_like(tracks)).amin(dim=2)  # (B, V): the weakest track
    has_objects = seen[:, :r].any(dim=(1, 2))
    agreement = weakest[:, :r].mean(dim=1)
    agreement = torch.where(finite & has_objects, agreement, torch.zeros_like(agreement))
    return agreement, finite, has_objects, weakest[:, r:]
