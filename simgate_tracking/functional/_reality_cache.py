"""Reality's own scores, kept per episode: a fixed probe set is scored against the same real takes at every check.

What reality scores as a model of itself (each take held out against the others) does not depend on the model, so
a gate that scores the same probe set at every validation would compute it again and again. The cache keeps it per
episode under a digest of everything it depends on: the takes' frames, masks and visibility, and the settings of
the comparison. Masks and visibility enter the digest bit for bit. Frames enter through two fixed random
projections of every row of pixels (read at memory speed, where hashing every byte would cost several times the
scoring): a changed probe episode is scored afresh, while a change too small to move a float32 sum of its row
(about 1e-4 of one pixel's range) could go unseen, and moves reality's score by as little.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from functools import cache
from typing import Generic, TypeVar

import numpy as np
import torch
from torch import Tensor

MAX_EPISODES = 1 << 14
MAX_BYTES = 256 * 2**20
_Kept = TypeVar("_Kept")


@cache
def _projections(length: int, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """Two fixed random vectors of ``length`` positive weights, each to sum a row of pixels its own way."""
    g = torch.Generator().manual_seed(length)
    weights = torch.rand(2, length, generator=g, dtype=torch.float64).add_(0.5).to(dtype)
    return weights[0], weights[1]


class RealityCache(Generic[_Kept]):
    """A bounded store of what reality gives each episode, least recently used first out.

    Every episode keeps its small part (scores, visibility: a few kB); a larger part (reality's side of a
    comparison) is kept while the episodes' large parts fit in ``max_bytes``, first come first kept, so a probe set
    scored in the same order at every check keeps the same episodes' parts instead of pushing each other out.

    Args:
        max_episodes: How many episodes it keeps.
        max_bytes: How many bytes the episodes' larger parts may take together.
    """

    def __init__(self, max_episodes: int = MAX_EPISODES, max_bytes: int = MAX_BYTES) -> None:
        self.max_episodes, self.max_bytes = max_episodes, max_bytes
        self._kept: OrderedDict[bytes, tuple[_Kept, int]] = OrderedDict()
        self.nbytes = 0

    def __len__(self) -> int:
        return len(self._kept)

    @staticmethod
    def digest(
        frames: Tensor, settings: tuple[object, ...], masks: Tensor | None = None, visible: Tensor | None = None
    ) -> bytes:
        """A digest of one episode's real takes, read on the host.

        ``frames`` (R, ..., H, W) float, the ``settings`` of the comparison (their repr), and ``masks`` and
        ``visible`` bool where the comparison reads them.
        """
        first, second = _projections(frames.shape[-1] * frames.shape[-2], frames.dtype)
        hasher = hashlib.blake2b(digest_size=20)
        shapes = [tuple(frames.shape), str(frames.dtype)] + [
            None if x is None else tuple(x.shape) for x in (masks, visible)
        ]
        hasher.update(repr((shapes, settings)).encode())
        for take in frames:  # a take's rows are one view; the takes of a branch are not
            rows = take.reshape(-1, first.shape[0])
            hasher.update(torch.stack([rows @ first, rows @ second]).numpy().tobytes())
        for bits in (masks, visible):
            if bits is not None:
                hasher.update(np.packbits(bits.numpy()).tobytes())
        return hasher.digest()

    def get(self, key: bytes) -> _Kept | None:
        """What is kept under ``key``, or None."""
        found = self._kept.get(key)
        if found is None:
            return None
        self._kept.move_to_end(key)
        return found[0]

    def fits(self, nbytes: int) -> bool:
        """Whether a larger part of ``nbytes`` fits in the budget."""
        return self.nbytes + nbytes <= self.max_bytes

    def put(self, key: bytes, kept: _Kept, nbytes: int = 0) -> None:
        """Keep ``kept`` (tensors of its own) under ``key``, ``nbytes`` of them counted against the budget.

        The least recently used episode goes when there are too many.
        """
        self._drop(key)
        self._kept[key] = (kept, nbytes)
        self.nbytes += nbytes
        while len(self._kept) > self.max_episodes:
            self._drop(next(iter(self._kept)))

    def _drop(self, key: bytes) -> None:
        found = self._kept.pop(key, None)
        if found is not None:
            self.nbytes -= found[1]

    def clear(self) -> None:
        """Forget every episode."""
        self._kept.clear()
        self.nbytes = 0
