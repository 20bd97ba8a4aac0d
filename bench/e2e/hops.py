"""Where an intent's time goes, from the kernel's own log: the intent's record, then the
records of the venue events of the order it placed (each with the exchange's time and the
venue service's receive time).

All clocks are the same host's wall clock (the client, the kernel, the venue service and the
simulator run on one machine); the exchange's times are BingX milliseconds, so the two hops
that meet at the exchange time carry up to 1 ms of rounding each (their sum does not).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from google.protobuf import timestamp_pb2

from services.common.proto import log_pb2, venue_event_pb2

#: The hops of one intent, in order; their sum is the client's latency.
HOPS = (
    "client_to_kernel_journaled",
    "kernel_to_exchange_fill",
    "exchange_to_venue_service",
    "venue_service_to_kernel_journaled",
    "kernel_to_client_answer",
)
_DONE = frozenset({venue_event_pb2.VENUE_EVENT_KIND_FILL})


class HopError(Exception):
    """The log does not hold what an intent's breakdown needs (a record missing or out of order)."""


@dataclass(frozen=True)
class Sent:
    """One intent as the client saw it: its id and the wall-clock ns it was sent and answered."""

    intent_id: str
    sent_ns: int
    answered_ns: int


@dataclass(frozen=True)
class _Order:
    intent_record_ns: int
    fill: venue_event_pb2.VenueEvent | None = None
    fill_record_ns: int = 0
    #: The fill reached the kernel on the venue's execution stream (else in the PlaceOrder answer).
    fill_streamed: bool = False


def _ns(stamp: timestamp_pb2.Timestamp) -> int:
    return stamp.ToNanoseconds()


def _orders(records: Iterable[log_pb2.LogRecord]) -> dict[str, tuple[str, _Order]]:
    """intent id -> (client order id, the order's intent record time and first accepted FILL)."""
    by_order: dict[str, _Order] = {}
    intent_of: dict[str, str] = {}
    for record in records:
        if not record.outcome.accepted:
            continue
        payload = record.input.WhichOneof("payload")
        if payload == "intent":
            for command in record.outcome.commands:
                if command.WhichOneof("command") == "place_order":
                    cid = command.place_order.client_order_id
                    by_order[cid] = _Order(_ns(record.record_time))
                    intent_of[cid] = record.input.intent.intent_id
        elif payload == "venue_event":
            event = record.input.venue_event
            order = by_order.get(event.client_order_id)
            if order is not None and order.fill is None and event.kind in _DONE:
                by_order[event.client_order_id] = _Order(
                    order.intent_record_ns, event, _ns(record.record_time), bool(record.venue_stream_position)
                )
    return {intent_of[cid]: (cid, order) for cid, order in by_order.items()}


def breakdown(sent: Sequence[Sent], records: Iterable[log_pb2.LogRecord]) -> list[dict[str, float]]:
    """Per intent, each hop of :data:`HOPS` in microseconds, ``total``, and ``fill_streamed`` (1.0
    when the fill reached the kernel on the execution stream, 0.0 in the PlaceOrder answer)."""
    orders = _orders(records)
    rows = []
    for item in sent:
        found = orders.get(item.intent_id)
        if found is None:
            raise HopError(f"intent {item.intent_id}: no accepted record placing an order in the log")
        cid, order = found
        if order.fill is None:
            raise HopError(f"intent {item.intent_id}: order {cid} has no FILL record in the log")
        exchange = _ns(order.fill.exchange_time)
        received = _ns(order.fill.receive_time)
        points = (item.sent_ns, order.intent_record_ns, exchange, received, order.fill_record_ns, item.answered_ns)
        hops = {name: (points[i + 1] - points[i]) / 1000 for i, name in enumerate(HOPS)}
        hops["total"] = (item.answered_ns - item.sent_ns) / 1000
        hops["fill_streamed"] = float(order.fill_streamed)
        rows.append(hops)
    return rows
