"""The kernel service's journal: durable, append-only, checksummed, with group commit.

Every kernel input is appended here (and fsynced) before the kernel answers; restart is the
latest snapshot plus a replay of the records after it. Record payloads are opaque bytes
(serialized ``pink.v1.LogRecord``): the journal never decodes them.

File layout under the journal directory::

    segments/<first_sequence:020d>.seg    append-only segment files, named by their first record
    snapshots/<sequence:020d>.snap         kernel state as of a sequence
    consumers.json                         registered log consumers and their acknowledged sequence

A segment is a run of frames, all integers little-endian::

    u32 length of payload | u32 crc32(sequence bytes + payload) | u64 sequence | payload

Sequences start at 1 and are contiguous across segments (a segment's first record follows the
previous segment's last). A snapshot file is a 28-byte header ``8s magic "PINKSNP1" | u64
sequence | u64 data length | u32 crc32(header before the crc + data)`` followed by the data.
``consumers.json`` is ``{"format": 1, "consumers": {name: acknowledged sequence}}``.
Snapshots and ``consumers.json`` are written atomically (tmp file, fsync, rename, directory
fsync); a ``*.tmp`` file left by a crash is removed on open.

Durability and recovery:

* ``append`` is a group commit: a whole batch is one ``write`` and one ``fdatasync``, made by
  the writer thread of ``pink_kernel.SegmentWriter`` (ADR 0012); ``last_sequence`` advances
  only after the fsync returns, and reads never return anything beyond it. A batch goes to a
  new segment when it would push the current one past ``segment_bytes`` (so a segment exceeds
  ``segment_bytes`` only when a single batch, e.g. one large record, does; it then has the
  segment to itself). Creating a segment adds one directory fsync, so its name is as durable as
  its data. An append called while earlier ones are still syncing is framed after them and
  written after them; each batch joins the segments when the thread reports it durable, in
  order. An I/O error while committing leaves the journal unusable until it is reopened
  (recovery then decides what is durable; the thread writes nothing after a failed batch).
* ``open`` validates every frame. A torn or corrupt tail of the *last* segment (an incomplete
  frame, or bad checksums with no valid record after them) can only be a write that never
  returned, so it is truncated at the last good record and logged at WARNING. Anything else
  (corruption in an older segment, a valid record after a bad one, a sequence gap, a snapshot
  or an acknowledgement beyond the last record) raises :class:`JournalError`: the journal never
  guesses.
* ``read`` verifies every frame's checksum again (catch-up readers may read bytes long after
  open); ``replay`` and ``replay_frames``, meant for the restart that follows ``open``, re-check
  lengths and sequences but trust the checksums ``open`` has just verified. The open-time scan
  and ``replay_frames`` walk frames in Rust (``pink_kernel``, ADR 0010).
* ``compact`` removes whole segments whose records are all covered by the latest valid snapshot
  *and* acknowledged by every registered consumer, never the segment being appended to, then
  the snapshots older than the latest valid one.

Every file operation runs off the event loop: group commits on the segment writer's own Rust
thread, which never takes the GIL and wakes the loop through a socket when a batch is durable,
the rest through ``asyncio.to_thread``. Mutations run to completion even if their caller is
cancelled, so the in-memory state always matches the files. Linux only (``fdatasync``,
directory fsync).
"""

from __future__ import annotations

import asyncio
import bisect
import functools
import logging
import socket
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

import pink_kernel
from services.kernel import _segments as seg
from services.kernel._segments import JournalError

__all__ = ["Journal", "JournalError", "RecoveryReport", "Snapshot"]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class _Commit:
    """One batch with the writer thread: what it adds to the segments once it is durable."""

    done: asyncio.Future[None]
    first: int
    last: int
    size: int
    index: list[tuple[int, int]]
    next_index: int
    new_segment: Path | None


@dataclass(frozen=True)
class Snapshot:
    """Kernel state (opaque bytes) as of ``sequence``: replay resumes after it."""

    sequence: int
    data: bytes


