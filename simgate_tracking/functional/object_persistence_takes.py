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

Shifted comparisons for every shift at once are cross-correlations, taken with FFTs of windows around the objects
(on CPU) or of the zero-padded frames (elsewhere); the unshifted comparison is taken directly, in each object's box,
so an object whose takes agree scores exactly as with one take. What the takes alone decide (visibility, contrast,
spread, windows, reality's own views, and while they fit a memory budget the takes' boxes and spectra) does not
depend on the model: on CPU it is kept per episode (see :mod:`simgate_tracking.functional._reality_cache`), so
scoring a fixed probe set again reads each take once and transforms only the model's frames.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from simgate_tracking.functional._checks import check_dims
from simgate_tracking.functional._reality_cache import RealityCache
from simgate_tracking.functional.object_persistence import _region_sums, contrast_and_share, weakest_track
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


def _windows(masks: Tensor, reach: Tensor, max_shift: int) -> tuple[Tensor, tuple[int, int], int, tuple[int, int]]:
    """Where to correlate each of P (step, object) pairs: its masks' box over every take, grown by its reach.

    ``masks``: (R, P, H, W) each pair's masks in every take; ``reach``: (P,) the largest shift searched for it.
    Returns the windows' top-left corners (P, 2), their common size, the largest shift and the zero padding the
    correlations need, (rows, columns). On CPU the windows are read on the host and cut to the objects: a window may
    reach past the frame (that part reads 0), so a shift within a pair's reach never leaves its window and needs no
    padding. Elsewhere every window is the whole frame, padded by the largest shift, with no sync.
    """
    p, (h, w) = masks.shape[1], masks.shape[-2:]
    if masks.device.type != "cpu":
        return torch.zeros(p, 2, dtype=torch.long, device=masks.device), (h, w), max_shift, (max_shift, max_shift)
    union, grow = masks.any(dim=0), reach.long()
    corners, size = [], []
    for covered, length in ((union.any(dim=2), h), (union.any(dim=1), w)):  # rows, then columns, each (P, length)
        index = torch.arange(length).expand(p, length)
        present = covered.any(dim=1)  # a pair no take shows gets an empty window at the corner
        low = torch.where(present, torch.where(covered, index, length).amin(dim=1) - grow, 0)
        high = torch.where(present, torch.where(covered, index, -1).amax(dim=1) + grow + 1, 0)
        corners.append(low)
        size.append(max(int((high - low).max()), 1))
    return torch.stack(corners, dim=1), (size[0], size[1]), int(grow.max()), (0, 0)


def _crop(
    frames: Tensor, steps: Tensor, corners: Tensor, size: tuple[int, int], objects: Tensor | None = None
) -> Tensor:
    """(S, P, C, h, w) each pair's window of (S, T, C, H, W) frames at its step; what lies outside the frame reads 0.

    With ``objects``: (S, P, h, w) windows of (S, T, N, H, W) masks, each at its pair's object. The frames, padded
    where a window leaves them, are viewed as every window at once, and the P windows are copied out of that view.
    """
    if frames.device.type != "cpu":  # every window is the whole frame (see `_windows`)
        return frames[:, steps] if objects is None else frames[:, steps, objects]
    h, w = frames.shape[-2:]
    top, left = (-corners.amin(dim=0)).clamp(min=0).tolist()
    bottom, right = (corners.amax(dim=0) + torch.tensor(size) - torch.tensor([h, w])).clamp(min=0).tolist()
    padded = torch.nn.functional.pad(frames, (left, right, top, bottom)) if top + left + bottom + right else frames
    stride = padded.stride()
    positions = (padded.shape[-2] - size[0] + 1, padded.shape[-1] - size[1] + 1)
    windows = padded.as_strided((*padded.shape[:-2], *positions, *size), (*stride, *stride[-2:]))
    rows, cols = corners[:, 0] + top, corners[:, 1] + left
    if objects is not None:  # adjacent indices keep their place: (S, P, h, w)
        return windows[:, steps, objects, rows, cols]
    return windows[:, steps, :, rows, cols].transpose(0, 1)  # apart, they come first: (P, S, C, h, w)


def _fast_length(length: int) -> int:
    """The least n >= ``length`` whose only prime factors are 2, 3 and 5: an FFT of a prime length is 5-8x slower."""
    n = length
    while True:
        rest = n
        for prime in (2, 3, 5):
            while rest % prime == 0:
                rest //= prime
        if rest == 1:
            return n
        n += 1


