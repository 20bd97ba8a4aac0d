"""VenueEvents from BingX facts, with the same ``venue_event_id`` whichever path delivered them.

Identities (the venue's order id + what happened), so a fact from the stream, a REST answer
and the gap-fill is one fact:

* ``<orderId>:new`` — accepted; ``<orderId>:closed`` — cancelled or expired (REST spells an
  expired remainder CANCELLED, the stream EXPIRED: one fact);
* ``<orderId>:fill:<cumulative>`` — an execution, by the order's cumulative quantity after it
  (the stream's ``z``; the running sum of the order's REST fills). Neither the stream nor
  ``allFillOrders`` carries a trade id BingX documents, but cumulative quantities are unique
  per order and identical on both paths;
* ``<orderId>:failed`` — FAILED after acceptance; ``<clientOrderId>:rejected`` — a placement
  refused; ``<clientOrderId>:notfound`` — the venue has no such order;
* ``<key>:cancel-rejected`` — a cancel refused (one per cancel command);
* ``<orderId>:unknown:<status>`` — UNKNOWN: a status this adapter does not know (the raw
  status, also in ``reason``; the stream's update type joins it when only the pair is
  unknown). Never an acceptance or a fill: the caller queries the order.

Exchange times come from BingX (event, trade, order or answer time); fees flip BingX's sign
(negative = paid) to the contract's (positive = paid). ``receive_time`` is the adapter's clock
when the fact arrived (the stream message, the REST answer): beside the exchange time, never
instead of it, and not part of the identity — two copies of one fact share ``venue_event_id``
whatever their receive times.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from decimal import Decimal

from google.protobuf import timestamp_pb2

from services.common.proto import types_pb2, venue_event_pb2
from services.venue.bingx.wire import FillRecord, OrderRecord, StreamOrderUpdate, WireError

__all__ = [
    "accepted",
    "closed",
    "dec",
    "event_id",
    "fill_events",
    "order_events",
    "rejected",
    "stream_event",
    "timestamp",
    "unknown",
]

VenueEvent = venue_event_pb2.VenueEvent
_MAX_ID = 64
_MAX_REASON = 256
_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_.:-]")


def dec(value: Decimal) -> types_pb2.Decimal:
    """Exact decimal text, no exponent, no trailing zeros (``0`` stays ``0``)."""
    text = f"{value.normalize():f}" if value else "0"
    return types_pb2.Decimal(value=text)


def timestamp(ms: int) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromMilliseconds(ms)
    return stamp


def event_id(text: str) -> str:
    """``text`` when it fits the contract's 64 characters, else a stable digest of it."""
    if len(text) <= _MAX_ID:
        return text
    return "h" + hashlib.sha256(text.encode()).hexdigest()[:40]


def _id_part(text: str) -> str:
    """``text`` in the characters of a contract id (A-Z a-z 0-9 _ . : -); ``none`` when empty."""
    return _ID_UNSAFE.sub("_", text) or "none"


def _reason(text: str) -> str:
    printable = "".join(ch if ch.isprintable() else " " for ch in text)
    return printable[:_MAX_REASON]


def accepted(order: OrderRecord, *, exchange_ms: int, received_ms: int) -> VenueEvent:
    return VenueEvent(
        kind=venue_event_pb2.VENUE_EVENT_KIND_ORDER_ACCEPTED,
        client_order_id=order.client_order_id,
        venue_order_id=str(order.order_id),
        venue_event_id=f"{order.order_id}:new",
        symbol=order.symbol,
        exchange_time=timestamp(exchange_ms),
        receive_time=timestamp(received_ms),
    )


def unknown(
    client_order_id: str,
    order_id: int,
    symbol: str,
    raw_status: str,
    *,
    execution: str = "",
    exchange_ms: int,
    received_ms: int,
) -> VenueEvent:
    """UNKNOWN: BingX reported a status (or stream update type) this adapter does not know.

    ``reason`` carries what BingX said; nothing is assumed about the order. ``execution`` is the
    stream's update type when the status is known but the pair is not.
    """
    said = f"{execution}/{raw_status}" if execution else raw_status
    return VenueEvent(
        kind=venue_event_pb2.VENUE_EVENT_KIND_UNKNOWN,
        client_order_id=client_order_id,
        venue_order_id=str(order_id),
        venue_event_id=event_id(f"{order_id}:unknown:{_id_part(said)}"),
        symbol=symbol,
        reason=_reason(f"status {raw_status!r}" + (f" (update {execution!r})" if execution else "")),
        exchange_time=timestamp(exchange_ms),
        receive_time=timestamp(received_ms),
    )


