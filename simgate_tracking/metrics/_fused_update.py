"""How a bundle of rollouts reaches the scorecard's frame axes: one kernel pass on CPU where it applies, else chunks.

The scorecard calls :func:`update_frame_axes` (and :func:`update_reset_axis` for a reset pass of its own); which
path scores the bundle is decided here, and both paths add the same per-episode scores to the same axes.

- The fused path: on CPU, :func:`~simgate_tracking.functional._fused.rollout_sums` takes every frame axis's sums in
  one pass of a compiled kernel, finished here into each axis's scores as its tensor path finishes them.
- The tensor path: every axis's own ``update``, on any device and dtype; on CPU a few episodes at a time, since a
  temporary larger than the C allocator's mmap threshold (at most 32 MiB) is fresh, page-faulted memory at every
  call, and costs more than the arithmetic on it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from simgate_tracking.functional._checks import as_frames, compute_dtype
from simgate_tracking.functional._distances import sharing_branch_distances
from simgate_tracking.functional._fused import RolloutSums, kernel_takes, rollout_sums
from simgate_tracking.functional.controllability import _controllability_from_distances, _delta_psnr_from_distances
from simgate_tracking.functional.object_persistence import _persistence_from_sums
from simgate_tracking.functional.reset_reproducibility import _reset_from_energies
from simgate_tracking.functional.temporal_consistency import _temporal_from_energies

if TYPE_CHECKING:
    from simgate_tracking.metrics.reset_reproducibility import ResetReproducibility
    from simgate_tracking.metrics.scorecard import SimulatorScorecard

Preds = Tensor | tuple[Tensor, Tensor]
CPU_CHUNKS, CPU_CHUNK_BYTES = 4, (4 * 2**20, 16 * 2**20)  # chunks of the episodes scored at once on CPU


def update_frame_axes(  # noqa: PLR0913
    card: SimulatorScorecard,
    preds: Preds,
    target: Tensor,
    second: Tensor | None,
    masks: Tensor | None,
    visible: Tensor | None,
    cpu_kernel: bool,
) -> None:
    """Add one bundle to every frame axis of ``card`` and to its frame quality; see the scorecard for shapes."""
    reference, branches = split_branches(preds)
    compiled = cpu_kernel and _kernel_applies(preds, target, second, masks, visible)
    scored = compiled and _update_compiled(card, preds, target, second, masks, visible)
    # a `second` of another length is passed whole, so the reset axis reports the mismatch
    for part in episode_chunks(target, reference, masks, visible, second):
        p, y = _float_frames(branches(part), "preds"), _float_frames(target[part], "target")
        if not scored:
            again = None if second is None else _float_frames(second[part], "second")
            chunk_masks = None if masks is None else masks[part]
            chunk_visible = None if visible is None else visible[part]
            reference_frames = _float_frames(reference[part], "preds")
            _update_tensors(card, p, y, reference_frames, again, chunk_masks, chunk_visible)
        card.visual_fidelity.update(p, first_take(y))


def update_reset_axis(
    axis: ResetReproducibility, first: Tensor, second: Tensor, target: Tensor, cpu_kernel: bool
) -> None:
    """Add reset reproducibility alone: first and second pass of the same episodes against their real futures."""
    compiled = (
        cpu_kernel
        and all(isinstance(x, Tensor) for x in (first, second, target))
        and kernel_takes(first, second, target)
        and first.ndim == 5
        and first.numel() > 0
        and first.shape == second.shape == target.shape
    )
    parts = episode_chunks(first, second, target)
    if compiled and first.dtype == second.dtype == target.dtype == torch.float32:
        parts = [slice(None)]  # float32 frames go to the kernel whole
    for part in parts:
        sums = None
        if compiled:
            p1, p2 = _float_frames(first[part], "first"), _float_frames(second[part], "second")
            sums = rollout_sums(p1, _float_frames(target[part], "target"), second=p2, temporal=False)
        if sums is not None and sums.reset is not None:
            axis.add_scores(*_reset_from_energies(*sums.reset.unbind(1)))
        else:
            axis.update(first[part], second[part], target[part])


def split_branches(preds: Preds) -> tuple[Tensor, Callable[[slice], Tensor]]:
    """The reference rollouts, and the (b, K+1, T, C, H, W) rollouts of a slice of episodes, from either form."""
    if not isinstance(preds, tuple):
        # a wrong `preds` is reported by the first axis that reads it, as for any other bad input
        return (preds[:, 0] if isinstance(preds, Tensor) and preds.ndim >= 2 else preds), lambda part: preds[part]
    if len(preds) != 2 or not all(isinstance(x, Tensor) for x in preds):
        raise ValueError("Expected `preds` as a tensor or a pair of tensors (reference, counterfactual)")
    reference, counterfactual = preds
    if reference.ndim != 5 or counterfactual.ndim != 6 or counterfactual[:, 0].shape != reference.shape:
        raise ValueError(
            "Expected `preds` as (reference (B, T, C, H, W), counterfactual (B, K, T, C, H, W)) but got shapes "
            f"{tuple(reference.shape)} and {tuple(counterfactual.shape)}"
        )
    return reference, lambda part: torch.cat([reference[part].unsqueeze(1), counterfactual[part]], dim=1)


def first_take(target: Tensor) -> Tensor:
    """Take 0 of (B, R, K+1, T, C, H, W) real takes; one take passes unchanged. Frame quality compares with it."""
    return target[:, 0] if target.ndim == 7 else target


def episode_chunks(*inputs: Tensor | None) -> list[slice]:
    """Slices of the episode dimension to score one after the other: a few episodes at a time on CPU, all elsewhere.

    Inputs that disagree on the number of episodes are passed whole, so the axis that reads them reports the
    mismatch.
    """
    frames, given = inputs[0], [x for x in inputs if x is not None]
    if not isinstance(frames, Tensor) or frames.device.type != "cpu" or frames.ndim == 0 or len(frames) == 0:
        return [slice(None)]
    if any(not isinstance(x, Tensor) or x.ndim == 0 or len(x) != len(frames) for x in given):
        return [slice(None)]
    # a quarter of the bundle, within bounds: few chunks (every chunk costs every axis its fixed overhead) whose
    # temporaries stay a fraction of the rollouts the caller already holds
    chunk_bytes = min(max(frames.numel() * 4 // CPU_CHUNKS, CPU_CHUNK_BYTES[0]), CPU_CHUNK_BYTES[1])
    step = max(1, chunk_bytes // (frames[0].numel() * 4))
    return [slice(start, start + step) for start in range(0, len(frames), step)]


def _kernel_applies(
    preds: Preds, target: Tensor, second: Tensor | None, masks: Tensor | None, visible: Tensor | None
) -> bool:
    """True where the compiled kernel can score the bundle: CPU frames whose shapes agree.

    Anything else takes the tensor path, whose checks report what was expected and what was given.
    """
    if isinstance(preds, tuple):
        # `split_branches` checked that the counterfactual branches match the reference
        reference, counterfactual = preds
        if not kernel_takes(reference, counterfactual, target, second):
            return False
        shape = (counterfactual.shape[0], counterfactual.shape[1] + 1, *counterfactual.shape[2:])
    else:
        if not kernel_takes(preds, target, second):
            return False
        shape = tuple(preds.shape)
    if len(shape) != 6 or shape != tuple(target.shape) or min(shape) < 1 or shape[1] < 2 or shape[2] < 2:
        return False
    frames = (shape[0], *shape[2:])
    if second is not None and tuple(second.shape) != frames:
        return False
    if masks is None:
        return True
    if not isinstance(masks, Tensor) or masks.dtype != torch.bool or masks.ndim != 5 or masks.device.type != "cpu":
        return False
    if tuple(masks.shape[:2]) != shape[:1] + shape[2:3] or tuple(masks.shape[3:]) != shape[4:]:
        return False
    if visible is None:
        return True
    return isinstance(visible, Tensor) and visible.dtype == torch.bool and visible.shape == masks.shape[:3]


def _update_compiled(  # noqa: PLR0913
    card: SimulatorScorecard,
    preds: Preds,
    target: Tensor,
    second: Tensor | None,
    masks: Tensor | None,
    visible: Tensor | None,
) -> bool:
    """Every frame axis from the compiled kernel; False, with nothing added, where the kernel is unavailable.

    float32 frames go to the kernel whole, the branches apart if they came apart; other frame dtypes are
    converted a few episodes at a time.
    """
    tensors = (*preds, target, second) if isinstance(preds, tuple) else (preds, target, second)
    reference = preds[0] if isinstance(preds, tuple) else preds[:, 0]
    whole = all(x is None or x.dtype == torch.float32 for x in tensors)
    parts = [slice(None)] if whole else episode_chunks(target, reference, masks, visible, second)
    found = []
    for part in parts:
        model: Preds
        if isinstance(preds, tuple):
            model = (_float_frames(preds[0][part], "preds"), _float_frames(preds[1][part], "preds"))
        else:
            model = _float_frames(preds[part], "preds")
        sums = rollout_sums(
            model,
            _float_frames(target[part], "target"),
            second=None if second is None else _float_frames(second[part], "second"),
            masks=None if masks is None else masks[part],
            ring_width=card.object_persistence.ring_width,
        )
        if sums is None:
            return False
        found.append((sums, None if visible is None else visible[part]))
    for sums, chunk_visible in found:
        _add_sums(card, sums, chunk_visible, reference[0].numel())
    return True


def _add_sums(card: SimulatorScorecard, sums: RolloutSums, visible: Tensor | None, values_per_branch: int) -> None:
    """Every frame axis's per-episode scores, finished from the kernel's sums as their tensor paths finish them."""
    assert sums.distances is not None and sums.temporal is not None
    card.controllability.add_scores(*_controllability_from_distances(sums.distances))
    card.delta_psnr.add_deltas(_delta_psnr_from_distances(sums.distances, values_per_branch))
    card.temporal_consistency.add_scores(*_temporal_from_energies(*sums.temporal.unbind(1)))
    if sums.inside is not None and sums.around is not None:
        scores, finite, has_objects = _persistence_from_sums(sums.inside, sums.around, sums.finite, visible)
        card.object_persistence.add_scores(scores, finite, counted=has_objects)
    if sums.reset is not None:
        card.reset_reproducibility.add_scores(*_reset_from_energies(*sums.reset.unbind(1)))


def _update_tensors(  # noqa: PLR0913
    card: SimulatorScorecard,
    p: Tensor,
    y: Tensor,
    reference: Tensor,
    second: Tensor | None,
    masks: Tensor | None,
    visible: Tensor | None,
) -> None:
    """One chunk through every axis's own update: tensor operations, on any device and dtype."""
    with sharing_branch_distances():
        card.controllability.update(p, y)
        card.delta_psnr.update(p, first_take(y))
    # the axes below read the reference branch alone (of every take)
    real_reference = y[:, :, 0] if y.ndim == 7 else y[:, 0]
    card.temporal_consistency.update(reference, real_reference)
    if masks is not None:
        card.object_persistence.update(reference, real_reference, masks, visible)
    if second is not None:
        card.reset_reproducibility.update(reference, second, real_reference)


def _float_frames(frames: Tensor, name: str) -> Tensor:
    """uint8 or half-precision frames as float32, converted once for every axis (each would convert them itself)."""
    if isinstance(frames, Tensor) and frames.dtype in (torch.uint8, torch.float16, torch.bfloat16):
        return compute_dtype(as_frames(frames, name))
    return frames
