"""On-disk format and blocking file operations of the kernel journal (private).

Everything here is synchronous and runs in a worker thread (``asyncio.to_thread``) on behalf of
:mod:`services.kernel.journal`, which documents the file layout and owns all the concurrency.
The code is written for throughput: large buffers (one ``pread`` per chunk, never one syscall per
record); the open-time scan and the restart's replay walk frames in Rust (``pink_kernel``, ADR
0010), catch-up reads with ``struct.Struct.unpack_from``.
"""

from __future__ import annotations

import bisect
import json
import logging
import os
import re
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import pink_kernel

logger = logging.getLogger(__name__)

FRAME = struct.Struct("<IIQ")  # payload length | crc32(sequence bytes + payload) | sequence
FRAME_SIZE: Final = FRAME.size
_SEQ = struct.Struct("<Q")
MAX_PAYLOAD: Final = 0xFFFF_FFFF
SNAP_HEADER = struct.Struct("<8sQQI")  # magic | sequence | data length | crc32(magic..length + data)
SNAP_MAGIC: Final = b"PINKSNP1"
CONSUMERS_FORMAT: Final = 1
SEGMENT_RE: Final = re.compile(r"(\d{20})\.seg")
SNAPSHOT_RE: Final = re.compile(r"(\d{20})\.snap")
SCAN_CHUNK: Final = 16 * 1024 * 1024
READ_CHUNK: Final = 2 * 1024 * 1024
REPLAY_CHUNK: Final = 16 * 1024 * 1024  # restart reads: few large reads, few thread hops
INDEX_STRIDE: Final = 64 * 1024  # one sparse index entry per this many bytes of a segment


class JournalError(Exception):
    """The journal cannot do what was asked without losing or inventing data.

    Raised for corruption in the middle of the log, gaps in sequences, I/O errors, a request
    that breaks the journal's invariants (non-contiguous append, ack or snapshot beyond the last
    durable record), reads of compacted records ("compacted") and use after close.
    """


def segment_name(first_sequence: int) -> str:
    return f"{first_sequence:020d}.seg"


def snapshot_name(sequence: int) -> str:
    return f"{sequence:020d}.snap"


@dataclass(slots=True, eq=False)
class Segment:
    """One segment file as the journal knows it (``size`` and ``last`` only ever cover durable records)."""

    first: int
    path: Path
    last: int
    size: int
    index_seqs: list[int] = field(default_factory=list)
    index_offsets: list[int] = field(default_factory=list)
    next_index: int = 0
    removed: bool = False

    def locate(self, sequence: int) -> tuple[int, int]:
        """(offset, sequence) of the indexed frame at or before ``sequence`` (the segment must hold it)."""
        i = bisect.bisect_right(self.index_seqs, sequence) - 1
        if i < 0:
            return 0, self.first
        return self.index_offsets[i], self.index_seqs[i]


@dataclass(slots=True)
class ScanResult:
    segment: Segment
    file_size: int
    bad_offset: int | None = None
    bad_reason: str = ""
    bad_is_sequence: bool = False  # a complete, checksummed frame carrying the wrong sequence


# ----------------------------------------------------------------------------- small file helpers


def write_all(fd: int, data: bytes | memoryview) -> None:
    """Write every byte (one ``write`` unless the kernel returns a short count)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_file_atomic(path: Path, chunks: Sequence[bytes], *, fsync: bool) -> None:
    """tmp file + fsync + rename + directory fsync: readers see the old or the new file, never a mix."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for chunk in chunks:
            write_all(fd, chunk)
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    if fsync:
        fsync_dir(path.parent)


def make_dirs(directory: Path, *, fsync: bool) -> tuple[Path, Path]:
    segments, snapshots = directory / "segments", directory / "snapshots"
    created = not segments.is_dir() or not snapshots.is_dir()
    segments.mkdir(parents=True, exist_ok=True)
    snapshots.mkdir(exist_ok=True)
    if created and fsync:
        fsync_dir(directory)
        fsync_dir(directory.parent)
    return segments, snapshots


