"""The concordance of two change fields, the building block of controllability and temporal consistency."""

from __future__ import annotations

import torch
from torch import Tensor

EPS = 1e-8


def concordance_from_sums(twice_inner: Tensor, energy: Tensor, eps: float = EPS) -> Tensor:
    r"""Concordance from :math:`2\langle x, y\rangle` and :math:`\|x\|^2 + \|y\|^2`, clamped to [0, 1]; NaN gives 0."""
    return torch.nan_to_num(((twice_inner + eps) / (energy + eps)).clamp(0.0, 1.0), nan=0.0)


def concordance_from_energies(x_energy: Tensor, y_energy: Tensor, gap_energy: Tensor, eps: float = EPS) -> Tensor:
    r"""Concordance from :math:`\|x\|^2`, :math:`\|y\|^2` and :math:`\|x - y\|^2`, by polarisation; NaN gives 0."""
    energy = x_energy + y_energy
    return concordance_from_sums(energy - gap_energy, energy, eps)


def concordance(
    x: Tensor, y: Tensor, dims: tuple[int, ...], eps: float = EPS, overwrite_x: bool = False
) -> tuple[Tensor, Tensor]:
    r"""Concordance :math:`(2\langle x, y\rangle + \epsilon) / (\|x\|^2 + \|y\|^2 + \epsilon)`, clamped to [0, 1].

    It is 1 iff ``x == y`` and 0 when ``x`` shows no change where ``y`` shows one. An entry with non-finite values
    scores 0. Also returns :math:`\|x\|^2`, non-finite exactly where ``x`` has a NaN or Inf (or overflows), so a
    caller needs no separate pass over ``x`` to find them.

    Args:
        x: The model's change field.
        y: Reality's change field, same shape.
        dims: The dimensions summed over; the others are kept.
        eps: Keeps the ratio at 1 when both fields are zero.
        overwrite_x: ``x`` is a temporary the caller no longer needs: it receives ``x - y`` instead of a new buffer.

    Example:
        >>> import torch
        >>> y = torch.tensor([[1.0, 2.0], [1.0, 0.0]])
        >>> concordance(y, y, dims=(1,))[0]
        tensor([1., 1.])
        >>> concordance(-y, y, dims=(1,))[0]  # the opposite change
        tensor([0., 0.])
    """
    # squared norms are fused single passes; 2<x, y> = |x|^2 + |y|^2 - |x - y|^2 needs no product field in memory
    x_energy = torch.linalg.vector_norm(x, dim=dims).square()
    y_energy = torch.linalg.vector_norm(y, dim=dims).square()
    gap = torch.linalg.vector_norm(x.sub_(y) if overwrite_x else x - y, dim=dims).square()
    return concordance_from_energies(x_energy, y_energy, gap, eps), x_energy
