"""Recognising the second copy of a venue fact before it reaches the kernel.

A command's answer and the execution stream carry the same facts (a placement's
acknowledgement and fill come back both ways, usually within a millisecond of each other).
:class:`EventCopies` remembers the venue events submitted through the venue link, by identity
(client order id, venue order id, venue event id) and exact bytes apart from ``receive_time``
(the venue service's clock when that copy arrived, which differs between the copies of one
fact): one still being judged, and the last ``memory`` ones the kernel accepted. An exact
copy of an accepted event is not submitted again; a copy of one being judged waits for that
judgement first.

This only saves the kernel work and the operators noise: the kernel stays the judge of every
fact. A copy whose original was refused, a forgotten one, or one that differs in any other
byte is submitted as usual (and refused as DUPLICATE_EVENT, with its anomaly, if it is one).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict

from services.common.proto import venue_event_pb2
from services.kernel.core import Committed

__all__ = ["EventCopies"]

_Identity = tuple[str, str, str]


def _identity(event: venue_event_pb2.VenueEvent) -> _Identity:
    return (event.client_order_id, event.venue_order_id, event.venue_event_id)


def _fact(event: venue_event_pb2.VenueEvent) -> bytes:
    """The event's bytes without its receive time: equal for every copy of one fact."""
    if not event.HasField("receive_time"):
        return event.SerializeToString(deterministic=True)
    fact = venue_event_pb2.VenueEvent()
    fact.CopyFrom(event)
    fact.ClearField("receive_time")
    return fact.SerializeToString(deterministic=True)


def _accepted(answer: asyncio.Future[Committed]) -> bool:
    return not answer.cancelled() and answer.exception() is None and answer.result().outcome.accepted


class EventCopies:
    """See the module docstring. Single event loop; not thread-safe."""

    def __init__(self, memory: int) -> None:
        if memory < 1:
            raise ValueError("memory must be >= 1")
        self._memory = memory
        self._accepted: OrderedDict[_Identity, bytes] = OrderedDict()
        self._judging: dict[_Identity, tuple[bytes, asyncio.Future[Committed]]] = {}
        self.skipped = 0

    def track(self, event: venue_event_pb2.VenueEvent, answer: asyncio.Future[Committed]) -> None:
        """``event`` was submitted and ``answer`` is its judgement."""
        if not event.venue_event_id:
            return
        identity = _identity(event)
        data = _fact(event)
        self._judging[identity] = (data, answer)
        answer.add_done_callback(lambda done: self._judged(identity, data, done))

    def _judged(self, identity: _Identity, data: bytes, answer: asyncio.Future[Committed]) -> None:
        judging = self._judging.get(identity)
        if judging is not None and judging[1] is answer:
            del self._judging[identity]
        if _accepted(answer):
            self._accepted[identity] = data
            self._accepted.move_to_end(identity)
            if len(self._accepted) > self._memory:
                self._accepted.popitem(last=False)

    async def is_copy(self, event: venue_event_pb2.VenueEvent) -> bool:
        """True when ``event`` is an exact copy (but for its receive time) of one the kernel accepted.

        Counted in ``skipped``.
        """
        if not event.venue_event_id:
            return False
        identity = _identity(event)
        data = _fact(event)
        judging = self._judging.get(identity)
        if judging is not None and judging[0] == data:
            # The original is being judged right now: its judgement decides (asyncio.wait never raises).
            await asyncio.wait([judging[1]])
        if self._accepted.get(identity) != data:
            return False
        self.skipped += 1
        return True
