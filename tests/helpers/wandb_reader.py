"""Read an offline W&B run file (``run-*.wandb``) back into protobuf records, for tests.

The file is a 7-byte W&B header (``:W&B``, a u16 magic, a u8 version) followed by a LevelDB-style log: 32 KiB
blocks (counted from the start of the file, header included) of chunks, each a 7-byte chunk header (crc32 u32, data
length u16, chunk type u8: FULL=1, FIRST=2, MIDDLE=3, LAST=4) and its data. A block's tail shorter than a chunk
header is zero padding. Each whole record is a serialised ``wandb_internal_pb2.Record``.
"""

from __future__ import annotations

import json
import struct
import time
import zlib
from pathlib import Path
from typing import Any

from wandb.proto import wandb_internal_pb2

BLOCK = 32 * 1024
HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4
# the chunk checksum is crc32 over the data, seeded with the crc32 of the chunk type byte
_TYPE_CRC = {kind: zlib.crc32(bytes([kind])) & 0xFFFFFFFF for kind in (FULL, FIRST, MIDDLE, LAST)}


def _payloads(data: bytes) -> list[bytes]:
    ident, _magic, _version = struct.unpack("<4sHB", data[:HEADER])
    if ident != b":W&B":
        raise ValueError(f"Expected a W&B run file starting with b':W&B' but got {ident!r}")
    records, pending, pos = [], b"", HEADER
    while pos + HEADER <= len(data):
        space = BLOCK - pos % BLOCK
        if space < HEADER:
            pos += space
            continue
        checksum, length, kind = struct.unpack("<IHB", data[pos : pos + HEADER])
        if kind == 0 and length == 0:  # zero padding up to the next block
            pos += space
            continue
        chunk = data[pos + HEADER : pos + HEADER + length]
        if zlib.crc32(chunk, _TYPE_CRC[kind]) & 0xFFFFFFFF != checksum:
            raise ValueError(f"Bad checksum in the W&B run file at byte {pos}")
        pos += HEADER + length
        if kind == FULL:
            records.append(chunk)
        elif kind == FIRST:
            pending = chunk
        elif kind == MIDDLE:
            pending += chunk
        else:
            records.append(pending + chunk)
    return records


def read_records(path: str | Path) -> list[wandb_internal_pb2.Record]:
    """Every record of the run file, in write order."""
    out = []
    for payload in _payloads(Path(path).read_bytes()):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(payload)
        out.append(record)
    return out


def run_file(root: str | Path) -> Path:
    """The one ``run-*.wandb`` file under ``root``."""
    found = sorted(Path(root).rglob("run-*.wandb"))
    if len(found) != 1:
        raise FileNotFoundError(f"Expected one run-*.wandb under {root} but found {found}")
    return found[0]


def read_finished_run(root: str | Path, timeout: float = 60.0) -> list[wandb_internal_pb2.Record]:
    """The records of the one run under ``root``, once its ``exit`` record is on disk.

    ``run.finish()`` can return before W&B's service process has flushed the file, so wait for the run's last record.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            records = read_records(run_file(root))
        except (FileNotFoundError, ValueError, KeyError, struct.error):  # not there or half-written yet
            records = []
        if records and records[-1].WhichOneof("record_type") == "exit":
            return records
        if time.monotonic() > deadline:
            raise TimeoutError(f"The W&B run under {root} has no exit record after {timeout} s")
        time.sleep(0.05)


def of_type(records: list[wandb_internal_pb2.Record], kind: str) -> list[Any]:
    """The records of one type (``history``, ``alert``, ``metric``, ``files``, ``summary``...)."""
    return [getattr(r, kind) for r in records if r.WhichOneof("record_type") == kind]


def _item_value(item: Any) -> Any:
    if item.value_json:
        return json.loads(item.value_json)
    which = [name for name in ("number", "integer", "boolean", "text", "json") if item.HasField(name)]
    return getattr(item, which[0]) if which else None


def history_rows(records: list[wandb_internal_pb2.Record]) -> list[dict[str, Any]]:
    """The run's history as dicts of key to decoded value; media (nested keys) become dicts of their fields."""
    rows = []
    for history in of_type(records, "history"):
        row: dict[str, Any] = {}
        for item in history.item:
            path = [item.key] if item.key else list(item.nested_key)
            target = row
            for part in path[:-1]:
                target = target.setdefault(part, {})
            target[path[-1]] = _item_value(item)
        rows.append(row)
    return rows
