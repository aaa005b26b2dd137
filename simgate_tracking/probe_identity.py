"""A probe set's identity: tensors fixed at construction, and the SHA-256 manifest hash over them."""

from __future__ import annotations

import hashlib
from typing import Any

from torch import Tensor

from simgate_tracking.probe_file import FORMAT_VERSION, hash_bytes

FIELDS = ("context", "actions", "targets", "masks", "visible", "outcomes", "groups", "seeds")


class FixedFields:
    """Fixed tensors and their hash: :class:`~simgate_tracking.ProbeSet`'s identity, apart from what it holds.

    A subclass sets ``name``, the fields of :data:`FIELDS` (None where absent), ``_hash`` (None until known) and
    ``_built`` (each field's tensor and version counter at construction).
    """

    name: str
    _hash: str | None
    _built: dict[str, tuple[Tensor, int]]

    def _given_tensors(self) -> dict[str, Tensor]:
        return {name: getattr(self, name) for name in FIELDS if getattr(self, name) is not None}

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
            hash_bytes(digest, tensor.detach())
        return digest.hexdigest()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FixedFields) and self.manifest_hash == other.manifest_hash

    __hash__ = None  # type: ignore[assignment]
