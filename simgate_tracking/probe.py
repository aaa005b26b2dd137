"""The reset manifest: a fixed, versioned, hashable set of probe episodes."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import Tensor

from simgate_tracking._probe_checks import checked_fields, num_takes, trackable
from simgate_tracking._utils import check_positive_int
from simgate_tracking.probe_batch import ProbeBatch, make_batch
from simgate_tracking.probe_file import (
    FORMAT_VERSION,
    compact,
    pages_dropped_after_reading,
    read_fields,
)
from simgate_tracking.probe_identity import FIELDS, FixedFields

__all__ = ["ProbeBatch", "ProbeSet"]


class ProbeSet(FixedFields):
    """A fixed set of probe episodes, the same at every check so that scores compare across checks and runs.

    Per episode: context frames (the reset observation), the reference action sequence plus K >= 1
    counterfactual ones, the real future of every branch, optional object masks and visibility on the reference
    branch, optional real task outcome and policy id, and a seed. :attr:`manifest_hash` covers all of it.

    In a stochastic world an episode holds R >= 1 real takes of every branch: the same reset and actions, the
    world's randomness drawn afresh for each take and shared by the branches of a take. ``targets`` then has a
    takes dimension after N, and masks, visibility and outcomes are per take. One take (R = 1) is stored without
    that dimension, so a probe set of one take is the same probe set, with the same hash, however it was given.

    Args:
        context: (N, T0, C, H, W) float in [0, 1] or uint8.
        actions: (N, K+1, T, A), branch 0 the reference actions; any real or integer dtype.
        targets: (N, K+1, T, C, H, W) real futures, same frame dtype rules as ``context``; (N, R, K+1, T, C, H, W)
            for R takes, or a list of R tensors (N, K+1, T, C, H, W).
        masks: (N, T, M, H, W) bool object masks on the reference branch; (N, R, T, M, H, W) with R takes.
        visible: (N, T, M) bool; default: a mask is visible where it is non-empty. Needs ``masks``. (N, R, T, M)
            with R takes.
        outcomes: (N,) real task outcome (success flag or return) of the reference branch, or (N, K+1) one per
            branch; (N, R) or (N, R, K+1) with R takes.
        groups: (N,) int policy id per episode (task validity in ranking mode).
        seeds: (N,) int seed per episode; default ``0 .. N-1``.
        name: A label for reports.

    A probe set is fixed: it keeps the given tensors without copying them, and refuses to hash, save or batch once
    one of them was changed in place (through the probe set or any view of it, as torch's version counters see). Build
    a new ProbeSet from changed tensors.

    Raises:
        ValueError: On any wrong rank, shape, dtype, length, non-finite or out-of-range frame, K = 0, a policy id
            outside 0..N-1 or a tensor on the meta device; the message names the field, what was expected and what was
            given.

    Example:
        >>> import torch
        >>> probe = ProbeSet(
        ...     context=torch.zeros(2, 1, 3, 8, 8),
        ...     actions=torch.zeros(2, 2, 4, 1),
        ...     targets=torch.zeros(2, 2, 4, 3, 8, 8),
        ... )
        >>> len(probe), probe.num_branches, probe.horizon
        (2, 2, 4)
    """

    context: Tensor
    actions: Tensor
    targets: Tensor
    masks: Tensor | None
    visible: Tensor | None
    outcomes: Tensor | None
    groups: Tensor | None
    seeds: Tensor

    def __init__(
        self,
        context: Tensor,
        actions: Tensor,
        targets: Tensor,
        masks: Tensor | None = None,
        visible: Tensor | None = None,
        outcomes: Tensor | None = None,
        groups: Tensor | None = None,
        seeds: Tensor | None = None,
        name: str = "probe",
    ) -> None:
        checked = checked_fields(context, actions, targets, masks, visible, outcomes, groups, seeds)
        for field in FIELDS:  # inference tensors keep no version counter: those few are copied
            setattr(self, field, trackable(checked[field]))
        self.name = str(name)
        self._hash: str | None = None
        self._built = {field: (x, x._version) for field, x in self._given_tensors().items()}

    # ------------------------------------------------------------------ shape
    def __len__(self) -> int:
        return int(self.context.shape[0])

    @property
    def num_branches(self) -> int:
        """K + 1: the reference branch plus the counterfactual ones."""
        return int(self.targets.shape[-5])

    @property
    def num_takes(self) -> int:
        """R: real takes of every branch (1 for a deterministic world)."""
        return num_takes(self.targets)

    @property
    def horizon(self) -> int:
        """T: future steps per branch."""
        return int(self.targets.shape[-4])

    @property
    def frame_shape(self) -> tuple[int, int, int]:
        """(C, H, W)."""
        c, h, w = self.context.shape[2:]
        return int(c), int(h), int(w)

    @property
    def action_dim(self) -> int:
        """A: the size of one action."""
        return int(self.actions.shape[3])

    @property
    def reference_outcomes(self) -> Tensor | None:
        """(N,) real outcome of the reference branch (of take 0), whichever shape ``outcomes`` has."""
        outcomes = self.take(0).outcomes
        if outcomes is None:
            return None
        return outcomes if outcomes.ndim == 1 else outcomes[:, 0]

    def take(self, r: int) -> ProbeSet:
        """Take ``r`` alone, as a probe set of one take (views, no copy): for displays and deterministic tools.

        Raises:
            ValueError: If ``r`` is not a take index in ``0 .. R-1``, or a tensor was changed after construction.
        """
        if not isinstance(r, int) or isinstance(r, bool) or not 0 <= r < self.num_takes:
            raise ValueError(f"Expected argument `r` to be a take index in 0..{self.num_takes - 1} but got {r!r}")
        self._check_unchanged()
        if self.num_takes == 1:
            return self

        def pick(x: Tensor | None) -> Tensor | None:
            return None if x is None else x[:, r]

        return ProbeSet(
            context=self.context,
            actions=self.actions,
            targets=self.targets[:, r],
            masks=pick(self.masks),
            visible=pick(self.visible),
            outcomes=pick(self.outcomes),
            groups=self.groups,
            seeds=self.seeds,
            name=self.name,
        )

    def __repr__(self) -> str:
        takes = f", takes={self.num_takes}" if self.num_takes > 1 else ""
        try:
            shown = self.manifest_hash[:12]
        except ValueError:
            shown = "changed after construction"
        return (
            f"ProbeSet(name={self.name!r}, episodes={len(self)}, branches={self.num_branches}{takes}, "
            f"horizon={self.horizon}, frame={self.frame_shape}, hash={shown})"
        )

    # --------------------------------------------------------------- storage
    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the probe set to ``path`` as tensors only (readable with ``torch.load(weights_only=True)``).

        Every field is written as its own contiguous block, as :meth:`load` requires.

        Raises:
            ValueError: If a tensor of the probe set was changed in place after construction.
        """
        payload: dict[str, Any] = {"format_version": FORMAT_VERSION, "name": self.name}
        payload.update(compact(self._tensors()))
        payload["manifest_hash"] = self.manifest_hash
        torch.save(payload, os.fspath(path))

    @classmethod
    def load(cls, path: str | os.PathLike[str], mmap: bool = False, verify: bool = True) -> ProbeSet:
        """Read a probe set written by :meth:`save`. Never executes code from the file (``weights_only=True``).

        Safe for files from elsewhere: every tensor must be stored contiguously and apart from the others (so a few
        bytes cannot stand for gigabytes), the file must hold its format version and manifest hash, and the content
        must match that hash. Memory peaks at about the file's size: the hash is computed without copying.

        With ``mmap=True`` the tensors view the file through a memory map (``torch.load(..., mmap=True)``) instead
        of being read into memory: a probe set larger than memory opens, every process that opens the file shares
        the system's page cache, and scoring a shard reads that shard's episodes only. The checks and the hash
        still read the whole file once each, a slice at a time, dropping each slice from the process once read, so
        memory stays about one slice (16 MiB) above what the process held.

        Args:
            path: The file.
            mmap: Map the file instead of reading it.
            verify: Check the content against the stored manifest hash (one streaming read of every byte).
                ``False`` trusts the stored hash, for a file already checked (by another rank, or before): the
                structure and value checks still run.

        Raises:
            ValueError: Naming the file, if it is not a probe set, comes from another format, is stored in a way
                :meth:`save` never writes, holds an invalid field, or fails its hash check; or if ``mmap`` or
                ``verify`` is not a bool.
        """
        where, fields, name, stored_hash = read_fields(path, FIELDS, mmap, verify)
        with pages_dropped_after_reading([x for x in fields.values() if isinstance(x, Tensor)] if mmap else []):
            try:
                probe = cls(**fields, name=name)
            except (ValueError, TypeError, RuntimeError, IndexError, KeyError) as err:
                raise ValueError(f"Probe set {where!r} is not a valid probe set: {err}") from err
            if not verify:
                probe._hash = stored_hash
            elif stored_hash != probe.manifest_hash:
                raise ValueError(f"Probe set {where!r} is corrupt: its manifest hash does not match its content")
        return probe

    # ------------------------------------------------------------ iteration
    def subset(self, indices: Sequence[int] | Tensor) -> ProbeSet:
        """A new probe set of the given episodes, in the given order.

        Policy ids stay as they are where they fit the subset (below its number of episodes); otherwise they are
        renumbered 0, 1, ... in their order, which keeps every policy apart and their ranking.
        """
        idx = torch.as_tensor(indices, dtype=torch.long)
        picked: dict[str, Any] = {name: tensor[idx] for name, tensor in self._tensors().items()}
        groups = picked.get("groups")
        if groups is not None and groups.numel() and int(groups.max()) >= len(idx):
            picked["groups"] = torch.unique(groups, return_inverse=True)[1]
        return ProbeSet(**picked, name=self.name)

    def shard(self, rank: int, world_size: int) -> Tensor:
        """The episode indices rank ``rank`` of ``world_size`` scores: every ``world_size``-th, from ``rank``.

        Raises:
            ValueError: If the rank is out of range or there are fewer episodes than ranks.
        """
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"Expected 0 <= rank < world_size but got rank={rank}, world_size={world_size}")
        if len(self) < world_size:
            raise ValueError(
                f"Expected at least one probe episode per process but got {len(self)} episode(s) for {world_size} "
                "processes: add episodes or use fewer devices"
            )
        return torch.arange(rank, len(self), world_size)

    def batches(
        self, batch_size: int, indices: Tensor | None = None, device: torch.device | str | None = None
    ) -> Iterator[ProbeBatch]:
        """Consecutive batches of the given episodes (default: all), moved to ``device``.

        Raises:
            ValueError: If ``batch_size`` is not a positive int.
        """
        check_positive_int(batch_size, "batch_size")
        order = torch.arange(len(self)) if indices is None else torch.as_tensor(indices, dtype=torch.long)
        for chunk in order.split(batch_size):
            yield self._batch(chunk, device)

    def _batch(self, index: Tensor, device: torch.device | str | None) -> ProbeBatch:
        self._check_unchanged()
        return make_batch({name: getattr(self, name) for name in FIELDS}, index, device)

    def num_batches(self, batch_size: int, num_episodes: int | None = None) -> int:
        """How many batches :meth:`batches` yields for ``num_episodes`` episodes (default: all)."""
        n = len(self) if num_episodes is None else num_episodes
        return -(-n // batch_size)
