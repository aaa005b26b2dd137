"""Input checks shared by every functional and metric: one place that says what was expected and what was given."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def check_rank(x: Tensor, rank: int, name: str, layout: str) -> None:
    """Raise ``ValueError`` unless ``x`` is a tensor of the given rank.

    Args:
        x: The tensor to check.
        rank: The expected number of dimensions.
        name: The argument's name, as the user wrote it.
        layout: The expected layout in words, for example ``"(B, T, C, H, W)"``.
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"Expected `{name}` to be a torch.Tensor of shape {layout} but got {type(x).__name__}")
    if x.ndim != rank:
        raise ValueError(f"Expected `{name}` to have shape {layout} ({rank} dims) but got shape {tuple(x.shape)}")


def check_same_shape(a: Tensor, b: Tensor, name_a: str, name_b: str) -> None:
    """Raise ``ValueError`` unless ``a`` and ``b`` have the same shape."""
    if a.shape != b.shape:
        raise ValueError(
            f"Expected `{name_a}` and `{name_b}` to have the same shape but got {tuple(a.shape)} and {tuple(b.shape)}"
        )


def check_dims(x: Tensor, dims: Sequence[int | None], name: str, layout: str) -> None:
    """Raise ``ValueError`` unless every known dimension of ``x`` matches ``dims`` (``None`` matches anything)."""
    check_rank(x, len(dims), name, layout)
    for got, want in zip(x.shape, dims, strict=True):
        if want is not None and got != want:
            expected = "(" + ", ".join("?" if d is None else str(d) for d in dims) + ")"
            raise ValueError(f"Expected `{name}` to have shape {layout} = {expected} but got {tuple(x.shape)}")


def as_frames(x: Tensor, name: str) -> Tensor:
    """Return frames as a floating tensor in [0, 1]: uint8 is scaled by 1/255, floats pass through unchanged.

    Raises:
        TypeError: If ``x`` is neither uint8 nor floating point.
    """
    if x.dtype == torch.uint8:
        return x.float().div_(255.0)
    if not x.is_floating_point():
        raise TypeError(f"Expected `{name}` to be a float tensor in [0, 1] or uint8 but got dtype {x.dtype}")
    return x


def compute_dtype(x: Tensor) -> Tensor:
    """Upcast half precision to float32: sums of squares over whole episodes overflow or lose precision in 16 bits."""
    if x.dtype in (torch.float16, torch.bfloat16):
        return x.float()
    return x


def frame_pair(preds: Tensor, target: Tensor, rank: int, layout: str, names: tuple[str, str]) -> tuple[Tensor, Tensor]:
    """Check a (prediction, reality) pair of frame tensors and return both as float frames of the same dtype."""
    check_rank(preds, rank, names[0], layout)
    check_rank(target, rank, names[1], layout)
    check_same_shape(preds, target, *names)
    p = compute_dtype(as_frames(preds, names[0]))
    y = compute_dtype(as_frames(target, names[1]))
    if p.dtype != y.dtype:
        p, y = p.to(torch.promote_types(p.dtype, y.dtype)), y.to(torch.promote_types(p.dtype, y.dtype))
    return p, y


class NothingToScoreError(ValueError, RuntimeError):
    """An axis saw no episode it can score: no update yet, no visible object, or fewer than 2 policies to rank."""