def remove_stale_tmp(directory: Path, *, fsync: bool) -> None:
    """Remove ``*.tmp`` files left by an atomic write that a crash interrupted before its rename."""
    stale = [entry for entry in directory.iterdir() if entry.name.endswith(".tmp")]
    for entry in stale:
        logger.warning("journal: removing %s left by an interrupted atomic write", entry)
        entry.unlink()
    if stale and fsync:
        fsync_dir(directory)


def list_numbered(directory: Path, pattern: re.Pattern[str], what: str) -> list[tuple[int, Path]]:
    """Files named ``<20 digits><suffix>``, sorted by number; other files are reported and left alone."""
    found: list[tuple[int, Path]] = []
    for entry in directory.iterdir():
        match = pattern.fullmatch(entry.name)
        if match is not None:
            found.append((int(match.group(1)), entry))
        elif not entry.name.endswith(".tmp"):
            logger.warning("journal: ignoring unexpected file %s among the %s", entry, what)
    found.sort()
    return found


# ----------------------------------------------------------------------------- frames


def encode_batch(
    records: Sequence[tuple[int, bytes]], first: int, base: int, next_index: int
) -> tuple[bytes, list[tuple[int, int]], int]:
    """Frames for ``records`` (which must number ``first``, ``first + 1``, ...) as one buffer.

    Also returns the sparse index entries (sequence, file offset) for a segment whose durable
    size is ``base``, and the updated next index threshold.
    """
    pack, pack_seq, crc32 = FRAME.pack, _SEQ.pack, zlib.crc32
    parts: list[bytes] = []
    index: list[tuple[int, int]] = []
    offset, expected = base, first
    for seq, payload in records:
        if seq != expected:
            raise JournalError(
                f"append must continue the journal contiguously: expected sequence {expected}, got {seq} "
                f"(batch of {len(records)} starting at {records[0][0]}); nothing written"
            )
        length = len(payload)
        if length > MAX_PAYLOAD:
            raise ValueError(f"record {seq} is {length} bytes, more than the frame's u32 length allows")
        if offset >= next_index:
            index.append((seq, offset))
            next_index = offset + INDEX_STRIDE
        parts.append(pack(length, crc32(payload, crc32(pack_seq(seq))), seq))
        parts.append(payload)
        offset += FRAME_SIZE + length
        expected += 1
    return b"".join(parts), index, next_index


def _scan_frames(
    buf: bytes, base: int, result: ScanResult, expected: int, next_index: int
) -> tuple[int, int, int, bool]:
    """Validate the complete frames of ``buf`` (file offset ``base``); record a bad frame in ``result``.

    Returns (position after the last good frame, next expected sequence, next index threshold, bad?).
    The walk and the checksums run in Rust without the GIL (``pink_kernel.scan_frames``, ADR 0010).
    """
    pos, expected, index, index_at, stop = pink_kernel.scan_frames(
        buf, expected, verify=True, index_at=max(0, next_index - base), stride=INDEX_STRIDE
    )
    segment = result.segment
    for seq, offset in index:
        segment.index_seqs.append(seq)
        segment.index_offsets.append(base + offset)
    if stop is None or stop[0] == "incomplete":  # the caller reads on, or finds a torn tail
        return pos, expected, base + index_at, False
    kind, offset, reason = stop
    result.bad_offset = base + offset
    result.bad_is_sequence = kind == "sequence"
    result.bad_reason = reason
    return pos, expected, base + index_at, True


