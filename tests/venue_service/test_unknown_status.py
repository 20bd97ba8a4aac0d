"""Unknown BingX statuses become VENUE_EVENT_KIND_UNKNOWN (plus a query), never an acceptance;
every event carries the adapter's receive time beside BingX's exchange time.

The simulator sends only the statuses BingX documents, so the unknown status is put on the
real paths by hand: a user-stream message handed to the adapter's update queue (what the
stream task does with every message), and a REST order object whose status is rewritten on
its way to the parser. Legacy flaws covered: [H8, J5, K11].
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import pytest
from structlog.testing import capture_logs

from services.common.proto import venue_event_pb2
from services.venue import trading as trading_module
from services.venue.bingx.wire import FillRecord, OrderRecord, order_record, stream_update
from services.venue.events import order_events, stream_event
from tests.venue_service.harness import BTC, Harness, Kind
from tests.venue_service.test_contract import limit, market, place, query

pytestmark = pytest.mark.anyio

UNKNOWN = venue_event_pb2.VENUE_EVENT_KIND_UNKNOWN
ACCEPTED = venue_event_pb2.VENUE_EVENT_KIND_ORDER_ACCEPTED


def _update(status: str, *, execution: str = "NEW", order_id: int = 77, event_ms: int = 1_700_000_000_500) -> Any:
    return {
        "e": "ORDER_TRADE_UPDATE",
        "E": event_ms,
        "o": {"s": BTC, "c": "pk-u", "i": order_id, "x": execution, "X": status, "z": "0", "T": 0},
    }


def _record(status: str, *, executed: str = "0") -> OrderRecord:
    return order_record(
        {
            "orderId": 77,
            "clientOrderId": "pk-u",
            "symbol": BTC,
            "origQty": "0.002",
            "executedQty": executed,
            "status": status,
            "time": 1_700_000_000_000,
            "updateTime": 1_700_000_000_400,
        }
    )


def test_an_unknown_stream_status_maps_to_unknown_with_ids_raw_status_and_both_times() -> None:
    event = stream_event(stream_update(_update("SUSPENDED")), received_ms=1_700_000_000_900)
    assert event is not None
    assert event.kind == UNKNOWN  # never ORDER_ACCEPTED
    assert (event.client_order_id, event.venue_order_id, event.symbol) == ("pk-u", "77", BTC)
    assert event.venue_event_id == "77:unknown:SUSPENDED"
    assert "SUSPENDED" in event.reason
    assert event.exchange_time.ToMilliseconds() == 1_700_000_000_500  # BingX's time, kept
    assert event.receive_time.ToMilliseconds() == 1_700_000_000_900  # ours, beside it
    assert not event.HasField("cumulative_quantity")
    assert not event.HasField("last_quantity")


def test_a_known_status_with_an_unknown_update_type_is_unknown_too_and_ids_stay_contract_ids() -> None:
    odd = stream_event(stream_update(_update("NEW", execution="AMENDMENT")), received_ms=1)
    assert odd is not None
    assert odd.kind == UNKNOWN
    assert odd.venue_event_id == "77:unknown:AMENDMENT_NEW"
    weird = stream_event(stream_update(_update("a b/ç" + "x" * 80)), received_ms=1)
    assert weird is not None
    assert weird.kind == UNKNOWN
    assert len(weird.venue_event_id) <= 64
    assert all(ch.isalnum() or ch in "_.:-" for ch in weird.venue_event_id)
    empty = stream_event(stream_update(_update("")), received_ms=1)
    assert empty is not None
    assert empty.venue_event_id == "77:unknown:none"
    # A known update missing what it needs is not UNKNOWN: the caller queries it.
    incomplete = stream_update({"e": "ORDER_TRADE_UPDATE", "E": 1, "o": {"i": 5, "x": "TRADE", "X": "FILLED"}})
    assert stream_event(incomplete, received_ms=1) is None


def test_an_unknown_rest_status_gives_its_fills_and_unknown_never_an_acceptance() -> None:
    received = 1_700_000_001_000
    assert [e.kind for e in order_events(_record("SUSPENDED"), [], received_ms=received)] == [UNKNOWN]
    fill = FillRecord(77, Decimal("0.001"), Decimal("50000"), Decimal("-0.01"), "USDT", 1_700_000_000_300)
    events = order_events(_record("SUSPENDED", executed="0.001"), [fill], received_ms=received)
    assert [e.kind for e in events] == [venue_event_pb2.VENUE_EVENT_KIND_PARTIAL_FILL, UNKNOWN]
    assert ACCEPTED not in {e.kind for e in events}
    unknown = events[-1]
    assert unknown.exchange_time.ToMilliseconds() == 1_700_000_000_400  # the order's updateTime
    assert all(e.receive_time.ToMilliseconds() == received for e in events)
    # The same fact from the stream: the same identity (the kernel deduplicates by it).
    streamed = stream_event(stream_update(_update("SUSPENDED")), received_ms=received + 5)
    assert streamed is not None
    assert streamed.venue_event_id == unknown.venue_event_id
    # Known statuses keep their events, with the receive time set on every one.
    known = order_events(_record("CANCELLED"), [], received_ms=received)
    assert [e.kind for e in known] == [ACCEPTED, venue_event_pb2.VENUE_EVENT_KIND_CANCELLED]
    assert all(e.receive_time.ToMilliseconds() == received for e in known)


async def test_every_reported_event_carries_the_receive_time_beside_the_exchange_time(venue: Harness) -> None:
    answer = await place(venue, market("pk-rt", "0.001"))
    await venue.wait_for(lambda: "FILL" in venue.kinds("pk-rt"))
    streamed = [r.event for r in await venue.executions(2, after=venue.adapter.executions.position(0))]
    for event in [*answer, *streamed, *await query(venue, "pk-rt")]:
        assert event.HasField("exchange_time"), event
        assert event.HasField("receive_time"), event
        # Local receipt after BingX's event (same machine clock in the simulator), within a minute.
        gap = event.receive_time.ToMilliseconds() - event.exchange_time.ToMilliseconds()
        assert 0 <= gap < 60_000, event


async def test_an_unknown_stream_status_is_reported_as_unknown_and_queried_through_the_adapter(
    venue: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    await place(venue, limit("pk-un", "0.001", "50000.0"))
    facts = venue.adapter.executions.facts(client_order_id="pk-un")
    assert facts is not None
    oid = facts.venue_order_id
    message = {
        "e": "ORDER_TRADE_UPDATE",
        "E": 1_700_000_000_500,
        "o": {"s": BTC, "c": "pk-un", "i": int(oid), "x": "NEW", "X": "SUSPENDED", "z": "0", "T": 0},
    }
    before_calls = venue.calls
    with capture_logs() as captured:
        venue.adapter._queue_update(message)
        await venue.adapter.updates_settled()
    assert venue.kinds("pk-un") == ["ORDER_ACCEPTED", "UNKNOWN"]
    unknown = facts.events[-1]
    assert unknown.venue_event_id == f"{oid}:unknown:SUSPENDED"
    assert unknown.exchange_time.ToMilliseconds() == 1_700_000_000_500
    assert unknown.HasField("receive_time")
    assert "SUSPENDED" in unknown.reason
    assert venue.calls > before_calls, "the order is queried"
    assert any(entry["event"] == "order_update_unknown" for entry in captured)
    assert venue.adapter.metrics.unknown_status._value.get() >= 1
    # StreamExecutions delivers it to the kernel as UNKNOWN.
    stream = [r.event for r in await venue.executions(2, after=venue.adapter.executions.position(0))]
    assert [Kind.Name(e.kind) for e in stream] == ["VENUE_EVENT_KIND_ORDER_ACCEPTED", "VENUE_EVENT_KIND_UNKNOWN"]

    # The same status on the REST path (a QueryOrder): the same fact, not a second one.
    def suspended(data: Mapping[str, Any]) -> OrderRecord:
        return order_record({**data, "status": "SUSPENDED"})

    monkeypatch.setattr(trading_module, "order_record", suspended)
    answered = await query(venue, "pk-un")
    assert [e.kind for e in answered] == [UNKNOWN]  # no acceptance from an unknown status
    assert answered[0].venue_event_id == unknown.venue_event_id
    assert answered[0].receive_time.ToMilliseconds() >= unknown.receive_time.ToMilliseconds()
    assert venue.kinds("pk-un") == ["ORDER_ACCEPTED", "UNKNOWN"], "deduplicated by venue_event_id"