def closed(order: OrderRecord, *, expired: bool, exchange_ms: int, received_ms: int) -> VenueEvent:
    kind = venue_event_pb2.VENUE_EVENT_KIND_EXPIRED if expired else venue_event_pb2.VENUE_EVENT_KIND_CANCELLED
    return VenueEvent(
        kind=kind,
        client_order_id=order.client_order_id,
        venue_order_id=str(order.order_id),
        venue_event_id=f"{order.order_id}:closed",
        symbol=order.symbol,
        cumulative_quantity=dec(order.executed),
        exchange_time=timestamp(exchange_ms),
        receive_time=timestamp(received_ms),
    )


def rejected(
    client_order_id: str,
    symbol: str,
    reason: str,
    *,
    exchange_ms: int,
    received_ms: int,
    suffix: str = "rejected",
) -> VenueEvent:
    return VenueEvent(
        kind=venue_event_pb2.VENUE_EVENT_KIND_ORDER_REJECTED,
        client_order_id=client_order_id,
        venue_event_id=event_id(f"{client_order_id}:{suffix}"),
        symbol=symbol,
        reason=_reason(reason),
        exchange_time=timestamp(exchange_ms),
        receive_time=timestamp(received_ms),
    )


def cancel_rejected(
    key: str, client_order_id: str, symbol: str, reason: str, *, exchange_ms: int, received_ms: int
) -> VenueEvent:
    return VenueEvent(
        kind=venue_event_pb2.VENUE_EVENT_KIND_CANCEL_REJECTED,
        client_order_id=client_order_id,
        venue_event_id=event_id(f"{key}:cancel-rejected"),
        symbol=symbol,
        reason=_reason(reason),
        exchange_time=timestamp(exchange_ms),
        receive_time=timestamp(received_ms),
    )


def fill_events(order: OrderRecord, fills: Sequence[FillRecord], *, received_ms: int) -> list[VenueEvent]:
    """The order's executions in order; the last is FILL when the order is FILLED and complete."""
    events = []
    cumulative = Decimal(0)
    notional = Decimal(0)
    for fill in fills:
        cumulative += fill.quantity
        notional += fill.quantity * fill.price
        complete = order.status == "FILLED" and cumulative >= order.quantity
        event = VenueEvent(
            kind=venue_event_pb2.VENUE_EVENT_KIND_FILL if complete else venue_event_pb2.VENUE_EVENT_KIND_PARTIAL_FILL,
            client_order_id=order.client_order_id,
            venue_order_id=str(order.order_id),
            venue_event_id=f"{order.order_id}:fill:{dec(cumulative).value}",
            symbol=order.symbol,
            last_quantity=dec(fill.quantity),
            cumulative_quantity=dec(cumulative),
            last_price=dec(fill.price),
            average_price=dec(notional / cumulative),
            exchange_time=timestamp(fill.time_ms),
            receive_time=timestamp(received_ms),
        )
        if fill.commission is not None:
            event.fee.CopyFrom(dec(-fill.commission))
            event.fee_asset = fill.asset
        events.append(event)
    return events


