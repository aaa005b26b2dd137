"""Write a probe set to its file an episode at a time, in :meth:`ProbeSet.save`'s format, holding none of them.

Episodes go to one scratch file per field, beside the target, as they come. Closing the writer hashes them (the
manifest hash, streaming), writes the file's layout with ``torch.serialization.skip_data`` and copies every field's
bytes into its place, so the result is a file ``torch.load`` and :meth:`ProbeSet.load` read like any other.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import torch
from torch import Tensor

from simgate_tracking.probe_file import FORMAT_VERSION

FIELDS = ("context", "actions", "targets", "masks", "visible", "outcomes", "groups", "seeds")
_OBJECT_DIM = {"masks": -3, "visible": -1}  # episodes may see different numbers of objects: padded with False


class _Field:
    """One field's scratch file: every episode's bytes in order, its shape and dtype."""

    def __init__(self, folder: str, name: str, first: Tensor) -> None:
        self.name, self.dtype, self.shape = name, first.dtype, tuple(first.shape)
        self.path = os.path.join(folder, f"{name}.bin")
        self.file = open(self.path, "wb")  # noqa: SIM115 - open for as long as episodes come
        self.sizes: list[tuple[int, ...]] = []

    def append(self, value: Tensor) -> None:
        dim = _OBJECT_DIM.get(self.name)

        def without_objects(shape: tuple[int, ...]) -> tuple[int, ...]:
            return shape if dim is None else tuple(s for i, s in enumerate(shape) if i != dim % len(shape))

        same, expected = without_objects(tuple(value.shape)), without_objects(self.shape)
        if same != expected or value.dtype != self.dtype or value.ndim != len(self.shape):
            raise ValueError(
                f"ProbeWriter: expected `{self.name}` of episode {len(self.sizes)} to have episode 0's shape "
                f"{self.shape} and dtype {self.dtype}{' (any number of objects)' * (dim is not None)} but got shape "
                f"{tuple(value.shape)} and dtype {value.dtype}"
            )
        self.file.write(value.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
        self.sizes.append(tuple(value.shape))

    def final_shape(self, objects: int) -> tuple[int, ...]:
        shape = list(self.shape)
        if self.name in _OBJECT_DIM:
            shape[_OBJECT_DIM[self.name]] = objects
        return (len(self.sizes), *shape)

    def episodes(self, objects: int) -> Iterator[bytes]:
        """Every episode's bytes in order, the object slots padded with False to ``objects``."""
        self.file.close()
        dim = _OBJECT_DIM.get(self.name)
        with open(self.path, "rb") as stored:
            for size in self.sizes:
                count = int(torch.Size(size).numel()) * self.dtype.itemsize
                value = torch.frombuffer(bytearray(stored.read(count)), dtype=self.dtype).view(size) if count else None
                if dim is not None and size[dim] != objects:
                    padded = torch.zeros(self.final_shape(objects)[1:], dtype=self.dtype)
                    if value is not None:
                        padded.narrow(dim, 0, size[dim]).copy_(value)
                    value = padded
                yield b"" if value is None else value.contiguous().view(-1).view(torch.uint8).numpy().tobytes()