def scan_segment(path: Path, first: int) -> ScanResult:
    """Validate every frame of one segment (length, CRC, contiguous sequences from ``first``)."""
    segment = Segment(first=first, path=path, last=first - 1, size=0)
    fd = os.open(path, os.O_RDONLY)
    try:
        file_size = os.fstat(fd).st_size
        result = ScanResult(segment=segment, file_size=file_size)
        base, expected, next_index, buf = 0, first, 0, b""
        while True:
            pos, expected, next_index, bad = _scan_frames(buf, base, result, expected, next_index)
            consumed = base + pos
            segment.last, segment.size, segment.next_index = expected - 1, consumed, next_index
            if bad or consumed == file_size:
                return result
            rest = len(buf) - pos  # the start of a frame the buffer cut: read again with what follows
            frame_end = consumed + (FRAME_SIZE if rest < FRAME_SIZE else FRAME_SIZE + FRAME.unpack_from(buf, pos)[0])
            if frame_end > file_size:
                result.bad_offset = consumed
                result.bad_reason = (
                    f"incomplete frame: {file_size - consumed} bytes where {frame_end - consumed} are needed"
                )
                return result
            want = max(SCAN_CHUNK + rest, frame_end - consumed)
            chunk = os.pread(fd, want, consumed)
            if len(chunk) <= rest:
                raise JournalError(f"segment {path} shrank while it was being scanned")
            buf, base = chunk, consumed
    finally:
        os.close(fd)


def find_valid_frame(buf: bytes) -> int | None:
    """Offset (> 0) of the first complete frame with a valid checksum in ``buf``, if any.

    Used to tell a torn tail (nothing valid after the first bad frame) from corruption in the
    middle (a valid record follows). Byte by byte: only ever run over the bytes after a bad frame.
    """
    unpack, crc32 = FRAME.unpack_from, zlib.crc32
    end = len(buf)
    for start in range(1, end - FRAME_SIZE + 1):
        length, crc, _seq = unpack(buf, start)
        stop = start + FRAME_SIZE + length
        if stop <= end and crc32(buf[start + 8 : stop]) == crc:
            return start
    return None


def check_torn_tail(result: ScanResult) -> None:
    """Raise JournalError unless the bad frame of the last segment starts a torn tail.

    A torn tail has no valid record after its first bad frame; a valid record after it means the
    corruption is in the middle of the log, which truncation would silently lose.
    """
    segment, bad = result.segment, result.bad_offset
    if bad is None:
        return
    fd = os.open(segment.path, os.O_RDONLY)
    try:
        tail = os.pread(fd, result.file_size - bad, bad)
    finally:
        os.close(fd)
    found = find_valid_frame(tail)
    if found is not None:
        raise JournalError(
            f"corrupt record in the middle of {segment.path} at offset {bad} ({result.bad_reason}); "
            f"a valid record follows at offset {bad + found}"
        )


def truncate_tail(result: ScanResult, *, fsync: bool) -> int:
    """Cut the torn tail off the last segment at its last good record; returns the bytes removed."""
    segment, bad = result.segment, result.bad_offset
    if bad is None:
        return 0
    fd = os.open(segment.path, os.O_RDWR)
    try:
        os.ftruncate(fd, bad)
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)
    removed = result.file_size - bad
    logger.warning(
        "journal: truncated a torn tail of %d bytes from %s at offset %d after sequence %d (%s)",
        removed,
        segment.path,
        bad,
        segment.last,
        result.bad_reason,
    )
    return removed


