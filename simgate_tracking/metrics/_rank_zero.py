"""Warnings raised while computing scores: on the process of global rank 0 only, with or without Lightning."""

from __future__ import annotations

import os
import warnings

import torch.distributed as dist
from lightning_utilities.core.rank_zero import rank_zero_only


def global_rank() -> int:
    """This process's global rank: torch.distributed's, else the one Lightning set, else ``$RANK``, else 0."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    rank = getattr(rank_zero_only, "rank", None)
    return int(rank) if rank is not None else int(os.environ.get("RANK", 0))


def rank_zero_warn(message: str) -> None:
    """Warn with a ``UserWarning`` on rank 0 only (Lightning's helper fails outside a Trainer: no rank set)."""
    if global_rank() == 0:
        warnings.warn(message, UserWarning, stacklevel=3)
