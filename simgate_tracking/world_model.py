"""One call of the world model: its rollout function, seeded per episode, its frames checked and rescaled."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor, nn

from simgate_tracking.value_range import UNIT_RANGE, ObservedRange, ValueRangeLike, rescaled


class RolloutFn(Protocol):
    """``rollout(context, actions, generator=None) -> frames``: (B, T0, C, H, W), (B, T, A) -> (B, T, C, H, W)."""

    def __call__(self, context: Tensor, actions: Tensor, generator: list[torch.Generator] | None = None) -> Tensor:
        """Roll the world model out from ``context`` under ``actions``."""


class RolloutError(ValueError):
    """A rollout or task judgement that does not fit the probe set (shape, dtype or device)."""


def resolve_rollout_fn(model: Any) -> RolloutFn:
    """The rollout function of ``model``: its ``rollout`` method, or ``model`` itself if it is a plain callable.

    Raises:
        TypeError: If ``model`` has no ``rollout`` method and is not callable.
    """
    rollout = getattr(model, "rollout", None)
    if callable(rollout):
        return rollout  # type: ignore[no-any-return]
    if callable(model) and not isinstance(model, nn.Module):
        return model  # type: ignore[no-any-return]
    raise TypeError(
        f"Expected a world model with a `rollout(context, actions, generator=None)` method, or a `rollout_fn`, "
        f"but got {type(model).__name__} without one"
    )


@contextmanager
def preserved_rng(devices: list[torch.device] | None = None) -> Iterator[None]:
    """Restore the torch (CPU and CUDA), numpy and Python RNG states on exit, so scoring never perturbs training."""
    py_state, np_state = random.getstate(), np.random.get_state()
    cuda = [d for d in devices or [] if d.type == "cuda"]
    with torch.random.fork_rng(devices=cuda, enabled=True):
        try:
            yield
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)


def _batch_seed(seeds: Tensor) -> int:
    """One global seed per batch, a function of its episodes' seeds only."""
    mixed = 0
    for seed in seeds.tolist():
        mixed = (mixed * 1_000_003 + int(seed)) % (2**63 - 1)
    return mixed


def _generators(seeds: Tensor, device: torch.device) -> list[torch.Generator]:
    return [torch.Generator(device=device).manual_seed(int(seed)) for seed in seeds.tolist()]


def _check_frames(frames: Any, expected: tuple[int, ...], device: torch.device, what: str) -> Tensor:
    if not isinstance(frames, Tensor):
        raise RolloutError(
            f"Expected {what} to return a torch.Tensor of shape {expected} but got {type(frames).__name__}"
        )
    if tuple(frames.shape) != expected:
        raise RolloutError(
            f"Expected {what} to return frames of shape (B, T, C, H, W) = {expected} but got {tuple(frames.shape)}"
        )
    if not (frames.is_floating_point() or frames.dtype == torch.uint8):
        raise RolloutError(f"Expected {what} to return float frames in [0, 1] or uint8 but got dtype {frames.dtype}")
    if frames.device.type != device.type:
        raise RolloutError(f"Expected {what} to return frames on device {device} but got {frames.device}")
    return frames


@contextmanager
def noted(where: str) -> Iterator[None]:
    """Let an exception raised inside say where it came from (a note under its traceback), its type unchanged.

    The type stays, so that code catching it (``torch.cuda.OutOfMemoryError`` for one) still does.
    """
    try:
        yield
    except Exception as err:
        if hasattr(err, "add_note"):  # Python >= 3.11
            err.add_note(f"simgate: raised {where}")
        raise


def rollout_branch(  # noqa: PLR0913
    rollout_fn: RolloutFn,
    context: Tensor,
    actions: Tensor,
    seeds: Tensor,
    horizon_frames: tuple[int, ...],
    value_range: ValueRangeLike = UNIT_RANGE,
    observed: ObservedRange | None = None,
) -> Tensor:
    """One call of the world model for a batch: per-episode seeded generators, global RNG seeded from the batch.

    Args:
        rollout_fn: The world model's rollout.
        context: (B, T0, C, H, W).
        actions: (B, T, A).
        seeds: (B,) CPU int64 seeds.
        horizon_frames: The expected (T, C, H, W) of each rollout.
        value_range: The range the model's float frames span; they come back rescaled to [0, 1].
        observed: Where the frames' range is gathered (before rescaling), or None.
    """
    torch.manual_seed(_batch_seed(seeds))
    with noted(f"in the world model's rollout(context, actions) on the probe episodes of seeds {seeds.tolist()}"):
        frames = rollout_fn(context, actions, generator=_generators(seeds, context.device))
    frames = _check_frames(frames, (context.shape[0], *horizon_frames), context.device, "rollout(context, actions)")
    if observed is not None:
        observed.update(frames)
    return rescaled(frames, value_range)
