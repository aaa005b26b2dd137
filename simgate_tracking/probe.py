"""The reset manifest: a fixed, versioned, hashable set of probe episodes."""

from __future__ import annotations

import hashlib
import os
import pickle
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from simgate_tracking._probe_checks import (
    check_episodes,
    check_group_ids,
    check_objects,
    check_outcomes,
    check_vector,
    num_takes,
    stack_takes,
)

FORMAT_VERSION = 1
_FIELDS = ("context", "actions", "targets", "masks", "visible", "outcomes", "groups", "seeds")
_SCORED_ONLY = ("targets", "masks", "visible")  # fields the world model never sees


@dataclass(frozen=True)
class ProbeBatch:
    """A batch of probe episodes, as the rollout loop sees it.

    Attributes:
        index: (B,) the episodes' positions in the probe set.
        context: (B, T0, C, H, W) reset observations.
        actions: (B, K+1, T, A), branch 0 the reference actions.
        targets: (B, K+1, T, C, H, W) real futures for every branch; (B, R, K+1, T, C, H, W) with R > 1 takes.
        masks: (B, [R,] T, M, H, W) bool object masks on the reference branch, or None.
        visible: (B, [R,] T, M) bool, or None.
        outcomes: (B, [R]) or (B, [R,] K+1) real task outcomes, or None.
        groups: (B,) policy ids, or None.
        seeds: (B,) int64 seeds.
    """

    index: Tensor
    context: Tensor
    actions: Tensor
    targets: Tensor
    masks: Tensor | None
    visible: Tensor | None
    outcomes: Tensor | None
    groups: Tensor | None
    seeds: Tensor

    def __len__(self) -> int:
        return int(self.index.shape[0])