def read_chunk(
    segment: Path,
    offset: int,
    end: int,
    expected: int,
    *,
    after: int,
    upper: int,
    verify: bool,
    chunk_bytes: int = READ_CHUNK,
) -> tuple[list[tuple[int, bytes]], int, int]:
    """Records of one chunk of a segment: from ``offset`` (the frame of ``expected``) up to ``end``.

    Returns the records with ``after < sequence <= upper``, the offset and sequence to continue
    from. Reads at least one whole frame, so a frame larger than the chunk size is still returned.
    Lengths and sequences are always checked; checksums too when ``verify``.
    """
    buf = _read_frames(segment, offset, end, chunk_bytes)
    unpack, crc32 = FRAME.unpack_from, zlib.crc32
    view = memoryview(buf)
    out: list[tuple[int, bytes]] = []
    append = out.append
    n, pos = len(buf), 0
    last_header = n - FRAME_SIZE
    while pos <= last_header and expected <= upper:
        length, crc, seq = unpack(buf, pos)
        start = pos + FRAME_SIZE
        stop = start + length
        if stop > n:
            break
        if seq != expected or (verify and crc32(view[pos + 8 : stop]) != crc):
            raise _corrupt_read(segment, offset + pos, expected, seq)
        if seq > after:
            append((seq, buf[start:stop]))
        expected += 1
        pos = stop
    if pos == 0 and expected <= upper:
        raise _corrupt_read(segment, offset, expected, None)
    return out, offset + pos, expected


def _read_frames(segment: Path, offset: int, end: int, chunk_bytes: int) -> bytes:
    """Up to ``chunk_bytes`` from ``offset`` (never past ``end``), and at least the whole first frame."""
    fd = os.open(segment, os.O_RDONLY)
    try:
        want = min(max(chunk_bytes, FRAME_SIZE), end - offset)
        buf = os.pread(fd, want, offset)
        if len(buf) >= FRAME_SIZE:
            frame = FRAME_SIZE + FRAME.unpack_from(buf)[0]
            if frame > len(buf) and offset + frame <= end:
                buf = os.pread(fd, frame, offset)
    finally:
        os.close(fd)
    return buf


@dataclass(frozen=True, slots=True)
class FrameBlock:
    """Whole frames ``data[start:stop]`` of a segment: ``count`` records from sequence ``first`` (restart's replay)."""

    data: bytes
    start: int
    stop: int
    first: int
    count: int


def read_frames(
    segment: Path, offset: int, end: int, expected: int, *, after: int, upper: int, chunk_bytes: int
) -> tuple[list[FrameBlock], int, int]:
    """The frames of one chunk of a segment as one block of raw bytes, for ``Kernel.replay_frames``.

    Same contract as :func:`read_chunk` (records with ``after < sequence <= upper``, the offset and
    sequence to continue from), but the frames stay in the buffer they were read into: lengths
    and sequences are checked by one walk in Rust (``pink_kernel.scan_frames``, no checksums: the
    open that precedes a restart verified them), and the kernel takes the bytes as they are.
    """
    buf = _read_frames(segment, offset, end, chunk_bytes)
    pos, next_expected, _, _, stop = pink_kernel.scan_frames(buf, expected, verify=False)
    if stop is not None and stop[0] != "incomplete":
        raise _corrupt_read(segment, offset + stop[1], next_expected, None)
    if pos == 0 and expected <= upper:
        raise _corrupt_read(segment, offset, expected, None)
    start, first = 0, expected
    if first <= after or next_expected - 1 > upper:
        # Rare: the first chunk of a replay starting inside it, or a log that grew past ``upper``.
        start, first, pos, next_expected = _trim_frames(buf, pos, expected, after, upper)
    count = next_expected - first
    blocks = [FrameBlock(buf, start, pos, first, count)] if count > 0 else []
    return blocks, offset + pos, next_expected


def _trim_frames(buf: bytes, stop: int, expected: int, after: int, upper: int) -> tuple[int, int, int, int]:
    """(start, first, stop, next expected) of the frames of ``buf[:stop]`` with ``after < sequence <= upper``."""
    pos, start, first = 0, 0, expected
    while pos < stop and expected <= upper:
        if expected == after + 1:
            start, first = pos, expected
        pos += FRAME_SIZE + FRAME.unpack_from(buf, pos)[0]
        expected += 1
    return (start, first, pos, expected) if first > after else (pos, expected, pos, expected)


