r"""Scoring against reality's takes: every axis asks its question of reality's distribution of futures.

In a stochastic world one real future is one sample, and a perfect model's future is another. With R >= 2 real
takes of every episode (same reset and actions, the world's randomness drawn afresh, shared by the branches of a
take) each frame axis takes, per episode,

- the model's agreement with reality, ``m``: the axis's own comparison of the model's future with every take,
  averaged over the takes;
- each take's agreement with the other takes, ``a_r`` (leave one take out), whose mean over takes is reality's
  spread ``s``;

and reports the model relative to reality's spread over the whole probe set, ``clamp(sum m / sum s, 0, 1)``: 1 when
the model agrees with reality as well as reality's own takes agree with each other (Physics-IQ normalises by the
variation between two real takes in the same spirit). Reality's own score is the same ratio for each take held out,
``clamp(sum a_r / sum s)``, averaged over takes. A held-out take is exchangeable with the probe takes, so its
expected agreement equals the spread: it scores about 1, while a defect that lowers the agreement lowers the score
in the same proportion as with one take. Sums over episodes, not a mean of per-episode ratios: an episode where
reality itself agrees little would make its ratio noisy. With one take (s = 1) the score is the mean of ``m``, the
one-take definition; with takes that all agree (a deterministic world) every score equals it too.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TypeVar, cast

import torch
from torch import Tensor

from simgate_tracking.functional._checks import as_frames, check_rank, compute_dtype
from simgate_tracking.functional._precision import full_precision_matmul

EPS = 1e-8
CPU_GRAM_VALUES = 2**18  # values of every field written at once on CPU: the block stays in cache
_Field = TypeVar("_Field", Tensor, Tensor | None)


def relative_to_spread(model: Tensor, takes: Tensor) -> tuple[Tensor, Tensor]:
    """The model's agreement relative to reality's spread, and reality's own score on the same scale.

    Args:
        model: (..., ) the model's agreement with reality's takes (summed over episodes).
        takes: (..., R) each take's agreement with the other takes (summed over episodes); their mean is the spread.

    Returns:
        ``score`` (...,) in [0, 1] and ``baseline`` (...,): the mean over held-out takes of the same ratio.

    Example:
        >>> import torch
        >>> score, baseline = relative_to_spread(torch.tensor(3.0), torch.tensor([5.0, 6.0]))  # sums over episodes
        >>> round(float(score), 4), round(float(baseline), 4)
        (0.5455, 0.9545)
    """
    spread = takes.mean(dim=-1)
    score = ((model + EPS) / (spread + EPS)).clamp(0.0, 1.0)
    baseline = ((takes + EPS) / (spread.unsqueeze(-1) + EPS)).clamp(0.0, 1.0).mean(dim=-1)
    return torch.nan_to_num(score, nan=0.0), baseline


def fields_gram(
    write: Callable[[Tensor, slice], None], shape: tuple[int, ...], length: int, like: Tensor, depth: int = 1
) -> Tensor:
    """(..., rows, rows) float64 Gram matrices of fields written a block of columns at a time.

    Args:
        write: ``write(out, columns)`` fills ``out``, (*shape, depth, width), with the fields at ``columns``.
        shape: (..., rows): the fields, rows last.
        length: Columns in all.
        like: Where and in which dtype to write the fields.
        depth: Values per column of every field (steps, say).

    On CPU a block holds about 2**18 values, so it stays in cache and no field the size of the rollouts is ever
    allocated (fresh memory that size is page-faulted in at every call); elsewhere one block holds every column.
    Each block's products are summed in float64.
    """
    count, rows = math.prod(shape) * depth, shape[-1]
    width = length if like.device.type != "cpu" else max(1, min(length, CPU_GRAM_VALUES // count))
    buffer = like.new_empty(count * width)
    gram = torch.zeros(*shape, rows, dtype=torch.float64, device=like.device)
    for start in range(0, length, width):
        columns = min(width, length - start)
        out = buffer[: count * columns].view(*shape, depth, columns)
        write(out, slice(start, start + columns))
        flat = out.view(-1, rows, depth * columns)
        with full_precision_matmul():
            gram.view(-1, rows, rows).add_(torch.bmm(flat, flat.transpose(1, 2)))
    return gram


def concordance_with_takes(gram: Tensor, dtype: torch.dtype) -> tuple[Tensor, Tensor, Tensor]:
    r"""Concordance of the model's field with each take's, and of each take's with the others', from a Gram matrix.

    Args:
        gram: (B, 1 + R, 1 + R) float64 inner products of the model's change field, then reality's in every take
            (see :func:`fields_gram`).
        dtype: The dtype of what comes back.

    Returns:
        ``model_agreement`` (B,): mean over takes of :math:`\mathrm{conc}(x, y_r)`; ``take_agreement`` (B, R): for
        each take, the mean over the other takes of :math:`\mathrm{conc}(y_a, y_b)`; ``model_energy`` (B,):
        :math:`\|x\|^2`, non-finite exactly where the model's field is.
    """
    energy = gram.diagonal(dim1=1, dim2=2)
    conc = ((2 * gram + EPS) / (energy.unsqueeze(2) + energy.unsqueeze(1) + EPS)).clamp(0.0, 1.0)
    conc = torch.nan_to_num(conc, nan=0.0)
    r = gram.shape[1] - 1
    model_agreement = conc[:, 0, 1:].mean(dim=1)
    others = ~torch.eye(r, dtype=torch.bool, device=conc.device)
    take_agreement = (conc[:, 1:, 1:] * others).sum(dim=2) / max(r - 1, 1)
    return model_agreement.to(dtype), take_agreement.to(dtype), energy[:, 0].to(dtype)


def agreement_with_takes(gram: Tensor, dtype: torch.dtype) -> tuple[Tensor, Tensor, Tensor]:
    """Per-episode agreement of a model field with R take fields, finite flag, and each take's with the others'.

    Args:
        gram: (B, 1 + R, 1 + R) float64 Gram matrices of the model's field, then reality's in every take (R >= 2).
        dtype: The dtype of what comes back.

    Returns:
        ``model`` (B,), 0 where the model's field is not finite; ``finite`` (B,); ``takes`` (B, R).
    """
    model_agreement, take_agreement, energy = concordance_with_takes(gram, dtype)
    finite = torch.isfinite(energy)
    return torch.where(finite, model_agreement, torch.zeros_like(model_agreement)), finite, take_agreement


def score_from_agreements(model: Tensor, takes: Tensor, counted: Tensor | None = None) -> Tensor:
    """The axis score of a batch: summed agreements relative to the summed spread (see the module docstring)."""
    if counted is not None:
        model, takes = model[counted], takes[counted]
    return relative_to_spread(model.double().sum(), takes.double().sum(dim=0))[0].float()


def frames_with_takes(
    preds: Tensor, target: Tensor, rank: int, layout: str, names: tuple[str, str] = ("preds", "target")
) -> tuple[Tensor, Tensor]:
    """Check a model rollout of ``layout`` against real takes of (B, R, ...) and return both as float frames.

    Raises:
        ValueError: If ``target`` is not ``preds``' shape with a takes dimension after B.
    """
    check_rank(preds, rank, names[0], layout)
    takes_layout = layout.replace("(B, ", "(B, R, ")
    check_rank(target, rank + 1, names[1], takes_layout)
    if target.shape[0] != preds.shape[0] or target.shape[2:] != preds.shape[1:]:
        raise ValueError(
            f"Expected `{names[1]}` to have shape {takes_layout} = ({preds.shape[0]}, R, "
            f"{', '.join(map(str, preds.shape[1:]))}) like `{names[0]}` but got {tuple(target.shape)}"
        )
    p = compute_dtype(as_frames(preds, names[0]))
    y = compute_dtype(as_frames(target, names[1]))
    dtype = torch.promote_types(p.dtype, y.dtype)
    return p.to(dtype), y.to(dtype)


def has_takes(preds: Tensor, target: Tensor) -> bool:
    """True where ``target`` holds real takes: one dimension more than ``preds``, after the batch."""
    return isinstance(preds, Tensor) and isinstance(target, Tensor) and target.ndim == preds.ndim + 1


def one_take(preds: Tensor, x: _Field, rank: int | None = None) -> _Field:
    """``x`` without its takes dimension when it holds a single take, so one take is scored by the one-take path.

    ``x`` has real takes when it has one dimension more than ``preds`` (or ``rank`` dimensions, for fields that
    are not frames: visibility).
    """
    if not isinstance(x, Tensor) or not isinstance(preds, Tensor):
        return x
    with_takes = preds.ndim + 1 if rank is None else rank
    return cast(_Field, x[:, 0]) if x.ndim == with_takes and x.shape[1] == 1 else x
