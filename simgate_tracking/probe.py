"""The reset manifest: a fixed, versioned, hashable set of probe episodes."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from simgate_tracking._probe_checks import (
    check_episodes,
    check_group_ids,
    check_has_data,
    check_objects,
    check_outcomes,
    check_storage,
    check_vector,
    num_takes,
    stack_takes,
)

FORMAT_VERSION = 1
_FIELDS = ("context", "actions", "targets", "masks", "visible", "outcomes", "groups", "seeds")
_SCORED_ONLY = ("targets", "masks", "visible")  # fields the world model never sees
_HASH_CHUNK_BYTES = 16 * 2**20  # hashing reads a tensor this much at a time: no copy of a whole field


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
        given = {"context": context, "actions": actions, "targets": targets, "masks": masks, "visible": visible}
        check_has_data({**given, "outcomes": outcomes, "groups": groups, "seeds": seeds})
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
        self.groups = check_group_ids(check_vector(groups, "groups", n, integer=True), n)
        checked_seeds = check_vector(seeds, "seeds", n, integer=True)
        self.seeds = torch.arange(n, dtype=torch.long) if checked_seeds is None else checked_seeds
        self.name = str(name)
        self._hash: str | None = None
        for field in _FIELDS:  # inference tensors keep no version counter: those few are copied
            setattr(self, field, _trackable(getattr(self, field)))
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

    # ---------------------------------------------------------------- identity
    def _given_tensors(self) -> dict[str, Tensor]:
        return {name: getattr(self, name) for name in _FIELDS if getattr(self, name) is not None}

    def _tensors(self) -> dict[str, Tensor]:
        self._check_unchanged()
        return self._given_tensors()

    def _check_unchanged(self) -> None:
        """Refuse a probe set whose tensors changed in place since construction: its hash would no longer hold.

        A version counter moves for any in-place write to the storage a tensor views, also outside the probe set's
        part of a larger buffer; once the hash is known, such a write is told apart by hashing again.
        """
        moved = [
            name for name, (x, version) in self._built.items() if getattr(self, name) is not x or x._version != version
        ]
        if not moved:
            return
        replaced = [name for name in moved if getattr(self, name) is not self._built[name][0]]
        if not replaced and self._hash is not None and self._digest() == self._hash:
            self._built = {field: (x, x._version) for field, x in self._given_tensors().items()}
            return
        raise ValueError(
            f"ProbeSet {self.name!r}: expected `{moved[0]}` unchanged since the probe set was built but it was changed "
            "in place or replaced; a probe set is fixed so that scores compare across checks: build a new ProbeSet "
            "from the changed tensors"
        )

    def __getstate__(self) -> dict[str, Any]:
        self._check_unchanged()
        return {key: value for key, value in self.__dict__.items() if key != "_built"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        # a copy in another process (DDP spawn, deepcopy) starts its own version counters: record them afresh
        self.__dict__.update(state)
        self._built = {field: (x, x._version) for field, x in self._given_tensors().items()}

    @property
    def manifest_hash(self) -> str:
        """SHA-256 over every field's name, dtype, shape and bytes: equal iff the probe episodes are equal.

        Raises:
            ValueError: If a tensor of the probe set was changed in place after construction.
        """
        self._check_unchanged()
        if self._hash is None:
            self._hash = self._digest()
        return self._hash

    def _digest(self) -> str:
        digest = hashlib.sha256(f"simgate-probe-v{FORMAT_VERSION}".encode())
        for name, tensor in self._given_tensors().items():
            digest.update(f"|{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
            _hash_bytes(digest, tensor.detach())
        return digest.hexdigest()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ProbeSet) and self.manifest_hash == other.manifest_hash

    __hash__ = None  # type: ignore[assignment]

    # --------------------------------------------------------------- storage
    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the probe set to ``path`` as tensors only (readable with ``torch.load(weights_only=True)``).

        Every field is written as its own contiguous block, as :meth:`load` requires.

        Raises:
            ValueError: If a tensor of the probe set was changed in place after construction.
        """
        payload: dict[str, Any] = {"format_version": FORMAT_VERSION, "name": self.name}
        payload.update(_compact(self._tensors()))
        payload["manifest_hash"] = self.manifest_hash
        torch.save(payload, os.fspath(path))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ProbeSet:
        """Read a probe set written by :meth:`save`. Never executes code from the file (``weights_only=True``).

        Safe for files from elsewhere: every tensor must be stored contiguously and apart from the others (so a few
        bytes cannot stand for gigabytes), the file must hold its format version and manifest hash, and the content
        must match that hash. Memory peaks at about the file's size: the hash is computed without copying.

        Raises:
            ValueError: Naming the file, if it is not a probe set, comes from another format, is stored in a way
                :meth:`save` never writes, holds an invalid field, or fails its hash check.
        """
        where = os.fspath(path)
        payload = _read_payload(where)
        fields: dict[str, Any] = {name: payload.get(name) for name in _FIELDS}
        check_storage({name: x for name, x in fields.items() if isinstance(x, Tensor)}, where)
        name = payload.get("name", "probe")
        if not isinstance(name, str):
            raise ValueError(f"Probe set {where!r}: expected `name` to be a str but got {type(name).__name__}")
        try:
            probe = cls(**fields, name=name)
        except (ValueError, TypeError, RuntimeError, IndexError, KeyError) as err:
            raise ValueError(f"Probe set {where!r} is not a valid probe set: {err}") from err
        if payload["manifest_hash"] != probe.manifest_hash:
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
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"Expected argument `batch_size` to be a positive int but got {batch_size!r}")
        order = torch.arange(len(self)) if indices is None else torch.as_tensor(indices, dtype=torch.long)
        for chunk in order.split(batch_size):
            yield self._batch(chunk, device)

    def _batch(self, index: Tensor, device: torch.device | str | None) -> ProbeBatch:
        self._check_unchanged()
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


