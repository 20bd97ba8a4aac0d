"""Each fault of the simulator's fault API against the venue service.

Legacy flaws covered: [E13, E15, E16, E17, F17, F18, H8, I11, I19, I21, L14, S8].
"""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from services.common.proto import command_pb2, types_pb2
from tests.venue_service.harness import BTC, Harness, Sim, simulator, venue_service
from tests.venue_service.test_contract import cancel, kinds, limit, market, place, query

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("mode", ["close", "504"])
async def test_a_response_dropped_after_execution_leaves_exactly_one_order(venue: Harness, sim: Sim, mode: str) -> None:
    await sim.faults(drop_after_execute_count=1, drop_mode=mode)
    events = await place(venue, market("pk-drop", "0.01"))
    assert kinds(events) == ["ORDER_ACCEPTED", "FILL"]
    assert len(sim.orders("pk-drop")) == 1
    # The kernel retrying with the same key after a lost gRPC answer changes nothing either.
    again = await place(venue, market("pk-drop", "0.01"))
    assert [e.venue_event_id for e in again] == [e.venue_event_id for e in events]
    assert len(sim.orders("pk-drop")) == 1


@pytest.mark.parametrize("status", [500, 502, 504])
async def test_a_5xx_before_execution_is_queried_then_sent_once(venue: Harness, sim: Sim, status: int) -> None:
    await sim.faults(http_error_count=1, http_error_status=status)
    events = await place(venue, limit("pk-5xx", "0.001", "50000.0"))
    assert kinds(events) == ["ORDER_ACCEPTED"]
    assert len(sim.orders("pk-5xx")) == 1
    calls = venue.adapter.client.calls
    # The lost POST, the query by clientOrderID ("not exist"), the history fallback, the resend.
    assert calls["POST /openApi/swap/v2/trade/order"] == 2
    assert calls["GET /openApi/swap/v2/trade/order"] == 1


@pytest.mark.parametrize("form", ["code100410", "http429"])
async def test_rate_limit_refusals_back_off_and_succeed(form: str) -> None:
    async with simulator(rate_limit_response=form) as sim, venue_service(sim) as venue:
        await sim.faults(rate_limit_count=2)
        events = await place(venue, market("pk-rl", "0.01"))
        assert kinds(events) == ["ORDER_ACCEPTED", "FILL"]
        assert len(sim.orders("pk-rl")) == 1
        assert venue.adapter.metrics.rate_limited._value.get() == 2


async def test_a_burst_never_exceeds_bingx_rate_limits() -> None:
    async with simulator(rate_limits=True) as sim, venue_service(sim) as venue:
        orders = [limit(f"pk-burst-{n}", "0.001", "50000.0") for n in range(12)]
        answers = await asyncio.gather(*(place(venue, order) for order in orders))
        assert all(kinds(events) == ["ORDER_ACCEPTED"] for events in answers)
        assert venue.adapter.metrics.rate_limited._value.get() == 0  # never refused: the budget waited
        assert len(sim.orders()) == 12
        assert venue.adapter.metrics.rate_waits._sum.get() > 0  # 12 at 5/s must have waited


async def test_a_websocket_drop_mid_fill_is_filled_in_by_rest_after_reconnect(venue: Harness, sim: Sim) -> None:
    await place(venue, limit("pk-ws", "0.001", "59000.0"))
    connections = venue.adapter.user_stream.connections
    await sim.control("ws/disconnect", {"user": True, "market": False, "abort": True})
    await sim.price(BTC, "58000.0")  # fills while no stream is connected
    await venue.wait_for(lambda: "FILL" in venue.kinds("pk-ws"))
    assert venue.adapter.user_stream.connections == connections + 1
    assert venue.adapter.metrics.gap_fill_events._value.get() >= 1
    assert venue.adapter.metrics.reconnects.labels("user")._value.get() >= 1


async def test_duplicate_events_are_delivered_once(venue: Harness, sim: Sim) -> None:
    await sim.faults(duplicate_event_count=3)
    await place(venue, market("pk-dup", "0.01"))
    await place(venue, market("pk-dup2", "0.01"))
    ids = []
    for cid in ("pk-dup", "pk-dup2"):
        facts = venue.adapter.executions.facts(client_order_id=cid)
        assert facts is not None
        ids += [event.venue_event_id for event in facts.events]
    assert len(ids) == len(set(ids)) == 4
    assert venue.adapter.metrics.duplicates._value.get() >= 1


async def test_out_of_order_events_reach_the_log_in_order(sim: Sim) -> None:
    async with simulator(fill_fraction="0.5") as partial, venue_service(partial) as venue:
        await place(venue, limit("pk-ooo", "0.002", "59000.0"))
        await partial.faults(reorder_event_count=1)
        await partial.price(BTC, "58900.0")  # first partial fill: held back by the simulator
        await partial.price(BTC, "58800.0")  # second: sent first, then the held one
        await venue.wait_for(lambda: "FILL" in venue.kinds("pk-ooo"))
        facts = venue.adapter.executions.facts(client_order_id="pk-ooo")
        assert facts is not None
        assert kinds(facts.events) == ["ORDER_ACCEPTED", "PARTIAL_FILL", "FILL"]
        assert [e.cumulative_quantity.value for e in facts.events[1:]] == ["0.001", "0.002"]


async def test_a_cancel_that_loses_the_race_to_a_fill_reports_the_fill(venue: Harness, sim: Sim) -> None:
    await place(venue, limit("pk-race", "0.001", "50000.0"))
    await sim.faults(cancel_fill_race_count=1)
    events = await cancel(venue, "pk-race", "pk-race:cancel:1")
    assert kinds(events) == ["ORDER_ACCEPTED", "FILL"]  # never a false CANCEL_REJECTED
    assert events[-1].last_price.value == "50000"