@dataclass(frozen=True)
class RecoveryReport:
    """What ``Journal.open`` found: the durable end of the log and any tail it had to cut."""

    last_sequence: int
    snapshot_sequence: int | None
    truncated_bytes: int
    truncated_segment: str | None
    segments: int


@dataclass(frozen=True)
class _Recovered:
    segments: list[seg.Segment]
    writer: pink_kernel.SegmentWriter
    consumers: dict[str, int]
    report: RecoveryReport


def _recover(directory: Path, fsync: bool) -> _Recovered:
    """Scan, validate and repair the journal directory (runs in a worker thread)."""
    segments_dir, snapshots_dir = seg.make_dirs(directory, fsync=fsync)
    seg.remove_stale_tmp(snapshots_dir, fsync=fsync)
    seg.remove_stale_tmp(directory, fsync=fsync)
    found = seg.list_numbered(segments_dir, seg.SEGMENT_RE, "segments")
    segments: list[seg.Segment] = []
    torn: seg.ScanResult | None = None
    for i, (first, path) in enumerate(found):
        if segments and first != segments[-1].last + 1:
            raise JournalError(
                f"sequence gap: {path.name} starts at {first} but the previous segment ends at {segments[-1].last}"
            )
        result = seg.scan_segment(path, first)
        is_last = i == len(found) - 1
        if result.bad_offset is not None:
            if not is_last or result.bad_is_sequence:
                raise JournalError(f"corrupt record in {path} at offset {result.bad_offset}: {result.bad_reason}")
            seg.check_torn_tail(result)  # raises when a valid record follows the bad one
            torn = result
        if not is_last and result.segment.last < first:
            raise JournalError(f"segment {path} holds no record but is not the last segment")
        segments.append(result.segment)
    last_sequence = segments[-1].last if segments else 0
    snapshot = seg.latest_snapshot(snapshots_dir)
    if snapshot is not None and snapshot[0] > last_sequence:
        raise JournalError(
            f"snapshot {snapshot[0]} is beyond the last journal record {last_sequence}: durable records are missing"
        )
    consumers = seg.load_consumers(directory / "consumers.json")
    ahead = {name: acked for name, acked in consumers.items() if acked > last_sequence}
    if ahead:
        raise JournalError(
            f"consumers acknowledged records beyond the last journal record {last_sequence}: {ahead}; "
            "durable records are missing"
        )
    # Only now that nothing durable is missing is the torn tail cut off.
    truncated_bytes = 0 if torn is None else seg.truncate_tail(torn, fsync=fsync)
    writer = pink_kernel.SegmentWriter(segments[-1].path if segments else None)
    report = RecoveryReport(
        last_sequence=last_sequence,
        snapshot_sequence=None if snapshot is None else snapshot[0],
        truncated_bytes=truncated_bytes,
        truncated_segment=None if torn is None else torn.segment.path.name,
        segments=len(segments),
    )
    return _Recovered(segments=segments, writer=writer, consumers=consumers, report=report)