def order_events(order: OrderRecord, fills: Sequence[FillRecord], *, received_ms: int) -> list[VenueEvent]:
    """The order's truth from REST: accepted, its fills, and how it ended (if it did).

    An unknown status gives its fills (facts whatever the status) and an UNKNOWN event, never
    an acceptance: the caller reports it. An order object with neither ``time`` nor
    ``updateTime`` is malformed: no local time stands in. ``received_ms``: when the answer
    arrived.
    """
    created = order.time_ms if order.time_ms is not None else order.update_ms
    updated = order.update_ms if order.update_ms is not None else order.time_ms
    if created is None or updated is None:
        raise WireError(f"order {order.order_id} has neither time nor updateTime")
    if order.status is None:
        return [
            *fill_events(order, fills, received_ms=received_ms),
            unknown(
                order.client_order_id,
                order.order_id,
                order.symbol,
                order.raw_status,
                exchange_ms=updated,
                received_ms=received_ms,
            ),
        ]
    events = [accepted(order, exchange_ms=created, received_ms=received_ms)]
    events.extend(fill_events(order, fills, received_ms=received_ms))
    if order.status in {"CANCELED", "EXPIRED"}:
        events.append(closed(order, expired=order.status == "EXPIRED", exchange_ms=updated, received_ms=received_ms))
    elif order.status == "FAILED":
        events.append(
            VenueEvent(
                kind=venue_event_pb2.VENUE_EVENT_KIND_ORDER_REJECTED,
                client_order_id=order.client_order_id,
                venue_order_id=str(order.order_id),
                venue_event_id=f"{order.order_id}:failed",
                symbol=order.symbol,
                reason="order FAILED at the venue",
                exchange_time=timestamp(updated),
                receive_time=timestamp(received_ms),
            )
        )
    return events


def stream_event(update: StreamOrderUpdate, *, received_ms: int) -> VenueEvent | None:
    """The event of an update received at ``received_ms``.

    A status (or update type with status) this adapter does not know is UNKNOWN, never an
    acceptance. None: a known update without the fields it needs (the caller queries).
    """
    event = _known_stream_event(update)
    if event is not None:
        event.receive_time.CopyFrom(timestamp(received_ms))
        return event
    if _is_known_pair(update):
        return None
    return unknown(
        update.client_order_id,
        update.order_id,
        update.symbol,
        update.raw_status,
        execution="" if update.status is None else update.execution,
        exchange_ms=update.event_ms,
        received_ms=received_ms,
    )


def _is_known_pair(update: StreamOrderUpdate) -> bool:
    return (
        (update.execution == "NEW" and update.status == "NEW")
        or (update.execution in {"CANCELED", "EXPIRED"} and update.status in {"CANCELED", "EXPIRED"})
        or (update.execution == "TRADE" and update.status in {"PARTIALLY_FILLED", "FILLED"})
    )


def _known_stream_event(update: StreamOrderUpdate) -> VenueEvent | None:
    base = VenueEvent(client_order_id=update.client_order_id, venue_order_id=str(update.order_id), symbol=update.symbol)
    if update.execution == "NEW" and update.status == "NEW":
        base.kind = venue_event_pb2.VENUE_EVENT_KIND_ORDER_ACCEPTED
        base.venue_event_id = f"{update.order_id}:new"
        base.exchange_time.CopyFrom(timestamp(update.event_ms))
        return base
    if update.execution in {"CANCELED", "EXPIRED"} and update.status in {"CANCELED", "EXPIRED"}:
        if update.cumulative is None:
            return None
        kind = (
            venue_event_pb2.VENUE_EVENT_KIND_EXPIRED
            if update.status == "EXPIRED"
            else venue_event_pb2.VENUE_EVENT_KIND_CANCELLED
        )
        base.kind = kind
        base.venue_event_id = f"{update.order_id}:closed"
        base.cumulative_quantity.CopyFrom(dec(update.cumulative))
        base.exchange_time.CopyFrom(timestamp(update.event_ms))
        return base
    if update.execution == "TRADE" and update.status in {"PARTIALLY_FILLED", "FILLED"}:
        if update.cumulative is None or update.last_quantity is None or update.last_price is None:
            return None
        kind = (
            venue_event_pb2.VENUE_EVENT_KIND_FILL
            if update.status == "FILLED"
            else venue_event_pb2.VENUE_EVENT_KIND_PARTIAL_FILL
        )
        event = base
        event.kind = kind
        event.venue_event_id = f"{update.order_id}:fill:{dec(update.cumulative).value}"
        event.last_quantity.CopyFrom(dec(update.last_quantity))
        event.cumulative_quantity.CopyFrom(dec(update.cumulative))
        event.last_price.CopyFrom(dec(update.last_price))
        event.exchange_time.CopyFrom(timestamp(update.trade_ms or update.event_ms))
        if update.average_price:
            event.average_price.CopyFrom(dec(update.average_price))
        if update.commission is not None:
            event.fee.CopyFrom(dec(-update.commission))
            event.fee_asset = update.commission_asset
        return event
    return None
