"""Warnings raised while computing scores: on the process of global rank 0 only (see :mod:`simgate_tracking._utils`)."""

from __future__ import annotations

from simgate_tracking._utils import global_rank, rank_zero_warn

__all__ = ["global_rank", "rank_zero_warn"]
