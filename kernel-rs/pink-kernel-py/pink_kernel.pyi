"""Typed interface of the PINK kernel binding (the compiled module ``pink_kernel``).

Every message crosses the boundary as serialized ``pink.v1`` protobuf bytes:
``KernelConfig`` and ``KernelSnapshot`` in, ``KernelInput`` in and ``Outcome`` out,
``KernelView`` and ``KernelSnapshot`` out.
"""

import os
from collections.abc import Sequence
from typing import final

__all__ = ["DecodeError", "Kernel", "KernelError", "ReplayError", "SegmentWriter", "__version__", "scan_frames"]

__version__: str

class KernelError(ValueError):
    """A refused configuration or snapshot, a failed invariant check, or a poisoned kernel.

    ``violations`` holds every ``(field, description)`` pair when the error is about
    fields (empty otherwise).
    """

    violations: tuple[tuple[str, str], ...]

class ReplayError(ValueError):
    """A journal record did not decode, was out of sequence or did not reproduce its recorded outcome."""

class DecodeError(ValueError):
    """The bytes given to ``Kernel.step`` are not a serialized ``pink.v1.KernelInput``; nothing changed."""

@final
class Kernel:
    """The deterministic PINK kernel.

    Safe to share between threads (calls are serialized by a lock). After an internal
    error (a panic in the core) the kernel is poisoned: every later call raises
    ``KernelError``.
    """

    def __new__(cls, config: bytes) -> Kernel:
        """A fresh kernel from a serialized ``pink.v1.KernelConfig``; raises ``KernelError`` listing every violation."""

    def step(self, input: bytes) -> bytes:
        """Apply one serialized ``pink.v1.KernelInput`` and return the serialized ``pink.v1.Outcome``.

        Field violations come back as an ``INVALID_INPUT`` outcome; bytes that are not a
        ``KernelInput`` raise ``DecodeError``. A rejected input never changes the state.
        """

    def view(self, slots: Sequence[int], *, account: bool = False, control: bool = False) -> bytes:
        """Post-state as a serialized ``pink.v1.KernelView``.

        Holds the given slots (unknown ids skipped, valuations derived from the last mark
        prices), and the account and control when asked for.
        """

    def post_state(self) -> bytes:
        """Serialized ``pink.v1.KernelView`` of what the last ``step`` touched.

        Changed slots plus every slot of a revalued symbol; the account and control when
        they changed; empty after a rejection.
        """

    def replay(self, records: Sequence[bytes]) -> str:
        """Re-apply serialized ``pink.v1.LogRecord`` journal records in order.

        Each input must reproduce its recorded outcome exactly. Returns the last non-empty
        ``venue_stream_position``. Raises ``ReplayError`` on a record that does not decode,
        is out of sequence or diverges; the kernel must then be discarded.
        """

    def replay_frames(
        self, frames: bytes, start: int = 0, end: int | None = None, *, verify: bool = True
    ) -> tuple[int, str]:
        """Re-apply the journal segment frames in ``frames[start:end]`` as ``replay`` does their records.

        Whole frames only (``u32 length | u32 crc32(sequence bytes + payload) | u64 sequence |
        payload``), the first carrying ``last_sequence + 1``; each frame's length and sequence are
        checked, and its checksum when ``verify``. Returns ``(records replayed, last non-empty
        venue_stream_position)``. Runs without the GIL. Raises ``ReplayError`` at the first bad
        frame or record (the kernel must then be discarded), ``ValueError`` when ``start:end`` is
        outside ``frames``.
        """

    def snapshot(self) -> bytes:
        """The whole state as a serialized ``pink.v1.KernelSnapshot``."""

    @staticmethod
    def restore(snapshot: bytes) -> Kernel:
        """A kernel from a serialized ``pink.v1.KernelSnapshot``; raises ``KernelError`` when it is invalid."""

    def state_hash(self) -> str:
        """Hex SHA-256 of the canonical snapshot: equal states have equal hashes."""

    @property
    def last_sequence(self) -> int:
        """Sequence of the last accepted input (0 before the first)."""

    def check_invariants(self) -> None:
        """Check every kernel invariant; raises ``KernelError`` with the reason when one fails."""

def scan_frames(
    buf: bytes,
    expected: int,
    *,
    start: int = 0,
    verify: bool = True,
    index_at: int = ...,
    stride: int = 65536,
) -> tuple[int, int, list[tuple[int, int]], int, tuple[str, int, str] | None]:
    """Validate the journal segment frames of ``buf[start:]``.

    Sequences must be contiguous from ``expected``; checksums are checked when ``verify``.

    Returns ``(end, expected, index, index_at, stop)``: the offset after the last good frame, the
    sequence due there, sparse index entries ``(sequence, offset)`` (the first frame at or after
    ``index_at``, then one at least ``stride`` bytes after the previous; none by default), the
    offset the next entry is due from, and why the scan stopped before the end: ``None`` or
    ``(kind, offset, reason)`` with kind ``"incomplete"``, ``"checksum"`` or ``"sequence"``.
    Offsets are in ``buf``. Runs without the GIL.
    """

@final
class SegmentWriter:
    """The journal's group commits on a thread of its own that never takes the GIL (ADR 0012).

    Jobs run in submission order: ``data`` appended to the current segment (or to the new file
    ``segment``, created exclusively, after which the previous one is closed), then an
    ``fdatasync`` (and, for a new segment, a directory fsync) if ``sync``.
    """

    def __new__(cls, current: str | os.PathLike[str] | None = None) -> SegmentWriter:
        """``current``: the existing segment to append to; without one the first job names a new one."""

    def wake_fd(self) -> int:
        """A non-blocking socket descriptor that becomes readable when results are ready (one byte
        per finished job). The caller owns it from then on; a second call raises ``RuntimeError``."""

    def submit(self, data: bytes, segment: str | os.PathLike[str] | None, sync: bool) -> int:
        """Queues a copy of ``data``; the job's ticket. ``RuntimeError`` once closed or stopped."""

    def completed(self) -> list[tuple[int, OSError | None]]:
        """The jobs finished since the last call, in order: ``(ticket, None)`` or ``(ticket, error)``."""

    def close(self) -> None:
        """Finishes queued jobs, stops the thread, closes the segment (idempotent; blocks, without the GIL)."""

    @property
    def data_syncs(self) -> int:
        """``fdatasync`` calls made so far."""

    @property
    def dir_syncs(self) -> int:
        """Directory fsyncs (after creating a segment) made so far."""
