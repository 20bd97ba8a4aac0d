"""The execution log: every execution report once, in order, resumable by position.

Reports come from the user stream, from REST answers (place, cancel, query) and from the
gap-fill; :meth:`ExecutionLog.emit` drops any whose ``venue_event_id`` is known already (the
venue identity: order id + what happened, see ``services.venue.events``), so a fact seen on two
paths reaches the kernel once. Each report keeps its exchange time and its receive time (the
adapter's clock when the fact arrived) side by side in the event (``exchange_time``,
``receive_time``); a report built without a receive time gets the time it reached the log.

Positions are ``"<epoch>-<sequence>"``: ordered within one process. A position of an earlier
process (another epoch) replays everything this process holds, which starts with the
start-up gap-fill; the kernel recognises repeats by ``venue_event_id``. A position older
than the retained window is refused (:class:`PositionLostError`), as is a malformed one.

One owner: everything runs on the service's event loop; nothing here awaits while it changes
state, so no lock is needed.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from services.common.logging import get_logger
from services.common.proto import venue_event_pb2, venue_service_pb2
from services.venue.metrics import VenueMetrics

__all__ = ["ExecutionLog", "InvalidPositionError", "OrderFacts", "PositionLostError"]

log = get_logger(__name__)

Kind = venue_event_pb2.VenueEventKind
_TERMINAL = frozenset(
    {
        venue_event_pb2.VENUE_EVENT_KIND_FILL,
        venue_event_pb2.VENUE_EVENT_KIND_CANCELLED,
        venue_event_pb2.VENUE_EVENT_KIND_EXPIRED,
        venue_event_pb2.VENUE_EVENT_KIND_ORDER_REJECTED,
    }
)
_FILLS = frozenset({venue_event_pb2.VENUE_EVENT_KIND_PARTIAL_FILL, venue_event_pb2.VENUE_EVENT_KIND_FILL})
#: Orders whose facts are remembered (answers to PlaceOrder/CancelOrder, gap detection).
_ORDER_MEMORY = 50_000


class PositionLostError(Exception):
    """The position is older than what the log retains."""


class InvalidPositionError(Exception):
    """The text is not a position of this service."""


@dataclass
class OrderFacts:
    """What the log holds about one order."""

    symbol: str
    client_order_id: str
    venue_order_id: str
    events: list[venue_event_pb2.VenueEvent] = field(default_factory=list)
    cumulative: Decimal = Decimal(0)
    accepted: bool = False
    terminal: bool = False


@dataclass(frozen=True)
class Entry:
    sequence: int
    response: venue_service_pb2.StreamExecutionsResponse
    received_ms: int
    source: str


class ExecutionLog:
    def __init__(self, size: int, metrics: VenueMetrics) -> None:
        self.epoch = f"{time.time_ns():x}"
        self._size = size
        self._metrics = metrics
        self._entries: deque[Entry] = deque()
        self._next = 1
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._orders: OrderedDict[str, OrderFacts] = OrderedDict()
        self._by_venue_id: dict[str, str] = {}
        self._changed = asyncio.Event()

    # ------------------------------------------------------------------ writing

    def emit(self, events: Iterable[venue_event_pb2.VenueEvent], *, source: str) -> list[venue_event_pb2.VenueEvent]:
        """Appends the events not seen before, in order; returns those appended."""
        now = time.time_ns() // 1_000_000
        added = []
        for event in events:
            if not event.HasField("receive_time"):
                event.receive_time.FromMilliseconds(now)
            received = event.receive_time.ToMilliseconds()
            if event.venue_event_id in self._seen:
                self._metrics.duplicates.inc()
                continue
            self._remember(event.venue_event_id)
            self._record(event)
            entry = venue_service_pb2.StreamExecutionsResponse(event=event, position=self.position(self._next))
            self._entries.append(Entry(self._next, entry, received, source))
            self._next += 1
            if len(self._entries) > self._size:
                self._entries.popleft()
            self._metrics.executions.labels(source).inc()
            log.info(
                "execution_report",
                source=source,
                kind=Kind.Name(event.kind),
                client_order_id=event.client_order_id,
                venue_order_id=event.venue_order_id,
                venue_event_id=event.venue_event_id,
                exchange_ms=event.exchange_time.ToMilliseconds(),
                received_ms=received,
            )
            added.append(event)
        if added:
            changed, self._changed = self._changed, asyncio.Event()
            changed.set()
        return added

    def _remember(self, event_id: str) -> None:
        self._seen[event_id] = None
        while len(self._seen) > 4 * self._size:
            self._seen.popitem(last=False)

    def _record(self, event: venue_event_pb2.VenueEvent) -> None:
        key = event.client_order_id or f"#{event.venue_order_id}"
        facts = self._orders.get(key)
        if facts is None:
            facts = self._orders[key] = OrderFacts(event.symbol, event.client_order_id, event.venue_order_id)
            while len(self._orders) > _ORDER_MEMORY:
                _, dropped = self._orders.popitem(last=False)
                self._by_venue_id.pop(dropped.venue_order_id, None)
        if event.venue_order_id and not facts.venue_order_id:
            facts.venue_order_id = event.venue_order_id
        if facts.venue_order_id:
            self._by_venue_id[facts.venue_order_id] = key
        facts.events.append(event)
        if event.kind == venue_event_pb2.VENUE_EVENT_KIND_ORDER_ACCEPTED or event.kind in _FILLS:
            facts.accepted = facts.accepted or event.kind == venue_event_pb2.VENUE_EVENT_KIND_ORDER_ACCEPTED
        if event.kind in _FILLS:
            facts.cumulative = max(facts.cumulative, Decimal(event.cumulative_quantity.value))
        if event.kind in _TERMINAL:
            facts.terminal = True

    # ------------------------------------------------------------------ reading

    def known(self, event_id: str) -> bool:
        """Whether a report with this ``venue_event_id`` is in the log already."""
        return event_id in self._seen

    def facts(self, *, client_order_id: str = "", venue_order_id: str = "") -> OrderFacts | None:
        if client_order_id:
            found = self._orders.get(client_order_id)
            if found is not None:
                return found
        key = self._by_venue_id.get(venue_order_id) if venue_order_id else None
        return self._orders.get(key) if key is not None else None

    def working_orders(self) -> list[OrderFacts]:
        """Orders the log saw accepted (or partly filled) and not finished."""
        return [facts for facts in self._orders.values() if facts.venue_order_id and not facts.terminal]

    def position(self, sequence: int) -> str:
        return f"{self.epoch}-{sequence:012d}"

    @property
    def size(self) -> int:
        return len(self._entries)

    def _start_after(self, after: str) -> int:
        """Sequence of the first entry to send for a resume after ``after``."""
        if not after:
            return self._next
        epoch, _, number = after.partition("-")
        if not number.isdigit() or not epoch:
            raise InvalidPositionError(f"not a position of this service: {after!r}")
        first = self._entries[0].sequence if self._entries else self._next
        if epoch != self.epoch:
            if first > 1:
                raise PositionLostError(f"position {after!r} is of an earlier process; the log no longer starts at 1")
            log.info("execution_stream_replay_after_restart", after=after, epoch=self.epoch)
            return 1
        start = int(number) + 1
        if start > self._next:
            raise InvalidPositionError(f"position {after!r} is ahead of the log")
        if start < first:
            raise PositionLostError(f"position {after!r} is older than the retained log (first {first})")
        return start

    async def follow(self, after: str) -> AsyncIterator[venue_service_pb2.StreamExecutionsResponse]:
        """Reports after ``after`` ("" = from now), then every new one, for ever."""
        sequence = self._start_after(after)
        while True:
            changed = self._changed
            while sequence < self._next:
                first = self._entries[0].sequence if self._entries else self._next
                if sequence < first:
                    raise PositionLostError(f"the reader fell behind the retained log at {sequence}")
                yield self._entries[sequence - first].response
                sequence += 1
            await changed.wait()

    async def wait_for(self, predicate: Callable[[], bool], seconds: float) -> bool:
        """Whether ``predicate()`` held within ``seconds`` (checked after every append)."""
        try:
            async with asyncio.timeout(seconds):
                while not predicate():
                    await self._changed.wait()
        except TimeoutError:
            return predicate()
        return True
