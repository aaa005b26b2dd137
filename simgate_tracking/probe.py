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

FORMAT_VERSION = 1
_FIELDS = ("context", "actions", "targets", "masks", "visible", "outcomes", "groups", "seeds")


@dataclass(frozen=True)
class ProbeBatch:
    """A batch of probe episodes, as the rollout loop sees it.

    Attributes:
        index: (B,) the episodes' positions in the probe set.
        context: (B, T0, C, H, W) reset observations.
        actions: (B, K+1, T, A), branch 0 the reference actions.
        targets: (B, K+1, T, C, H, W) real futures for every branch.
        masks: (B, T, M, H, W) bool object masks on the reference branch, or None.
        visible: (B, T, M) bool, or None.
        outcomes: (B,) or (B, K+1) real task outcomes, or None.
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


def _shape(x: Tensor) -> tuple[int, ...]:
    return tuple(x.shape)


def _require(ok: bool, field: str, expected: str, got: Any) -> None:
    if not ok:
        raise ValueError(f"ProbeSet: expected `{field}` {expected} but got {got}")


def _check_frames(x: Tensor, field: str, rank: int, layout: str) -> None:
    _require(isinstance(x, Tensor), field, f"to be a torch.Tensor of shape {layout}", type(x).__name__)
    _require(x.ndim == rank, field, f"to have shape {layout}", f"shape {_shape(x)}")
    _require(x.dtype == torch.uint8 or x.is_floating_point(), field, "to be float in [0, 1] or uint8", x.dtype)
    if x.is_floating_point():
        _require(bool(torch.isfinite(x).all()), field, "to hold only finite values", "NaN or Inf")
        lo, hi = float(x.min()) if x.numel() else 0.0, float(x.max()) if x.numel() else 0.0
        _require(lo >= 0.0 and hi <= 1.0, field, "to hold values in [0, 1]", f"values from {lo:.4g} to {hi:.4g}")


def _check_vector(x: Tensor | None, field: str, n: int, integer: bool) -> Tensor | None:
    if x is None:
        return None
    x = torch.as_tensor(x)
    _require(x.ndim == 1 and x.shape[0] == n, field, f"to have shape (N,) = ({n},)", f"shape {_shape(x)}")
    if integer:
        _require(not x.is_floating_point() and x.dtype != torch.bool, field, "to be an integer tensor", x.dtype)
        return x.long()
    return x


def _check_group_ids(groups: Tensor | None) -> Tensor | None:
    if groups is not None and groups.numel():
        lowest = int(groups.min())
        _require(lowest >= 0, "groups", "to hold policy ids >= 0", f"an id of {lowest}")
    return groups


class ProbeSet:
    """A fixed set of probe episodes, the same at every check so that scores compare across checks and runs.

    Per episode: context frames (the reset observation), the reference action sequence plus K >= 1
    counterfactual ones, the real future of every branch, optional object masks and visibility on the reference
    branch, optional real task outcome and policy id, and a seed. :attr:`manifest_hash` covers all of it.

    Args:
        context: (N, T0, C, H, W) float in [0, 1] or uint8.
        actions: (N, K+1, T, A), branch 0 the reference actions; any real or integer dtype.
        targets: (N, K+1, T, C, H, W) real futures, same frame dtype rules as ``context``.
        masks: (N, T, M, H, W) bool object masks on the reference branch.
        visible: (N, T, M) bool; default: a mask is visible where it is non-empty. Needs ``masks``.
        outcomes: (N,) real task outcome (success flag or return) of the reference branch, or (N, K+1) one per
            branch.
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
        _check_frames(context, "context", 5, "(N, T0, C, H, W)")
        n, _, c, h, w = context.shape
        _require(n > 0, "context", "to hold at least one episode", "N = 0")
        _require(
            min(context.shape[1:]) > 0, "context", "to hold T0 >= 1 frames of non-empty (C, H, W)", _shape(context)
        )
        _check_frames(targets, "targets", 6, "(N, K+1, T, C, H, W)")
        _require(
            targets.shape[0] == n and targets.shape[3:] == (c, h, w),
            "targets",
            f"to have shape (N, K+1, T, C, H, W) = ({n}, K+1, T, {c}, {h}, {w}) like `context`",
            f"shape {_shape(targets)}",
        )
        branches, horizon = targets.shape[1], targets.shape[2]
        _require(branches >= 2, "targets", "to hold K+1 >= 2 branches (reference + K >= 1 counterfactual)", branches)
        _require(horizon >= 2, "targets", "to hold T >= 2 future steps", f"T = {horizon}")
        _require(isinstance(actions, Tensor), "actions", "to be a torch.Tensor", type(actions).__name__)
        _require(
            actions.ndim == 4 and _shape(actions)[:3] == (n, branches, horizon),
            "actions",
            f"to have shape (N, K+1, T, A) = ({n}, {branches}, {horizon}, A)",
            f"shape {_shape(actions)}",
        )
        _require(actions.shape[3] > 0, "actions", "to hold actions of size A >= 1", f"shape {_shape(actions)}")
        _require(actions.dtype != torch.bool, "actions", "to be a real or integer tensor", actions.dtype)
        if actions.is_floating_point():
            _require(bool(torch.isfinite(actions).all()), "actions", "to hold only finite values", "NaN or Inf")
        self.context, self.actions, self.targets = context, actions, targets
        self.masks, self.visible = self._check_objects(masks, visible, n, horizon, h, w)
        self.outcomes = self._check_outcomes(outcomes, n, branches)
        self.groups = _check_group_ids(_check_vector(groups, "groups", n, integer=True))
        checked_seeds = _check_vector(seeds, "seeds", n, integer=True)
        self.seeds = torch.arange(n, dtype=torch.long) if checked_seeds is None else checked_seeds
        self.name = str(name)
        self._hash: str | None = None

    @staticmethod
    def _check_objects(
        masks: Tensor | None, visible: Tensor | None, n: int, horizon: int, h: int, w: int
    ) -> tuple[Tensor | None, Tensor | None]:
        if masks is None:
            _require(visible is None, "visible", "to come with `masks`", "visible without masks")
            return None, None
        _require(
            isinstance(masks, Tensor)
            and masks.ndim == 5
            and masks.shape[:2] == (n, horizon)
            and masks.shape[3:] == (h, w),
            "masks",
            f"to have shape (N, T, M, H, W) = ({n}, {horizon}, M, {h}, {w})",
            f"shape {_shape(masks) if isinstance(masks, Tensor) else type(masks).__name__}",
        )
        _require(masks.dtype == torch.bool, "masks", "to be a bool tensor", masks.dtype)
        _require(masks.shape[2] > 0, "masks", "to hold M >= 1 object slots", f"shape {_shape(masks)}")
        shown = masks.flatten(3).any(dim=3)
        if visible is None:
            visible = shown
        expected = (n, horizon, masks.shape[2])
        _require(
            isinstance(visible, Tensor) and _shape(visible) == expected,
            "visible",
            f"to have shape (N, T, M) = {expected}",
            f"shape {_shape(visible) if isinstance(visible, Tensor) else type(visible).__name__}",
        )
        _require(visible.dtype == torch.bool, "visible", "to be a bool tensor", visible.dtype)
        # object persistence needs something to score: one visible object with a non-empty mask
        _require(bool((visible & shown).any()), "masks", "to show an object at some visible step", "none")
        return masks, visible

    @staticmethod
    def _check_outcomes(outcomes: Tensor | None, n: int, branches: int) -> Tensor | None:
        if outcomes is None:
            return None
        outcomes = torch.as_tensor(outcomes)
        _require(
            _shape(outcomes) in ((n,), (n, branches)),
            "outcomes",
            f"to have shape (N,) = ({n},) or (N, K+1) = ({n}, {branches})",
            f"shape {_shape(outcomes)}",
        )
        if outcomes.is_floating_point():
            _require(bool(torch.isfinite(outcomes).all()), "outcomes", "to hold only finite values", "NaN or Inf")
        return outcomes

    # ------------------------------------------------------------------ shape
    def __len__(self) -> int:
        return int(self.context.shape[0])

    @property
    def num_branches(self) -> int:
        """K + 1: the reference branch plus the counterfactual ones."""
        return int(self.targets.shape[1])

    @property
    def horizon(self) -> int:
        """T: future steps per branch."""
        return int(self.targets.shape[2])

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
        """(N,) real outcome of the reference branch, whichever shape ``outcomes`` has."""
        if self.outcomes is None:
            return None
        return self.outcomes if self.outcomes.ndim == 1 else self.outcomes[:, 0]

    def __repr__(self) -> str:
        return (
            f"ProbeSet(name={self.name!r}, episodes={len(self)}, branches={self.num_branches}, "
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
        def pick(x: Tensor | None) -> Tensor | None:
            return None if x is None else x[index].to(device, non_blocking=True)

        picked = {name: pick(getattr(self, name)) for name in _FIELDS}
        return ProbeBatch(index=index.to(device), **picked)  # type: ignore[arg-type]

    def num_batches(self, batch_size: int, num_episodes: int | None = None) -> int:
        """How many batches :meth:`batches` yields for ``num_episodes`` episodes (default: all)."""
        n = len(self) if num_episodes is None else num_episodes
        return -(-n // batch_size)
