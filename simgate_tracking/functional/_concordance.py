"""The concordance of two change fields, the building block of controllability and temporal consistency."""

from __future__ import annotations

import torch
from torch import Tensor

EPS = 1e-8


def concordance(x: Tensor, y: Tensor, dims: tuple[int, ...], eps: float = EPS) -> Tensor:
    r"""Concordance :math:`(2\langle x, y\rangle + \epsilon) / (\|x\|^2 + \|y\|^2 + \epsilon)`, clamped to [0, 1].

    It is 1 iff ``x == y`` and 0 when ``x`` shows no change where ``y`` shows one. Non-finite values give 0.

    Args:
        x: The model's change field.
        y: Reality's change field, same shape.
        dims: The dimensions summed over; the others are kept.
        eps: Keeps the ratio at 1 when both fields are zero.
    """
    x = torch.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
    inner = (x * y).sum(dim=dims)
    energy = x.square().sum(dim=dims) + y.square().sum(dim=dims)
    return ((2 * inner + eps) / (energy + eps)).clamp(0.0, 1.0)