def _nbytes(*tensors: Tensor) -> int:
    """Bytes the tensors hold together."""
    return sum(x.element_size() * x.nelement() for x in tensors)


class _Templates(NamedTuple):
    """Reality's side of the shifted comparisons of P windows: spectra of every take's masked frame and mask."""

    masked: Tensor  # (R, P, C, Fh, Fw // 2 + 1) conjugate spectra of M_r Y_r
    mask: Tensor  # (R, P, Fh, Fw // 2 + 1) conjugate spectra of M_r
    energy: Tensor  # (R, P) |Y_r M_r|^2
    size: tuple[int, int]  # (Fh, Fw), the transforms' size

    @property
    def nbytes(self) -> int:
        """Bytes held."""
        return _nbytes(self.masked, self.mask, self.energy)


def _templates(takes: Tensor, mask: Tensor, pad: tuple[int, int]) -> _Templates:
    """Spectra of ``takes`` (R, P, C, h, w) under ``mask`` (R, P, h, w), cut to P windows, for `_shifted_errors`.

    The transforms are zero-padded by ``pad`` (rows, columns) so that a searched shift never wraps, and on to a
    length with small prime factors (an FFT of a prime length is several times slower): the cells past the searched
    shifts are read by no view.
    """
    size = (_fast_length(mask.shape[-2] + pad[0]), _fast_length(mask.shape[-1] + pad[1]))
    masked = torch.fft.rfft2(mask.unsqueeze(2) * takes, s=size).conj()
    energy = (mask.unsqueeze(2) * takes.square()).sum(dim=(2, 3, 4))
    return _Templates(masked, torch.fft.rfft2(mask, s=size).conj(), energy, size)


def _shifted_errors(candidates: Tensor, templates: _Templates) -> Tensor:
    r"""(S, R, P, Fh, Fw) :math:`\|(C_s(\cdot + d) - Y_r) M_r\|^2` at every shift ``d``, for P windows.

    ``candidates`` (S, P, C, h, w) are cut to the windows of ``templates``. Cross-correlations by FFT:
    :math:`\sum_x M(x) f(x + d)` is the inverse transform of :math:`\overline{\hat M} \hat f`.
    """
    size = templates.size
    frames = torch.fft.rfft2(candidates, s=size)  # (S, P, C, ..)
    # channel by channel: no (S, R, C) product
    spectrum = templates.mask.unsqueeze(0) * torch.fft.rfft2(candidates.square().sum(dim=2), s=size).unsqueeze(1)
    for channel in range(candidates.shape[2]):
        spectrum.sub_(2 * templates.masked[:, :, channel].unsqueeze(0) * frames[:, :, channel].unsqueeze(1))
    return torch.fft.irfft2(spectrum, s=size) + templates.energy.unsqueeze(-1).unsqueeze(-1)


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


class _Boxes(NamedTuple):
    """Every take's frame and mask cut to each (step, object)'s box: the unshifted comparisons read nothing else."""

    takes: Tensor  # (R, T * N, C, h, w)
    masks: Tensor  # (R, T * N, h, w) float

    @property
    def nbytes(self) -> int:
        """Bytes held."""
        return _nbytes(*self)


class _Reality(NamedTuple):
    """What one episode's takes give every view, whatever the model: kept per episode by the reality cache."""

    shown: Tensor  # (R, T, N) where each take shows each object
    scale: Tensor  # (R, T, N) the visible share over the contrast: an error of `scale * e` costs `e` presence
    spread: Tensor  # (R, T, N) view a's reach: the spread of the takes but take a
    box_corners: Tensor  # (T * N, 2) the top-left corner of each (step, object)'s box over every take
    box_size: tuple[int, int]  # the boxes' common size
    pairs: Tensor  # (P, 2) the (step, object) pairs whose shifts are searched
    corners: Tensor  # (P, 2) the top-left corner of each pair's window
    size: tuple[int, int]  # the windows' common size
    limit: int  # the largest shift searched
    pad: tuple[int, int]  # the zero padding of the correlations, (rows, columns)
    held_out: Tensor | None = None  # (R,) each take held out against the others: its weakest track
    boxes: _Boxes | None = None  # the takes cut to the boxes, where the cache's budget allows
    templates: _Templates | None = None  # reality's side of the shifted comparisons, where the budget allows