def _read_payload(where: str) -> dict[str, Any]:
    """The dict a probe set file holds, its format version and stored hash checked; never runs code from it."""
    with open(where, "rb"):
        pass  # no such file, a directory, no permission: the system's own error names the path
    try:
        payload = torch.load(where, map_location="cpu", weights_only=True)
    except Exception as err:  # any byte string: torch and its unpickler raise many kinds, all meaning "not ours"
        raise ValueError(
            f"Expected {where!r} to be a ProbeSet written by ProbeSet.save (tensors only) but it holds something "
            f"else ({type(err).__name__}); nothing was loaded, as loading a probe set never runs code from the file"
        ) from err
    if not isinstance(payload, dict) or "context" not in payload:
        raise ValueError(f"Expected {where!r} to be a ProbeSet written by ProbeSet.save")
    version = payload.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= FORMAT_VERSION:
        raise ValueError(
            f"Expected probe format version <= {FORMAT_VERSION} but got {version!r} in {where!r}; a probe set file "
            f"holds an int version from 1 to {FORMAT_VERSION}"
        )
    if not isinstance(payload.get("manifest_hash"), str):
        raise ValueError(
            f"Expected {where!r} to hold its manifest hash (a str, as ProbeSet.save writes it) but got "
            f"{type(payload.get('manifest_hash')).__name__}: a probe set without it cannot be checked"
        )
    return payload


def _hash_bytes(digest: Any, tensor: Tensor) -> None:
    """Feed a tensor's bytes (C order) to ``digest`` a slice of episodes at a time: no whole copy of any field."""
    if tensor.numel() == 0:
        return
    rows = max(1, _HASH_CHUNK_BYTES // max(1, tensor[0].numel() * tensor.element_size()))
    for part in tensor.split(rows):
        flat = part.cpu().contiguous()  # the same memory for a contiguous CPU tensor
        # reinterpret as bytes: numpy has no bfloat16, and bytes are what must match
        digest.update(flat.view(-1).view(torch.uint8).numpy())


def _compact(tensors: dict[str, Tensor]) -> dict[str, Tensor]:
    """CPU tensors that each own a storage of exactly their bytes: what :meth:`ProbeSet.save` writes."""
    out: dict[str, Tensor] = {}
    seen: set[int] = set()
    for name, tensor in tensors.items():
        x = tensor.detach().cpu().contiguous()
        storage = x.untyped_storage()
        # a slice of a larger buffer would write all of it; a buffer two fields share would be read as overlap
        if storage.nbytes() != x.numel() * x.element_size() or storage.data_ptr() in seen:
            x = x.clone()
        seen.add(x.untyped_storage().data_ptr())
        out[name] = x
    return out


def _trackable(x: Any) -> Any:
    """``x``, or a copy where it is an inference tensor (those keep no version counter to detect changes by)."""
    if isinstance(x, Tensor) and x.is_inference():
        with torch.inference_mode(False):
            return x.clone()
    return x


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
