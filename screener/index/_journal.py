"""The append-only log of a descriptor index: what changed since its base file was written.

A save that finds a usable base appends the changes since the last save here instead of
rewriting the base (which holds every stored descriptor). The log starts with a header that
names the base it follows (a sha256 of the base's checksum and its random identity), so
that a log left beside another base (a crash after a compaction wrote the new base but
before it started the new log) is never replayed onto it. Each record carries its own
length and CRC-32: a crash in the middle of an append leaves a torn tail, which a reader
stops at (the records before it are good), never a wrong record.

Record: ``b"DREC"``, payload length and CRC-32 of the payload (little-endian u32 each), then
the payload: an addition (op 1: owner i64, label length u16, row count u32, the label in
UTF-8, the rows of 128 bytes) or a removal (op 2: owner count u32, the owners as i64).
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from screener.index.atomic import fsync_dir, write_atomic

DIM = 128
_MAGIC = b"SCREENER DESCRIPTOR LOG 1\n"
_HEADER = len(_MAGIC) + 64 + 1
_RECORD = struct.Struct("<4sII")
_ADD = struct.Struct("<BqHI")
_REMOVE = struct.Struct("<BI")


@dataclass(frozen=True)
class Added:
    owner: int
    label: str
    descriptors: npt.NDArray[np.uint8]  # (n, 128)


@dataclass(frozen=True)
class Removed:
    owners: tuple[int, ...]


Change = Added | Removed


@dataclass(frozen=True)
class Replay:
    """The good records of a log, and why reading stopped early (None: it did not)."""

    changes: list[Change]
    problem: str | None
    good_bytes: int


def log_path(base: Path) -> Path:
    return base.with_name(base.name + ".log")


def start(path: Path, base_checksum: str) -> None:
    """A new, empty log following the base named by ``base_checksum``."""
    write_atomic(path, _header(base_checksum))


def _header(base_checksum: str) -> bytes:
    if len(base_checksum) != 64:
        raise ValueError("a base is named by a sha256 in hex")
    return _MAGIC + base_checksum.encode("ascii") + b"\n"


def encode(change: Change) -> bytes:
    if isinstance(change, Added):
        label = change.label.encode()
        rows = np.ascontiguousarray(change.descriptors, dtype=np.uint8)
        payload = _ADD.pack(1, change.owner, len(label), len(rows)) + label + rows.tobytes()
    else:
        owners = np.asarray(change.owners, dtype="<i8")
        payload = _REMOVE.pack(2, len(owners)) + owners.tobytes()
    return _RECORD.pack(b"DREC", len(payload), zlib.crc32(payload)) + payload


def append(path: Path, changes: Sequence[Change], truncate_at: int | None = None) -> int:
    """Append ``changes`` durably (after cutting a torn tail at ``truncate_at``); returns
    the log's size."""
    data = b"".join(encode(c) for c in changes)
    with open(path, "r+b") as f:
        if truncate_at is not None:
            f.truncate(truncate_at)
        f.seek(0, os.SEEK_END)
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
        size = f.tell()
    fsync_dir(path.parent)
    return size


def _decode(payload: bytes) -> Change:
    op = payload[0] if payload else 0
    if op == 1 and len(payload) >= _ADD.size:
        _, owner, label_len, n = _ADD.unpack_from(payload)
        start = _ADD.size + label_len
        if len(payload) != start + n * DIM:
            raise ValueError("an addition of the wrong length")
        label = payload[_ADD.size : start].decode()
        rows = np.frombuffer(payload, dtype=np.uint8, offset=start).reshape(n, DIM)
        return Added(int(owner), label, rows)
    if op == 2 and len(payload) >= _REMOVE.size:
        _, n = _REMOVE.unpack_from(payload)
        if len(payload) != _REMOVE.size + 8 * n:
            raise ValueError("a removal of the wrong length")
        owners = np.frombuffer(payload, dtype="<i8", offset=_REMOVE.size)
        return Removed(tuple(int(o) for o in owners))
    raise ValueError(f"unknown record (op {op})")


def read(path: Path, base_checksum: str) -> Replay:
    """The changes logged after the base ``base_checksum``. A missing log, or one that
    follows another base, gives no changes and says so; a torn or damaged record ends
    the replay there."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return Replay([], f"log {path} is missing", 0)
    if data[:_HEADER] != _header(base_checksum):
        return Replay([], f"log {path} does not follow this base", 0)
    changes: list[Change] = []
    at = _HEADER
    while at < len(data):
        if len(data) - at < _RECORD.size:
            return Replay(changes, f"log {path}: torn record at byte {at}", at)
        magic, length, crc = _RECORD.unpack_from(data, at)
        payload = data[at + _RECORD.size : at + _RECORD.size + length]
        if magic != b"DREC" or len(payload) != length or zlib.crc32(payload) != crc:
            return Replay(changes, f"log {path}: torn or damaged record at byte {at}", at)
        try:
            changes.append(_decode(payload))
        except (ValueError, UnicodeDecodeError) as e:
            return Replay(changes, f"log {path}: bad record at byte {at}: {e}", at)
        at += _RECORD.size + length
    return Replay(changes, None, at)


def removed(owners: Iterable[int]) -> Removed:
    return Removed(tuple(sorted(int(o) for o in owners)))