async def test_cancelling_an_order_already_cancelled_reports_cancelled(venue: Harness) -> None:
    await place(venue, limit("pk-twice", "0.001", "50000.0"))
    await cancel(venue, "pk-twice", "pk-twice:cancel:1")
    again = await cancel(venue, "pk-twice", "pk-twice:cancel:2")
    assert kinds(again) == ["ORDER_ACCEPTED", "CANCELLED"]


async def test_cancelling_an_order_the_venue_never_had_is_an_explicit_not_found(venue: Harness) -> None:
    events = await cancel(venue, "pk-ghost", "pk-ghost:cancel:1")
    assert kinds(events) == ["CANCEL_REJECTED"]
    assert events[0].reason == "not found"


async def test_listen_key_expiry_rotates_at_once_and_events_keep_flowing(venue: Harness, sim: Sim) -> None:
    runs = venue.adapter.gap_fill.runs
    await sim.control("listen-keys/expire", {})
    await asyncio.wait_for(venue.adapter.gap_fill.wait_runs(runs + 1), 5)  # reconnected and gap-filled
    assert venue.adapter.user_stream.rotations == 1
    assert venue.adapter.user_stream.connected.is_set()
    before = venue.calls
    events = await place(venue, market("pk-after-expiry", "0.01"))
    assert kinds(events) == ["ORDER_ACCEPTED", "FILL"]
    assert venue.calls - before == 1  # acknowledged by the new stream, not by a query


async def test_query_falls_back_to_history_when_bingx_says_not_exist(venue: Harness, sim: Sim) -> None:
    await place(venue, market("pk-miss", "0.01"))
    await sim.faults(query_miss_count=1)
    assert kinds(await query(venue, "pk-miss")) == ["ORDER_ACCEPTED", "FILL"]


async def test_rejection_for_margin_carries_bingx_reason(venue: Harness, sim: Sim) -> None:
    before = venue.calls
    events = await place(venue, market("pk-margin", "100"))
    assert kinds(events) == ["ORDER_REJECTED"]
    assert "101204" in events[0].reason
    assert venue.calls - before == 1
    assert events[0].exchange_time.ToMilliseconds() > 0


@pytest.mark.parametrize(
    ("order", "reason"),
    [
        (market("pk-step", "0.00015"), "not a multiple of the step 0.0001"),
        (limit("pk-tick", "0.001", "59000.05"), "not a multiple of the tick 0.1"),
        (limit("pk-notional", "0.0001", "10000.0"), "below the minimum 2 USDT"),
        (market("pk-unknown", "1", symbol="DOGE-USDT"), "unknown symbol DOGE-USDT"),
    ],
)
async def test_precision_and_minimums_are_refused_locally(
    venue: Harness, order: command_pb2.PlaceOrder, reason: str
) -> None:
    before = venue.calls
    events = await place(venue, order)
    assert kinds(events) == ["ORDER_REJECTED"]
    assert reason in events[0].reason
    assert venue.calls == before  # nothing sent to BingX


async def test_an_unknown_status_is_never_taken_as_accepted_and_is_queried(venue: Harness) -> None:
    await place(venue, limit("pk-odd", "0.001", "50000.0"))
    facts = venue.adapter.executions.facts(client_order_id="pk-odd")
    assert facts is not None
    queries = venue.adapter.client.calls.get("GET /openApi/swap/v2/trade/order", 0)
    venue.adapter._queue_update(
        {
            "e": "ORDER_TRADE_UPDATE",
            "E": 1,
            "o": {"s": BTC, "c": "pk-odd", "i": int(facts.venue_order_id), "x": "AMENDED", "X": "REVISED", "z": "0"},
        }
    )
    await asyncio.wait_for(venue.adapter.updates_settled(), 5)
    assert venue.adapter.client.calls.get("GET /openApi/swap/v2/trade/order", 0) == queries + 1
    assert venue.adapter.metrics.unknown_status._value.get() == 1
    # An explicit UNKNOWN (the stream's update type and status in its reason), never a second ack.
    assert Counter(venue.kinds("pk-odd")) == Counter({"ORDER_ACCEPTED": 1, "UNKNOWN": 1})
    unknown = facts.events[-1]
    assert unknown.venue_event_id == f"{facts.venue_order_id}:unknown:REVISED"
    assert "REVISED" in unknown.reason
    assert unknown.HasField("receive_time")


async def test_an_entry_sets_leverage_once_as_its_own_step(venue: Harness, sim: Sim) -> None:
    order = market("pk-lev", "0.01")
    order.purpose = types_pb2.ORDER_PURPOSE_ENTRY
    order.leverage.value = "7"
    await place(venue, order)
    second = market("pk-lev2", "0.01")
    second.CopyFrom(order)
    second.client_order_id = "pk-lev2"
    await place(venue, second)
    assert venue.adapter.client.calls["POST /openApi/swap/v2/trade/leverage"] == 1
    assert sim.sim.engine.state.account.leverage_of(BTC, "LONG") == 7
    refused = market("pk-lev3", "0.01")
    refused.CopyFrom(order)
    refused.client_order_id = "pk-lev3"
    refused.leverage.value = "500"
    events = await place(venue, refused)
    assert kinds(events) == ["ORDER_REJECTED"]
    assert events[0].reason.startswith("leverage 500 not set (order not sent)")
    assert not sim.orders("pk-lev3")
