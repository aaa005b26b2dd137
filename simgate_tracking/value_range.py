"""The range a world model's float frames span: declared, checked, rescaled to [0, 1], and watched for drift."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

ValueRangeLike = tuple[float, float]
UNIT_RANGE: ValueRangeLike = (0.0, 1.0)
VALUE_TOLERANCE = 0.1  # of the declared range: noise and overshoot pass, 1.2x brightness, tanh or 0..255 do not


def check_value_range(value_range: Any) -> ValueRangeLike:
    """``value_range`` as a pair of floats ``(low, high)``, finite, ``low < high``.

    Raises:
        ValueError: Otherwise.
    """
    ok = (
        isinstance(value_range, tuple | list)
        and len(value_range) == 2
        and all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in value_range)
        and value_range[0] < value_range[1]
    )
    if not ok:
        raise ValueError(
            "Expected argument `value_range` to be a pair (low, high) of finite numbers with low < high, the values "
            f"the model's float frames span (for example (0, 1), (-1, 1) or (0, 255)), but got {value_range!r}"
        )
    return float(value_range[0]), float(value_range[1])


class ObservedRange:
    """The lowest and highest finite value of a check's float rollouts, gathered on the device and read once.

    Args:
        value_range: The range the model declared its float frames span.
    """

    def __init__(self, value_range: ValueRangeLike = UNIT_RANGE) -> None:
        self.value_range = value_range
        self._seen: Tensor | None = None  # (2,) float32 on the rollouts' device: NaN until a finite value shows

    def update(self, frames: Tensor) -> None:
        """Fold in one rollout's range; reads nothing on the host (a NaN or Inf rollout leaves it unchanged)."""
        if frames.dtype == torch.uint8 or frames.numel() == 0:
            return  # uint8 frames are 0..255 by their dtype
        seen = torch.stack(torch.aminmax(frames.detach())).float()
        seen = seen.masked_fill(~torch.isfinite(seen), math.nan)
        if self._seen is not None:
            seen = torch.stack([torch.fmin(self._seen[0], seen[0]), torch.fmax(self._seen[1], seen[1])])
        self._seen = seen

    def warning(self) -> str | None:
        """What to tell the user when the frames left the declared range by more than the tolerance, else None."""
        if self._seen is None:
            return None
        low, high = self._seen.tolist()  # the one host read of the range in a check
        a, b = self.value_range
        slack = VALUE_TOLERANCE * (b - a)
        if math.isnan(low) or (low >= a - slack and high <= b + slack):
            return None
        return (
            f"The world model's rollout frames range from {low:.4g} to {high:.4g}, but the gate expects values in "
            f"[{a:g}, {b:g}] (value_range, tolerance {slack:.3g}): they are scored against real frames in [0, 1], so "
            f"every score is off. {_range_hint(low, high, self.value_range)}"
        )


def _range_hint(low: float, high: float, declared: ValueRangeLike) -> str:
    """Which range to declare, guessed from the observed one."""
    slack = VALUE_TOLERANCE
    if declared == UNIT_RANGE and -1.0 - slack <= low < -slack and high <= 1.0 + slack:
        return "A tanh output? Pass value_range=(-1, 1) and the gate rescales it."
    if declared == UNIT_RANGE and low >= -slack and 2.0 < high <= 255 * (1 + slack):
        return "Pixel values? Pass value_range=(0, 255) (or return uint8) and the gate rescales it."
    return "Pass the range the model's frames span as value_range=(low, high), or clamp them."


def rescaled(frames: Tensor, value_range: ValueRangeLike) -> Tensor:
    """Float frames of ``value_range`` mapped to [0, 1] (a new tensor); uint8 and [0, 1] frames pass unchanged."""
    low, high = value_range
    if value_range == UNIT_RANGE or not frames.is_floating_point():
        return frames
    return torch.sub(frames, low).div_(high - low)
