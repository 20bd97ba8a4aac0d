"""Fan-out of committed records to WatchRecords and WatchSlots subscribers.

The writer publishes each committed batch with ``put_nowait`` into every subscriber's
bounded queue and never waits. A subscriber whose queue is full is marked *lagging*: its
queue is cleared and it resumes from its own cursor, reading the journal (records) or a
fresh full view (slots) until it is live again. A slow consumer therefore costs the writer
nothing and loses nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

from services.common.proto import log_pb2
from services.kernel.core import Committed, KernelCore
from services.kernel.journal import Journal, JournalError

# A lagging subscriber finds this in its queue instead of the records it missed.
_LAGGED = object()


class CompactedError(Exception):
    """The journal no longer holds the records a subscriber asked for."""


@dataclass(eq=False)
class _Subscriber:
    queue: asyncio.Queue[object]
    start: int
    lagged: bool = field(default=False)


class RecordFeed:
    """Live fan-out of committed LogRecords."""

    def __init__(self, core: KernelCore, journal: Journal, buffer: int) -> None:
        self._core = core
        self._journal = journal
        self._buffer = buffer
        self._subscribers: set[_Subscriber] = set()
        core.on_commit(self._publish)

    def _publish(self, committed: Sequence[Committed]) -> None:
        for subscriber in self._subscribers:
            if subscriber.lagged:
                continue
            for item in committed:
                try:
                    subscriber.queue.put_nowait(item)
                except asyncio.QueueFull:
                    subscriber.lagged = True
                    while not subscriber.queue.empty():
                        subscriber.queue.get_nowait()
                    subscriber.queue.put_nowait(_LAGGED)
                    break

    def _subscribe(self) -> _Subscriber:
        # The last *published* sequence: records up to it are durable and will not be published
        # again; later ones will reach this subscriber's queue.
        subscriber = _Subscriber(asyncio.Queue(maxsize=self._buffer + 1), start=self._core.committed_sequence)
        self._subscribers.add(subscriber)
        return subscriber

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    async def records(self, after_sequence: int) -> AsyncIterator[log_pb2.LogRecord]:
        """Every record after ``after_sequence``: from the journal while behind, then live."""
        cursor = after_sequence
        while True:
            subscriber = self._subscribe()
            try:
                # Records up to the subscription point are durable in the journal.
                while cursor < subscriber.start:
                    try:
                        chunk = await self._journal.read(cursor, 1000)
                    except JournalError as error:
                        raise CompactedError(str(error)) from error
                    if not chunk:
                        msg = (
                            f"the journal has no record after {cursor} (first retained {self._journal.first_sequence})"
                        )
                        raise CompactedError(msg)
                    for sequence, payload in chunk:
                        if sequence > subscriber.start:
                            break
                        cursor = sequence
                        yield log_pb2.LogRecord.FromString(payload)
                while True:
                    item = await subscriber.queue.get()
                    if item is _LAGGED:
                        break
                    if not isinstance(item, Committed) or item.record is None:
                        continue
                    if item.record.sequence <= cursor:
                        continue
                    cursor = item.record.sequence
                    yield item.record
            finally:
                self._subscribers.discard(subscriber)

    async def changes(self) -> AsyncIterator[Committed | None]:
        """Live committed records; ``None`` when the subscriber fell behind (resynchronise)."""
        while True:
            subscriber = self._subscribe()
            try:
                while True:
                    item = await subscriber.queue.get()
                    if item is _LAGGED:
                        yield None
                        break
                    if isinstance(item, Committed):
                        yield item
            finally:
                self._subscribers.discard(subscriber)
