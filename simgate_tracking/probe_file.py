"""The probe set file: tensors only, read without running code, checked against its version and hash.

A file opened memory-mapped is read by the load-time checks a slice at a time: each slice's pages are dropped from
the process once read (they stay in the system's page cache, shared with every process that maps the file), so
opening a file larger than memory peaks at one slice, and scoring then touches only the episodes it reads.
"""

from __future__ import annotations

import contextlib
import contextvars
import ctypes
import mmap as mmap_module
import os
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

FORMAT_VERSION = 1
HASH_CHUNK_BYTES = 16 * 2**20  # checks and hashing read a tensor this much at a time: no copy of a whole field
_PAGE = mmap_module.PAGESIZE
_MADV_DONTNEED = 4  # Linux: drop the pages from this mapping; clean file pages stay in the page cache
_MAPPED: contextvars.ContextVar[tuple[tuple[int, int], ...]] = contextvars.ContextVar("simgate_mapped", default=())


def read_payload(where: str, mmap: bool = False) -> dict[str, Any]:
    """The dict a probe set file holds, its format version and stored hash checked; never runs code from it.

    With ``mmap`` the tensors view the file's bytes through a private read mapping instead of being read into memory.
    """
    with open(where, "rb"):
        pass  # no such file, a directory, no permission: the system's own error names the path
    try:
        payload = torch.load(where, map_location="cpu", weights_only=True, mmap=mmap)
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


def check_storage(tensors: Mapping[str, Tensor], where: str) -> None:
    """Tensors read from a file each own their bytes: contiguous, within their storage, apart from each other.

    ``ProbeSet.save`` writes every field as one contiguous block. A stride of 0, or any other self-overlap, would let
    a few stored bytes stand for gigabytes of frames once copied, checked or hashed.

    Raises:
        ValueError: Naming the file and the field, before any value is read.
    """

    def expect(ok: bool, name: str, expected: str, got: str) -> None:
        if not ok:
            raise ValueError(f"Probe set {where!r}: expected `{name}` {expected} but got {got}")

    spans: list[tuple[str, int, int, int]] = []
    for name, x in tensors.items():
        size = int(x.numel()) * x.element_size()
        stored = f"strides {tuple(x.stride())} for shape {tuple(x.shape)}"
        expect(x.is_contiguous(), name, "to be stored contiguously, as ProbeSet.save writes it", stored)
        storage = x.untyped_storage()
        start = int(x.storage_offset()) * x.element_size()
        backed = f"to be backed by the file's bytes: {size} bytes from byte {start}"
        expect(start + size <= storage.nbytes(), name, backed, f"a storage of {storage.nbytes()} bytes")
        if size:
            spans.append((name, storage.data_ptr(), start, start + size))
    for i, (name, base, start, end) in enumerate(spans):
        for other, other_base, other_start, other_end in spans[i + 1 :]:
            apart = base != other_base or end <= other_start or other_end <= start
            expect(apart, name, f"to be stored apart from `{other}`", "the two sharing bytes")


def read_fields(
    path: str | os.PathLike[str], names: Sequence[str], mmap: bool, verify: bool
) -> tuple[str, dict[str, Any], str, str]:
    """The file's path, its fields by name (tensors structurally checked, values not yet read), name and stored hash.

    Raises:
        ValueError: If ``mmap`` or ``verify`` is not a bool, or (naming the file) the file is not a probe set, its
            tensors are stored in a way :meth:`ProbeSet.save` never writes, or its name is not a str.
    """
    for flag, value in (("mmap", mmap), ("verify", verify)):
        if not isinstance(value, bool):
            raise ValueError(f"Expected argument `{flag}` to be a bool but got {value!r}")
    where = os.fspath(path)
    payload = read_payload(where, mmap=mmap)
    fields: dict[str, Any] = {name: payload.get(name) for name in names}
    check_storage({name: x for name, x in fields.items() if isinstance(x, Tensor)}, where)
    name = payload.get("name", "probe")
    if not isinstance(name, str):
        raise ValueError(f"Probe set {where!r}: expected `name` to be a str but got {type(name).__name__}")
    return where, fields, name, payload["manifest_hash"]


def _madvise() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    with contextlib.suppress(OSError, AttributeError):
        return ctypes.CDLL(None, use_errno=True).madvise
    return None


_MADVISE = _madvise()


@contextlib.contextmanager
def pages_dropped_after_reading(tensors: Iterable[Tensor]) -> Iterator[None]:
    """While open, :func:`chunks` of these tensors (memory-mapped from a file) drop their pages once read.

    Only tensors mapped from a file, never written, may be given: their dropped pages are read again from the file
    when next touched. Anonymous memory is never given, so nothing else is ever dropped.
    """
    spans = tuple(
        (x.data_ptr(), x.data_ptr() + x.numel() * x.element_size()) for x in tensors if x.numel() and x.is_contiguous()
    )
    token = _MAPPED.set(_MAPPED.get() + spans)
    try:
        yield
    finally:
        _MAPPED.reset(token)


def _drop_pages(part: Tensor) -> None:
    start, end = part.data_ptr(), part.data_ptr() + part.numel() * part.element_size()
    if _MADVISE is None or not any(lo <= start and end <= hi for lo, hi in _MAPPED.get()):
        return
    first, last = -(-start // _PAGE) * _PAGE, end // _PAGE * _PAGE  # whole pages inside the part only
    if last > first:
        _MADVISE(ctypes.c_void_p(first), ctypes.c_size_t(last - first), _MADV_DONTNEED)


def chunks(tensor: Tensor) -> Iterator[Tensor]:
    """``tensor`` in slices of whole episodes of about 16 MiB (views); a file-mapped slice's pages go once read."""
    if tensor.numel() == 0:
        return
    rows = max(1, HASH_CHUNK_BYTES // max(1, tensor[0].numel() * tensor.element_size()))
    for part in tensor.split(rows):
        yield part
        if part.is_contiguous():
            _drop_pages(part)


def hash_bytes(digest: Any, tensor: Tensor) -> None:
    """Feed a tensor's bytes (C order) to ``digest`` a slice of episodes at a time: no whole copy of any field."""
    for part in chunks(tensor):
        flat = part.cpu().contiguous()  # the same memory for a contiguous CPU tensor
        # reinterpret as bytes: numpy has no bfloat16, and bytes are what must match
        digest.update(flat.view(-1).view(torch.uint8).numpy())


def compact(tensors: dict[str, Tensor]) -> dict[str, Tensor]:
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