class ProbeWriter:
    """Write probe episodes to ``path`` as they come; :meth:`close` makes the file :meth:`ProbeSet.save` would write.

    Fields of one episode, without the leading N: ``context`` (T0, C, H, W), ``actions`` (K+1, T, A), ``targets``
    ([R,] K+1, T, C, H, W), ``masks`` ([R,] T, M, H, W) and ``visible`` ([R,] T, M) with any M per episode (padded
    with False to the largest), ``outcomes`` (), ([R,] K+1) or (R,), ``group`` and ``seed`` ints (default seed: the
    episode's index). Values are checked when the file is read back, as for any probe set file.

    Raises:
        ValueError: If an episode's field differs in shape or dtype from episode 0's, or is given for some episodes
            and not others; naming the field and the episode.

    Example:
        >>> import os, tempfile, torch
        >>> from simgate_tracking import ProbeSet
        >>> path = os.path.join(tempfile.mkdtemp(), "probe.pt")
        >>> with ProbeWriter(path, name="two") as writer:
        ...     for seed in (3, 4):
        ...         real = torch.full((2, 4, 3, 8, 8), seed / 10)
        ...         writer.add(context=real[0, :1], actions=torch.zeros(2, 4, 1), targets=real, seed=seed)
        >>> probe = ProbeSet.load(path)
        >>> len(probe), probe.seeds.tolist()
        (2, [3, 4])
    """

    def __init__(self, path: str | os.PathLike[str], name: str = "probe") -> None:
        self.path = Path(path)
        self.name = str(name)
        self.folder = tempfile.mkdtemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        self.fields: dict[str, _Field] = {}
        self.count = 0

    @property
    def num_objects(self) -> int:
        """M: the most object slots any episode so far has (0 without masks)."""
        masks = self.fields.get("masks")
        return max((size[_OBJECT_DIM["masks"]] for size in masks.sizes), default=0) if masks else 0

    def add(self, **episode: Any) -> None:
        """Append one episode (fields as the class describes; ``group`` and ``seed`` as ints)."""
        episode["seeds"] = episode.pop("seed", None)
        episode["groups"] = episode.pop("group", None)
        if episode["seeds"] is None:
            episode["seeds"] = self.count
        unknown = sorted(set(episode) - set(FIELDS))
        if unknown:
            raise ValueError(f"ProbeWriter: expected fields among {FIELDS} (seed, group) but got {unknown}")
        for name in FIELDS:
            value = episode.get(name)
            if name in ("seeds", "groups") and value is not None:
                value = torch.as_tensor(value, dtype=torch.long)
            known = name in self.fields
            if (value is None and known) or (value is not None and not known and self.count):
                raise ValueError(
                    f"ProbeWriter: expected `{name}` for every episode or none but episode {self.count} "
                    f"{'lacks it' if value is None else 'has it'}"
                )
            if value is None:
                continue
            if not known:
                self.fields[name] = _Field(self.folder, name, torch.as_tensor(value))
            self.fields[name].append(torch.as_tensor(value))
        self.count += 1

    def drop(self, *names: str) -> None:
        """Leave these fields out of the file (masks that never showed an object)."""
        for name in names:
            field = self.fields.pop(name, None)
            if field is not None:
                field.file.close()
                os.remove(field.path)

    def close(self) -> Path:
        """Write the probe set file and remove the scratch files; returns the file's path.

        Raises:
            ValueError: If no episode was added.
        """
        try:
            if not self.count:
                raise ValueError(f"ProbeWriter: expected at least one episode before closing {str(self.path)!r}")
            objects = self.num_objects
            digest = hashlib.sha256(f"simgate-probe-v{FORMAT_VERSION}".encode())
            for name, field in self.fields.items():
                digest.update(f"|{name}|{field.dtype}|{field.final_shape(objects)}|".encode())
                for data in field.episodes(objects):
                    digest.update(data)
            payload: dict[str, Any] = {"format_version": FORMAT_VERSION, "name": self.name}
            for name, field in self.fields.items():
                payload[name] = torch.empty(field.final_shape(objects), dtype=field.dtype)  # never read: no memory
            payload["manifest_hash"] = digest.hexdigest()
            with torch.serialization.skip_data():
                torch.save(payload, self.path)
            _fill(self.path, [field.episodes(objects) for field in self.fields.values()])
            return self.path
        finally:
            for field in self.fields.values():
                field.file.close()
            shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> ProbeWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if kind is None:
            self.close()
        else:  # an episode failed to play: no half-written file
            for field in self.fields.values():
                field.file.close()
            shutil.rmtree(self.folder, ignore_errors=True)


def _fill(path: Path, fields: list[Iterator[bytes]]) -> None:
    """Copy every field's bytes into its record of the layout torch wrote, and set each record's CRC-32."""
    with zipfile.ZipFile(path) as archive:
        records = sorted(
            (info for info in archive.infolist() if "/data/" in info.filename and "/.data/" not in info.filename),
            key=lambda info: int(info.filename.rsplit("/", 1)[1]),  # keys follow the payload's order, as saved
        )
        directory = archive.start_dir
    if len(records) != len(fields):
        raise RuntimeError(f"Expected {len(fields)} tensor records in {str(path)!r} but torch wrote {len(records)}")
    crcs = {}
    with open(path, "r+b") as out:
        for info, episodes in zip(records, fields, strict=True):
            out.seek(info.header_offset + 26)
            name_length, extra_length = struct.unpack("<HH", out.read(4))
            out.seek(info.header_offset + 30 + name_length + extra_length)
            crc, written = 0, 0
            for data in episodes:
                out.write(data)
                crc, written = zlib.crc32(data, crc), written + len(data)
            if written != info.file_size:
                raise RuntimeError(f"Expected {info.file_size} bytes for {info.filename} but wrote {written}")
            out.seek(info.header_offset + 14)
            out.write(struct.pack("<I", crc))
            crcs[info.filename] = crc
        _set_directory_crcs(out, directory, crcs)


def _set_directory_crcs(out: Any, start: int, crcs: dict[str, int]) -> None:
    """Write the CRC-32s into the zip's central directory entries of the named records."""
    out.seek(start)
    while out.read(4) == b"PK\x01\x02":
        entry = out.tell() - 4
        out.seek(entry + 28)
        name_length, extra_length, comment_length = struct.unpack("<HHH", out.read(6))
        out.seek(entry + 46)
        name = out.read(name_length).decode()
        if name in crcs:
            out.seek(entry + 16)
            out.write(struct.pack("<I", crcs[name]))
        out.seek(entry + 46 + name_length + extra_length + comment_length)