class Journal:
    """Append-only journal of one kernel instance (single writer; see the module docstring).

    Create it with :meth:`Journal.open`, never directly.
    """

    def __init__(self, directory: Path, segment_bytes: int, fsync: bool, recovered: _Recovered) -> None:
        self._dir = directory
        self._segments_dir = directory / "segments"
        self._snapshots_dir = directory / "snapshots"
        self._consumers_path = directory / "consumers.json"
        self._segment_bytes = segment_bytes
        self._fsync = fsync
        self._segments = recovered.segments
        self._firsts = [segment.first for segment in self._segments]
        self._writer = recovered.writer
        self._wake = socket.socket(fileno=self._writer.wake_fd())
        self._last = recovered.report.last_sequence
        #: Batches with the writer thread, by ticket (submission order), and the tail they leave.
        self._in_flight: dict[int, _Commit] = {}
        self._idle = asyncio.Event()
        self._idle.set()
        tail = self._segments[-1] if self._segments else None
        self._tail_last = self._last
        self._tail_exists = tail is not None
        self._tail_size = 0 if tail is None else tail.size
        self._tail_next_index = 0 if tail is None else tail.next_index
        self._report = recovered.report
        self._consumers: dict[str, int] = recovered.consumers
        self._meta_lock = asyncio.Lock()  # snapshots, consumer cursors, compaction
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        self._failure: str | None = None
        # Group commits run on the writer's own thread (never queued behind reads or snapshots,
        # never waiting for the GIL); it wakes the loop through ``_wake`` when one is done.
        asyncio.get_running_loop().add_reader(self._wake.fileno(), self._collect_written)

    @classmethod
    async def open(cls, directory: Path, *, segment_bytes: int = 64 * 1024 * 1024, fsync: bool = True) -> Journal:
        """Open (creating if needed) and recover the journal in ``directory``.

        ``fsync=False`` skips every fsync: only for tests and benchmarks of non-durable mode.
        """
        if segment_bytes < 1:
            raise ValueError(f"segment_bytes must be positive, got {segment_bytes}")
        directory = Path(directory)
        recovered = await asyncio.to_thread(_recover, directory, fsync)
        report = recovered.report
        logger.info(
            "journal %s opened: last sequence %d, %d segments, snapshot %s, %d consumers, %d bytes truncated",
            directory,
            report.last_sequence,
            report.segments,
            report.snapshot_sequence,
            len(recovered.consumers),
            report.truncated_bytes,
        )
        return cls(directory, segment_bytes, fsync, recovered)

    # ------------------------------------------------------------------------- state

    @property
    def last_sequence(self) -> int:
        """Sequence of the last durable record (0 when the journal is empty)."""
        return self._last

    @property
    def first_sequence(self) -> int:
        """Sequence of the oldest retained record (``last_sequence + 1`` when none is retained)."""
        return self._segments[0].first if self._segments else self._last + 1

    @property
    def recovery(self) -> RecoveryReport:
        return self._report

    @property
    def append_syncs(self) -> tuple[int, int]:
        """Data syncs and directory syncs the appends have made so far (one data sync per batch)."""
        return self._writer.data_syncs, self._writer.dir_syncs

    @property
    def consumers(self) -> Mapping[str, int]:
        """Registered consumer -> acknowledged sequence (a read-only snapshot of the cursors)."""
        return MappingProxyType(self._consumers)

    def _check_usable(self) -> None:
        if self._closed:
            raise JournalError(f"journal {self._dir} is closed")
        if self._failure is not None:
            raise JournalError(f"journal {self._dir} failed earlier and must be reopened: {self._failure}")

    async def _run_to_completion(self, coro: Coroutine[Any, Any, _T]) -> _T:
        """Run a mutation in its own task: cancelling the caller never interrupts it half way."""
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return await asyncio.shield(task)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled():
            # Retrieved here so an abandoned task does not warn; the caller received the error,
            # and commit failures are logged and make the journal unusable.
            task.exception()

    # ------------------------------------------------------------------------- append

    async def append(self, records: Sequence[tuple[int, bytes]]) -> None:
        """Group commit: write ``records`` with one write and one fsync; returns once they are durable.

        ``records`` continue the journal: ``last_sequence + 1``, ``+ 2``... or, while earlier
        appends are still syncing, the sequence after theirs. Appends are written in the order
        they are called. The batch is handed to the writer thread before this first suspends, and
        the journal's state follows the files whether or not the caller is still waiting:
        cancelling the caller never leaves them apart.
        """
        self._check_usable()
        if records:
            await self._submit(records)

    def _submit(self, records: Sequence[tuple[int, bytes]]) -> asyncio.Future[None]:
        """Frames ``records`` after the last submitted batch and queues them; the future is their commit."""
        first = self._tail_last + 1
        size = sum(len(payload) for _, payload in records) + seg.FRAME_SIZE * len(records)  # exact
        rotate = not self._tail_exists or (self._tail_size > 0 and self._tail_size + size > self._segment_bytes)
        base = 0 if rotate else self._tail_size
        buf, index, next_index = seg.encode_batch(records, first, base, 0 if rotate else self._tail_next_index)
        new_path = self._segments_dir / seg.segment_name(first) if rotate else None
        last = first + len(records) - 1
        try:
            ticket = self._writer.submit(buf, new_path, self._fsync)
        except RuntimeError as exc:  # the writer thread is closed or gone
            self._failure = f"append of records {first}..{last} could not be queued: {exc}"
            logger.exception("journal %s: %s; reopen to recover", self._dir, self._failure)
            raise JournalError(self._failure) from exc
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._in_flight[ticket] = _Commit(done, first, last, len(buf), index, next_index, new_path)
        self._idle.clear()
        self._tail_last = last
        self._tail_size = base + len(buf)
        self._tail_next_index = next_index
        self._tail_exists = True
        return done

    def _collect_written(self) -> None:
        """Reader callback of ``_wake``: applies the batches the writer thread has finished, in order."""
        while True:  # one byte per finished batch; drained until the socket is empty
            try:
                if not self._wake.recv(4096):
                    break
            except BlockingIOError:
                break
        for ticket, error in self._writer.completed():
            commit = self._in_flight.pop(ticket, None)
            if commit is None:
                logger.error("journal %s: the writer finished batch %d that nobody submitted", self._dir, ticket)
                continue
            if error is None and self._failure is None:
                self._apply(commit)
            elif self._failure is None:
                # The writer refuses every later batch unwritten: the files end at this one's
                # start or somewhere inside it, and only a reopen (recovery) may decide where.
                self._failure = f"append of records {commit.first}..{commit.last} failed: {error}"
                logger.error("journal %s: %s; reopen to recover", self._dir, self._failure, exc_info=error)
            if commit.done.done():
                continue  # its caller was cancelled; the journal's state is still up to date
            if self._failure is None:
                commit.done.set_result(None)
            else:
                commit.done.set_exception(JournalError(self._failure))
        if not self._in_flight:
            self._idle.set()

    def _apply(self, commit: _Commit) -> None:
        """A durable batch joins the segments (a new one if it was written to a new file)."""
        if commit.new_segment is not None:
            self._segments.append(
                seg.Segment(first=commit.first, path=commit.new_segment, last=commit.first - 1, size=0)
            )
            self._firsts.append(commit.first)
        current = self._segments[-1]
        for sequence, offset in commit.index:
            current.index_seqs.append(sequence)
            current.index_offsets.append(offset)
        current.next_index = commit.next_index
        current.size += commit.size
        current.last = commit.last
        self._last = commit.last

    # ------------------------------------------------------------------------- reads

    def _locate(self, sequence: int) -> tuple[seg.Segment, int, int]:
        """The retained segment holding ``sequence``, and the indexed (offset, sequence) to start from."""
        i = bisect.bisect_right(self._firsts, sequence) - 1
        if i < 0 or sequence < self.first_sequence:
            raise JournalError(
                f"compacted: record {sequence} is no longer retained (first retained is {self.first_sequence})"
            )
        segment = self._segments[i]
        offset, start = segment.locate(sequence)
        return segment, offset, start

    async def _chunks(
        self,
        after_sequence: int,
        limit: int | None,
        read: Callable[..., tuple[list[_T], int, int]],
        *,
        read_ahead: bool = False,
    ) -> AsyncIterator[list[_T]]:
        """Chunks of ``read(path, offset, end, expected, after=, upper=)`` (a ``_segments`` reader) over the log.

        With ``read_ahead`` the next chunk is already being read in a worker thread while the
        caller works on the one it was given (a restart's replay).
        """
        if after_sequence < 0:
            raise ValueError(f"after_sequence must be >= 0, got {after_sequence}")
        self._check_usable()
        upper = self._last if limit is None else min(self._last, after_sequence + limit)
        if after_sequence + 1 < self.first_sequence:
            raise JournalError(
                f"compacted: records after {after_sequence} are no longer retained "
                f"(first retained is {self.first_sequence})"
            )
        if after_sequence >= upper:
            return
        loop = asyncio.get_running_loop()
        segment, offset, expected = self._locate(after_sequence + 1)

        def start() -> tuple[asyncio.Future[tuple[list[_T], int, int]], seg.Segment] | None:
            """Submits the read of the next chunk (None when everything up to ``upper`` was read)."""
            nonlocal segment, offset, expected
            while expected <= upper:
                if segment.removed:
                    raise JournalError(f"compacted: segment {segment.path.name} was removed while it was being read")
                if offset >= segment.size:
                    previous = segment
                    segment, offset, expected = self._locate(expected)
                    if segment is previous:
                        raise JournalError(f"internal error: record {expected} is not in {segment.path.name}")
                    continue
                call = functools.partial(
                    read, segment.path, offset, segment.size, expected, after=after_sequence, upper=upper
                )
                return loop.run_in_executor(None, call), segment
            return None

        pending = start()
        try:
            while pending is not None:
                future, reading = pending
                try:
                    records, offset, expected = await future
                except FileNotFoundError as exc:
                    raise JournalError(f"compacted: segment {reading.path.name} was removed while it was read") from exc
                except OSError as exc:
                    raise JournalError(f"reading {reading.path} failed: {exc}") from exc
                pending = start() if read_ahead else None
                if records:
                    yield records
                if not read_ahead:
                    pending = start()
        finally:
            if pending is not None:
                pending[0].cancel()  # a read ahead nobody wants (the thread finishes it, unobserved)

    async def read(self, after_sequence: int, limit: int) -> list[tuple[int, bytes]]:
        """Durable records with sequence > ``after_sequence``, at most ``limit`` of them (for catch-up readers).

        Every frame's checksum is verified again: a catch-up reader may read bytes long after open.
        """
        if limit < 1:
            raise ValueError(f"limit must be positive, got {limit}")
        out: list[tuple[int, bytes]] = []
        async for chunk in self._chunks(after_sequence, limit, functools.partial(seg.read_chunk, verify=True)):
            out.extend(chunk)
        return out

    async def replay(self, after_sequence: int) -> AsyncIterator[tuple[int, bytes]]:
        """Every record durable when the replay starts with sequence > ``after_sequence``, read in chunks.

        For restart right after :meth:`open`, which has just verified every frame's checksum: replay
        re-checks lengths and sequences but not checksums (a third of its cost); use :meth:`read`
        for bytes that may have rotted on disk since open.
        """
        async for chunk in self._chunks(after_sequence, None, functools.partial(seg.read_chunk, verify=False)):
            for record in chunk:
                yield record

    async def replay_frames(self, after_sequence: int) -> AsyncIterator[seg.FrameBlock]:
        """What :meth:`replay` yields, as blocks of raw frames in order (one per large read).

        For a restart: each block goes to ``Kernel.replay_frames`` as it was read, with no
        per-record step in Python, while the next block is read ahead in a worker thread.
        Lengths and sequences are checked here, checksums are trusted as in :meth:`replay`.
        """
        read = functools.partial(seg.read_frames, chunk_bytes=seg.REPLAY_CHUNK)
        async for blocks in self._chunks(after_sequence, None, read, read_ahead=True):
            for block in blocks:
                yield block

    # ------------------------------------------------------------------------- snapshots

    async def latest_snapshot(self) -> Snapshot | None:
        """The newest snapshot with a valid checksum (damaged newer ones are logged and skipped)."""
        self._check_usable()
        try:
            found = await asyncio.to_thread(seg.latest_snapshot, self._snapshots_dir)
        except OSError as exc:
            raise JournalError(f"reading snapshots in {self._snapshots_dir} failed: {exc}") from exc
        return None if found is None else Snapshot(sequence=found[0], data=found[1])

    async def write_snapshot(self, sequence: int, data: bytes) -> None:
        """Store ``data`` as the state as of ``sequence`` (<= ``last_sequence``), atomically."""
        self._check_usable()
        if not 0 <= sequence <= self._last:
            raise JournalError(f"snapshot sequence {sequence} is outside 0..{self._last} (the durable records)")
        await self._run_to_completion(self._write_snapshot(sequence, bytes(data)))

    async def _write_snapshot(self, sequence: int, data: bytes) -> None:
        async with self._meta_lock:
            try:
                await asyncio.to_thread(seg.write_snapshot, self._snapshots_dir, sequence, data, fsync=self._fsync)
            except OSError as exc:
                raise JournalError(f"writing snapshot {sequence} in {self._snapshots_dir} failed: {exc}") from exc

    # ------------------------------------------------------------------------- consumers

    async def register_consumer(self, name: str) -> int:
        """Register a log consumer (idempotent; a new one starts at 0); returns its acknowledged sequence."""
        self._check_usable()
        if not name:
            raise ValueError("a consumer needs a non-empty name")
        return await self._run_to_completion(self._set_cursor(name, 0, register=True))

    async def ack(self, name: str, sequence: int) -> int:
        """Record that ``name`` processed everything up to ``sequence``; returns its acknowledged sequence.

        Monotonic: a lower acknowledgement is ignored and the current one returned.
        """
        self._check_usable()
        if sequence > self._last:
            raise JournalError(f"consumer {name!r} cannot acknowledge {sequence}: the last record is {self._last}")
        return await self._run_to_completion(self._set_cursor(name, sequence, register=False))

    async def _set_cursor(self, name: str, sequence: int, *, register: bool) -> int:
        async with self._meta_lock:
            current = self._consumers.get(name)
            if current is None and not register:
                raise JournalError(f"unknown consumer {name!r}: register it first")
            if current is not None and (register or sequence <= current):
                return current
            updated = {**self._consumers, name: sequence}
            try:
                await asyncio.to_thread(seg.save_consumers, self._consumers_path, updated, fsync=self._fsync)
            except OSError as exc:
                raise JournalError(f"persisting consumer cursors to {self._consumers_path} failed: {exc}") from exc
            self._consumers = updated
            return sequence

    # ------------------------------------------------------------------------- compaction and close

    async def compact(self) -> int:
        """Remove segments covered by the latest snapshot and every consumer's ack; returns bytes freed."""
        self._check_usable()
        return await self._run_to_completion(self._compact())

    async def _compact(self) -> int:
        async with self._meta_lock:
            snapshot = await self.latest_snapshot()
            if snapshot is None:
                return 0
            bound = min([snapshot.sequence, *self._consumers.values()])
            # One synchronous step: no append, read or close sees the list half-edited.
            count = 0
            while count < len(self._segments) - 1 and self._segments[count].last <= bound:
                count += 1
            victims = self._segments[:count]
            del self._segments[:count]
            del self._firsts[:count]
            for victim in victims:
                victim.removed = True
            try:
                freed = await asyncio.to_thread(
                    seg.remove_files,
                    [victim.path for victim in victims],
                    self._segments_dir,
                    self._snapshots_dir,
                    snapshot.sequence,
                    fsync=self._fsync,
                )
            except OSError as exc:
                raise JournalError(f"compacting {self._dir} failed: {exc}") from exc
            if victims:
                logger.info(
                    "journal %s: compacted %d segments up to sequence %d (snapshot %d), %d bytes freed",
                    self._dir,
                    len(victims),
                    victims[-1].last,
                    snapshot.sequence,
                    freed,
                )
            return freed

    async def close(self) -> None:
        """Wait for mutations in flight, then release the segment file (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if self._tasks:
            # Their outcome already went to their callers (or was logged): only wait for them here.
            await asyncio.wait(list(self._tasks))
        # Batches whose callers were cancelled are still with the writer thread: collect them.
        await self._idle.wait()
        asyncio.get_running_loop().remove_reader(self._wake.fileno())
        await asyncio.to_thread(self._writer.close)
        self._wake.close()
        logger.info("journal %s: closed at sequence %d", self._dir, self._last)