REALITY: RealityCache[_Reality] = RealityCache()


def _every_pair(steps: int, objects: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """The step and the object of every (step, object) pair, step-major, built on the device."""
    return (
        torch.arange(steps, device=device).repeat_interleave(objects),
        torch.arange(objects, device=device).repeat(steps),
    )


def _reality(takes: Tensor, masks: Tensor, visible: Tensor, ring_width: int, max_shift: int) -> _Reality:
    """Visibility, contrast, spread and where to compare, for one episode's objects in its R takes (R, T, C, H, W)."""
    r, t, n = masks.shape[:3]
    inside, around, _ = _region_sums(takes, takes, masks, ring_width)
    shown, contrast, share = contrast_and_share(inside, around, visible)  # (R, T, N) each
    others = ~torch.eye(r, dtype=torch.bool, device=takes.device)
    spread = _spread(_centres(masks, inside[..., 1]), shown, others).clamp(max=max_shift)  # (R, T, N)
    every_step, every_object = _every_pair(t, n, takes.device)
    no_reach = torch.zeros(t * n, dtype=torch.long, device=takes.device)
    box_corners, box_size, _, _ = _windows(masks.flatten(1, 2), no_reach, 0)  # pairs step-major, as `_every_pair`
    # only objects that reality scatters are searched; where every view's spread is 0 the unshifted score stands.
    # On CPU the moving objects are picked out (a host read); elsewhere every object is searched, with no sync
    moving = spread.amax(dim=0) > 0
    pairs = moving.nonzero() if takes.device.type == "cpu" else torch.stack([every_step, every_object], 1)
    pairs = pairs if max_shift > 0 and r > 1 else pairs[:0]
    fixed = (shown, share / (contrast + EPS), spread, box_corners, box_size, pairs)
    if not len(pairs):
        return _Reality(*fixed, pairs, (0, 0), 0, (0, 0))
    steps, objects = pairs.unbind(1)
    return _Reality(*fixed, *_windows(masks[:, steps, objects], spread[:, steps, objects].amax(dim=0), max_shift))


def _boxes(takes: Tensor, masks: Tensor, reality: _Reality) -> _Boxes:
    """The takes and their masks cut to every (step, object)'s box."""
    steps, objects = _every_pair(masks.shape[1], masks.shape[2], takes.device)
    corners, size = reality.box_corners, reality.box_size
    return _Boxes(_crop(takes, steps, corners, size), _crop(masks, steps, corners, size, objects).to(takes.dtype))


def _episode_presence(
    model: Tensor, takes: Tensor, masks: Tensor, reality: _Reality, held_out: bool
) -> tuple[Tensor, Tensor, _Reality]:
    """(V, T, N) presence of one episode's objects in each view, where each view scores a step, and the reality.

    Views ``0 .. R-1``: the model held to every take but take ``a``; with ``held_out``, also views ``R .. 2R-1``:
    take ``a`` held to the other takes. The reality comes back with its boxes and templates, for the cache.
    """
    r, t, n = masks.shape[:3]
    others = ~torch.eye(r, dtype=torch.bool, device=takes.device)
    include = torch.cat([others, others]) if held_out else others  # (V, R): the takes each view is held to
    spread = torch.cat([reality.spread, reality.spread]) if held_out else reality.spread  # (V, T, N)
    # candidates: the model, then (with held_out) every take, each cut to the boxes and windows it is compared in
    # view -> candidate: the model for views 0 .. R-1, take a for view R + a (made on the device: no copy to it)
    source = torch.zeros(r, dtype=torch.long, device=takes.device)
    if held_out:
        source = torch.cat([source, torch.arange(1, r + 1, device=takes.device)])
    # unshifted squared error of every candidate under every take's masks, read in each (step, object)'s box
    boxes = reality.boxes if reality.boxes is not None else _boxes(takes, masks, reality)
    every_step, _ = _every_pair(t, n, takes.device)
    cut = _crop(model.unsqueeze(0), every_step, reality.box_corners, reality.box_size)  # (1, T * N, C, h, w)
    cut = torch.cat([cut, boxes.takes]) if held_out else cut  # (S, T * N, C, h, w)
    gap = (cut.unsqueeze(1) - boxes.takes.unsqueeze(0)).square_().sum(dim=3)  # (S, R, T * N, h, w)
    errors = (gap * boxes.masks.unsqueeze(0)).sum(dim=(-2, -1)).view(-1, r, t, n)
    scale = reality.scale
    presence = (1 - scale * errors).clamp(0.0, 1.0)[source]  # (V, R, T, N)
    templates = reality.templates
    if len(reality.pairs):
        steps, objects = reality.pairs.unbind(1)
        reach = spread[:, steps, objects]  # (V, P)
        corners, size = reality.corners, reality.size
        windows = _crop(model.unsqueeze(0), steps, corners, size)  # (1, P, C, h, w)
        if templates is None or held_out:
            take_windows = _crop(takes, steps, corners, size)
            if templates is None:
                mask_windows = _crop(masks, steps, corners, size, objects).to(takes.dtype)
                templates = _templates(take_windows, mask_windows, reality.pad)
            if held_out:
                windows = torch.cat([windows, take_windows])
        shifted = _shifted_errors(windows, templates)
        best = _best_within(shifted, reality.limit)  # (S, R, P, limit + 1)
        index = reach.long().view(-1, 1, len(reality.pairs), 1).expand(-1, r, -1, 1)  # (V, R, P, 1)
        least = best[source].gather(-1, index).squeeze(-1)  # (V, R, P)
        found = (1 - scale[:, steps, objects] * least).clamp(0.0, 1.0)
        presence[:, :, steps, objects] = torch.maximum(presence[:, :, steps, objects], found)
    counted = include.view(-1, r, 1, 1) & reality.shown.unsqueeze(0)  # (V, R, T, N)
    best_take = torch.where(counted, presence, torch.zeros_like(presence)).amax(dim=1)  # (V, T, N)
    # a step counts where every take the view is held to shows the object
    scored = (counted | ~include.view(-1, r, 1, 1)).all(dim=1) & counted.any(dim=1)
    return torch.nan_to_num(best_take, nan=0.0), scored, reality._replace(boxes=boxes, templates=templates)


def _keep(cache: RealityCache[_Reality], key: bytes, reality: _Reality) -> None:
    """Keep an episode's reality, with as much of its larger parts (boxes, then templates) as the budget allows."""
    kept, spent = reality._replace(boxes=None, templates=None), 0
    for name in ("boxes", "templates"):
        part = getattr(reality, name)
        if part is not None and cache.fits(spent + part.nbytes):
            kept, spent = kept._replace(**{name: part}), spent + part.nbytes
    cache.put(key, kept, spent)


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
    if masks.shape[3] == 0:  # no object slot: no episode has anything to score
        return torch.zeros_like(finite, dtype=p.dtype), finite, torch.zeros_like(finite), p.new_ones(b, r)
    # reality's own views do not depend on the model: on CPU, where the shift search reads the host anyway, they
    # are kept per episode, and a fixed probe set pays for them once
    cache = REALITY if y.device.type == "cpu" else None
    clean = cache is not None and bool(finite.all())  # on CPU a finite rollout is not copied
    model = p if clean else torch.nan_to_num(p, nan=0.0, posinf=0.0, neginf=0.0)
    settings = ("object_persistence", ring_width, shift)
    agreements, objects, held_out = [], [], []
    # one episode at a time: the shifted comparisons of a whole batch would not fit in memory
    for i in range(b):
        key = cache.digest(y[i], settings, masks[i], visible[i]) if cache is not None else b""
        known = cache.get(key) if cache is not None else None
        if known is None:
            known = _reality(y[i], masks[i], visible[i], ring_width, shift)
        presence, scored, found = _episode_presence(model[i], y[i], masks[i], known, known.held_out is None)
        tracks = torch.where(scored, presence, torch.ones_like(presence)).amin(dim=1)  # (V, N) worst step
        seen = scored.any(dim=1)
        weakest = weakest_track(tracks, seen)  # (V,)
        reality_scores = known.held_out
        if reality_scores is None:
            reality_scores = weakest[r:]
            if cache is not None:
                _keep(cache, key, found._replace(held_out=reality_scores))
        agreements.append(weakest[:r].mean())
        objects.append(seen[:r].any())
        held_out.append(reality_scores)
    agreement, has_objects = torch.stack(agreements), torch.stack(objects)
    agreement = torch.where(finite & has_objects, agreement, torch.zeros_like(agreement))
    return agreement, finite, has_objects, torch.stack(held_out)