def _corrupt_read(segment: Path, offset: int, expected: int, seq: int | None) -> JournalError:
    logger.error(
        "journal: record %d in %s at offset %d is corrupt (found sequence %s) although it was validated",
        expected,
        segment,
        offset,
        seq,
    )
    return JournalError(f"corrupt record {expected} in {segment} at offset {offset}")


# ----------------------------------------------------------------------------- snapshots and consumers


def write_snapshot(directory: Path, sequence: int, data: bytes, *, fsync: bool) -> None:
    header = SNAP_HEADER.pack(SNAP_MAGIC, sequence, len(data), 0)
    crc = zlib.crc32(data, zlib.crc32(header[:-4]))
    header = SNAP_HEADER.pack(SNAP_MAGIC, sequence, len(data), crc)
    write_file_atomic(directory / snapshot_name(sequence), [header, data], fsync=fsync)


def _read_snapshot(path: Path, sequence: int) -> bytes | None:
    """The data of a snapshot file, or None (logged) when it is damaged."""
    with path.open("rb") as file:
        size = os.fstat(file.fileno()).st_size
        header = file.read(SNAP_HEADER.size)
        problem, data = "", b""
        if len(header) < SNAP_HEADER.size:
            problem = f"truncated to {size} bytes"
        else:
            magic, seq, length, crc = SNAP_HEADER.unpack(header)
            if magic != SNAP_MAGIC:
                problem = f"bad magic {magic!r}"
            elif seq != sequence:
                problem = f"header sequence {seq} does not match its file name"
            elif length != size - SNAP_HEADER.size:
                problem = f"{size - SNAP_HEADER.size} data bytes where the header says {length}"
            else:
                data = file.read(length)
                if len(data) != length or zlib.crc32(data, zlib.crc32(header[:-4])) != crc:
                    problem = "checksum mismatch"
    if problem:
        logger.warning("journal: snapshot %s is corrupt (%s); falling back to an older snapshot", path, problem)
        return None
    return data


def latest_snapshot(directory: Path) -> tuple[int, bytes] | None:
    """(sequence, data) of the newest snapshot with a valid checksum; damaged ones are logged and skipped."""
    for sequence, path in reversed(list_numbered(directory, SNAPSHOT_RE, "snapshots")):
        try:
            data = _read_snapshot(path, sequence)
        except FileNotFoundError:  # removed by a compaction since it was listed: an older one was never needed
            continue
        if data is not None:
            return sequence, data
    return None


def remove_files(segments: Sequence[Path], segments_dir: Path, snapshots_dir: Path, before: int, *, fsync: bool) -> int:
    """Compaction's deletions in one go: ``segments`` (oldest first), then snapshots older than ``before``.

    Returns the bytes freed. Oldest first, so a crash half way leaves a contiguous suffix.
    """
    snapshots = [path for seq, path in list_numbered(snapshots_dir, SNAPSHOT_RE, "snapshots") if seq < before]
    freed = 0
    for directory, paths in ((segments_dir, segments), (snapshots_dir, snapshots)):
        for path in paths:
            freed += path.stat().st_size
            path.unlink()
        if paths and fsync:
            fsync_dir(directory)
    return freed


def load_consumers(path: Path) -> dict[str, int]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise JournalError(f"consumer cursors file {path} is not valid JSON: {exc}") from exc
    consumers = doc.get("consumers") if isinstance(doc, dict) and doc.get("format") == CONSUMERS_FORMAT else None
    if not isinstance(consumers, dict) or not all(
        isinstance(name, str) and name and type(seq) is int and seq >= 0 for name, seq in consumers.items()
    ):
        raise JournalError(f"consumer cursors file {path} does not hold format {CONSUMERS_FORMAT} cursors: {doc!r}")
    return dict(consumers)


def save_consumers(path: Path, consumers: dict[str, int], *, fsync: bool) -> None:
    doc = {"format": CONSUMERS_FORMAT, "consumers": consumers}
    write_file_atomic(path, [json.dumps(doc, sort_keys=True, indent=1).encode()], fsync=fsync)