class ProbeSet:
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

    Raises:
        ValueError: On any wrong rank, shape, dtype, length, non-finite or out-of-range frame, or K = 0; the
            message names the field, what was expected and what was given.

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
        targets, masks, visible, outcomes = _one_take_squeezed(
            stack_takes(targets, "targets", "(N, K+1, T, C, H, W)"),
            stack_takes(masks, "masks", "(N, T, M, H, W)"),
            stack_takes(visible, "visible", "(N, T, M)"),
            stack_takes(outcomes, "outcomes", "(N,) or (N, K+1)"),
        )
        n, branches, horizon, h, w = check_episodes(context, actions, targets)
        takes = num_takes(targets)
        self.context, self.actions, self.targets = context, actions, targets
        self.masks, self.visible = check_objects(masks, visible, n, horizon, h, w, takes)
        self.outcomes = check_outcomes(outcomes, n, branches, takes)
        self.groups = check_group_ids(check_vector(groups, "groups", n, integer=True))
        checked_seeds = check_vector(seeds, "seeds", n, integer=True)
        self.seeds = torch.arange(n, dtype=torch.long) if checked_seeds is None else checked_seeds
        self.name = str(name)
        self._hash: str | None = None

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
            ValueError: If ``r`` is not a take index in ``0 .. R-1``.
        """
        if not isinstance(r, int) or isinstance(r, bool) or not 0 <= r < self.num_takes:
            raise ValueError(f"Expected argument `r` to be a take index in 0..{self.num_takes - 1} but got {r!r}")
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
        return (
            f"ProbeSet(name={self.name!r}, episodes={len(self)}, branches={self.num_branches}{takes}, "
            f"horizon={self.horizon}, frame={self.frame_shape}, hash={self.manifest_hash[:12]})"
        )

    # ---------------------------------------------------------------- identity
    def _tensors(self) -> dict[str, Tensor]:
        return {name: getattr(self, name) for name in _FIELDS if getattr(self, name) is not None}

    @property
    def manifest_hash(self) -> str:
        """SHA-256 over every field's name, dtype, shape and bytes: equal iff the probe episodes are equal."""
        if self._hash is None:
            digest = hashlib.sha256(f"simgate-probe-v{FORMAT_VERSION}".encode())
            for name, tensor in self._tensors().items():
                flat = tensor.detach().cpu().contiguous()
                digest.update(f"|{name}|{flat.dtype}|{tuple(flat.shape)}|".encode())
                # reinterpret as bytes: numpy has no bfloat16, and bytes are what must match
                digest.update(flat.view(-1).view(torch.uint8).numpy().tobytes())
            self._hash = digest.hexdigest()
        return self._hash

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ProbeSet) and self.manifest_hash == other.manifest_hash

    __hash__ = None  # type: ignore[assignment]

    # --------------------------------------------------------------- storage
    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the probe set to ``path`` as tensors only (readable with ``torch.load(weights_only=True)``)."""
        payload: dict[str, Any] = {"format_version": FORMAT_VERSION, "name": self.name}
        payload.update({name: tensor.detach().cpu().contiguous() for name, tensor in self._tensors().items()})
        payload["manifest_hash"] = self.manifest_hash
        torch.save(payload, os.fspath(path))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ProbeSet:
        """Read a probe set written by :meth:`save`. Never executes code from the file (``weights_only=True``).

        Raises:
            ValueError: If the file is not a probe set, comes from a newer format, or fails its hash check.
        """
        try:
            payload = torch.load(os.fspath(path), map_location="cpu", weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, EOFError) as err:
            raise ValueError(
                f"Expected {os.fspath(path)!r} to be a ProbeSet written by ProbeSet.save (tensors only) but it holds "
                "something else; nothing was loaded, as loading a probe set never runs code from the file"
            ) from err
        if not isinstance(payload, dict) or "context" not in payload:
            raise ValueError(f"Expected {os.fspath(path)!r} to be a ProbeSet written by ProbeSet.save")
        version = payload.get("format_version")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise ValueError(f"Expected probe format version <= {FORMAT_VERSION} but got {version!r}")
        fields: dict[str, Any] = {name: payload.get(name) for name in _FIELDS}
        probe = cls(**fields, name=str(payload.get("name", "probe")))
        stored = payload.get("manifest_hash")
        if stored is not None and stored != probe.manifest_hash:
            raise ValueError(f"Probe set {os.fspath(path)!r} is corrupt: its manifest hash does not match its content")
        return probe

    # ------------------------------------------------------------ iteration
    def subset(self, indices: Sequence[int] | Tensor) -> ProbeSet:
        """A new probe set of the given episodes, in the given order."""
        idx = torch.as_tensor(indices, dtype=torch.long)
        picked: dict[str, Any] = {name: tensor[idx] for name, tensor in self._tensors().items()}
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
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"Expected argument `batch_size` to be a positive int but got {batch_size!r}")
        order = torch.arange(len(self)) if indices is None else torch.as_tensor(indices, dtype=torch.long)
        for chunk in order.split(batch_size):
            yield self._batch(chunk, device)

    def _batch(self, index: Tensor, device: torch.device | str | None) -> ProbeBatch:
        span = _evenly_spaced(index)

        def pick(name: str, x: Tensor | None) -> Tensor | None:
            if x is None:
                return None
            # what only the scorecard reads, already on the device, is a view (no copy) for evenly spaced episodes
            if span is not None and name in _SCORED_ONLY and torch.device(device or x.device) == x.device:
                return x[span]
            return x[index].to(device, non_blocking=True)

        picked = {name: pick(name, getattr(self, name)) for name in _FIELDS}
        return ProbeBatch(index=index.to(device), **picked)  # type: ignore[arg-type]

    def num_batches(self, batch_size: int, num_episodes: int | None = None) -> int:
        """How many batches :meth:`batches` yields for ``num_episodes`` episodes (default: all)."""
        n = len(self) if num_episodes is None else num_episodes
        return -(-n // batch_size)


def _one_take_squeezed(targets: Any, masks: Any, visible: Any, outcomes: Any) -> tuple[Any, Any, Any, Any]:
    """Fields given with a takes dimension of size 1, stored without it: one take is one form, one hash."""
    if not (isinstance(targets, Tensor) and targets.ndim == 7 and targets.shape[1] == 1):
        return targets, masks, visible, outcomes

    def squeeze(x: Any, rank: int) -> Any:
        return x.squeeze(1) if isinstance(x, Tensor) and x.ndim == rank and x.shape[1] == 1 else x

    # per-take outcomes are (N, 1) or (N, 1, K+1); (N, K+1) has K+1 >= 2 and is left alone
    outcome_rank = outcomes.ndim if isinstance(outcomes, Tensor) and outcomes.ndim in (2, 3) else -1
    return targets.squeeze(1), squeeze(masks, 6), squeeze(visible, 4), squeeze(outcomes, outcome_rank)


def _evenly_spaced(index: Tensor) -> slice | None:
    """``index`` as a slice when it runs up in equal steps (every episode in order, a DDP shard), else None."""
    values = index.tolist()
    step = values[1] - values[0] if len(values) > 1 else 1
    if not values or step < 1 or values != list(range(values[0], values[-1] + 1, step)):
        return None
    return slice(values[0], values[-1] + 1, step)
