"""Every VenueService RPC against the BingX simulator over real HTTP and WebSocket.

Legacy flaws covered: [E1, H4, H7, J4, J5, L11, N7, O2, S6].
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import TypeAlias

import grpc
import pytest
from grpc_health.v1 import health_pb2

from services.common.proto import command_pb2, types_pb2, venue_event_pb2, venue_service_pb2
from tests.venue_service.harness import BTC, ETH, Harness, Sim, simulator, venue_service

pytestmark = pytest.mark.anyio

Kind = venue_event_pb2.VenueEventKind
Side: TypeAlias = types_pb2.OrderSide.ValueType


def d(value: str) -> types_pb2.Decimal:
    return types_pb2.Decimal(value=value)


def market(
    cid: str, quantity: str, *, side: Side = types_pb2.ORDER_SIDE_BUY, symbol: str = BTC
) -> command_pb2.PlaceOrder:
    return command_pb2.PlaceOrder(
        client_order_id=cid, symbol=symbol, side=side, order_type=types_pb2.ORDER_TYPE_MARKET, quantity=d(quantity)
    )


def limit(cid: str, quantity: str, price: str, *, side: Side = types_pb2.ORDER_SIDE_BUY) -> command_pb2.PlaceOrder:
    return command_pb2.PlaceOrder(
        client_order_id=cid,
        symbol=BTC,
        side=side,
        order_type=types_pb2.ORDER_TYPE_LIMIT,
        quantity=d(quantity),
        limit_price=d(price),
        time_in_force=types_pb2.TIME_IN_FORCE_GTC,
    )


async def health_check(channel: grpc.aio.Channel, service: str) -> object:
    """The health status of ``service`` (a ``HealthCheckResponse.ServingStatus``)."""
    check = channel.unary_unary(
        "/grpc.health.v1.Health/Check",
        request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
        response_deserializer=health_pb2.HealthCheckResponse.FromString,
    )
    answer: health_pb2.HealthCheckResponse = await check(health_pb2.HealthCheckRequest(service=service), timeout=5)
    return answer.status


def kinds(events: list[venue_event_pb2.VenueEvent]) -> list[str]:
    return [Kind.Name(event.kind).removeprefix("VENUE_EVENT_KIND_") for event in events]


async def place(venue: Harness, order: command_pb2.PlaceOrder) -> list[venue_event_pb2.VenueEvent]:
    request = venue_service_pb2.PlaceOrderRequest(idempotency_key=order.client_order_id, order=order)
    return list((await venue.stub.PlaceOrder(request, timeout=10)).events)


async def cancel(venue: Harness, cid: str, key: str) -> list[venue_event_pb2.VenueEvent]:
    request = venue_service_pb2.CancelOrderRequest(
        idempotency_key=key, order=command_pb2.CancelOrder(client_order_id=cid, symbol=BTC)
    )
    return list((await venue.stub.CancelOrder(request, timeout=10)).events)


async def query(venue: Harness, cid: str) -> list[venue_event_pb2.VenueEvent]:
    request = venue_service_pb2.QueryOrderRequest(
        idempotency_key=f"{cid}:query:1", order=command_pb2.QueryOrder(client_order_id=cid, symbol=BTC)
    )
    return list((await venue.stub.QueryOrder(request, timeout=10)).events)


async def test_health_is_serving_and_instruments_come_from_the_contracts_endpoint(venue: Harness) -> None:
    answer = await health_check(venue.channel, "pink.v1.VenueService")
    assert answer == health_pb2.HealthCheckResponse.SERVING
    response = await venue.stub.GetInstruments(venue_service_pb2.GetInstrumentsRequest(symbols=[BTC, ETH]), timeout=5)
    table = {i.symbol: (i.quantity_step.value, i.price_tick.value, i.min_quantity.value) for i in response.instruments}
    assert table == {BTC: ("0.0001", "0.1", "0.0001"), ETH: ("0.01", "0.01", "0.01")}


async def test_a_market_order_is_one_rest_call_and_its_fill_comes_from_the_stream(venue: Harness) -> None:
    before = venue.calls
    events = await place(venue, market("pk-1", "0.01"))
    assert venue.calls - before == 1  # the placement only: the fill arrived on the user stream
    assert kinds(events) == ["ORDER_ACCEPTED", "FILL"]
    accepted, fill = events
    assert accepted.client_order_id == "pk-1"
    assert accepted.venue_order_id == fill.venue_order_id
    assert fill.last_quantity.value == "0.01"
    assert fill.cumulative_quantity.value == "0.01"
    assert Decimal(fill.last_price.value) > 0
    # BingX reports the paid commission negative; the contract's fee is positive when paid.
    assert Decimal(fill.fee.value) > 0
    assert fill.fee_asset == "USDT"
    assert fill.exchange_time.ToMilliseconds() > 0
    assert accepted.exchange_time.ToMilliseconds() > 0
    assert fill.venue_event_id == f"{fill.venue_order_id}:fill:0.01"


async def test_a_limit_order_rests_fills_partially_and_the_stream_resumes_after_a_position(sim: Sim) -> None:
    async with simulator(fill_fraction="0.5") as partial, venue_service(partial) as venue:
        events = await place(venue, limit("pk-2", "0.002", "59000.0"))
        assert kinds(events) == ["ORDER_ACCEPTED"]
        listed = await venue.stub.ListOpenOrders(venue_service_pb2.ListOpenOrdersRequest(symbols=[BTC]), timeout=5)
        (order,) = listed.orders
        assert (order.client_order_id, order.limit_price.value, order.quantity.value) == ("pk-2", "59000", "0.002")
        assert order.order_type == types_pb2.ORDER_TYPE_LIMIT
        first = await venue.executions(1, after=venue.adapter.executions.position(0))
        await partial.price(BTC, "58900.0")
        await venue.wait_for(lambda: "PARTIAL_FILL" in venue.kinds("pk-2"))
        await partial.price(BTC, "58800.0")
        await venue.wait_for(lambda: "FILL" in venue.kinds("pk-2"))
        stream = await venue.executions(2, after=first[0].position)
        assert kinds([r.event for r in stream]) == ["PARTIAL_FILL", "FILL"]
        assert [r.event.cumulative_quantity.value for r in stream] == ["0.001", "0.002"]
        assert [r.event.last_price.value for r in stream] == ["59000", "59000"]
        assert stream[0].position < stream[1].position
        # QueryOrder gives the same facts with the same identities.
        truth = await query(venue, "pk-2")
        assert [e.venue_event_id for e in truth] == [first[0].event.venue_event_id] + [
            r.event.venue_event_id for r in stream
        ]


async def test_cancel_of_a_working_order_then_query_and_a_missing_order(venue: Harness) -> None:
    await place(venue, limit("pk-3", "0.001", "50000.0"))
    cancelled = await cancel(venue, "pk-3", "pk-3:cancel:1")
    assert kinds(cancelled) == ["ORDER_ACCEPTED", "CANCELLED"]
    assert cancelled[-1].cumulative_quantity.value == "0"  # zero is a value
    assert kinds(await query(venue, "pk-3")) == ["ORDER_ACCEPTED", "CANCELLED"]
    missing = await query(venue, "pk-nope")
    assert kinds(missing) == ["ORDER_REJECTED"]
    assert missing[0].reason == "not found"
    # The same cancel key again: the same answer, no second cancel at BingX.
    before = venue.calls
    assert kinds(await cancel(venue, "pk-3", "pk-3:cancel:1")) == ["ORDER_ACCEPTED", "CANCELLED"]
    assert venue.calls == before


async def test_positions_and_balance_reflect_fills(venue: Harness, sim: Sim) -> None:
    await place(venue, market("pk-4", "0.01"))
    await place(venue, market("pk-5", "0.1", side=types_pb2.ORDER_SIDE_SELL, symbol=ETH))
    positions = await venue.stub.ListPositions(venue_service_pb2.ListPositionsRequest(), timeout=5)
    table = {p.symbol: (p.side, p.size.value) for p in positions.positions}
    assert table == {BTC: (types_pb2.SIDE_LONG, "0.01"), ETH: (types_pb2.SIDE_SHORT, "0.1")}
    balance = await venue.stub.GetBalance(venue_service_pb2.GetBalanceRequest(), timeout=5)
    assert balance.asset == "USDT"
    assert Decimal(balance.wallet_balance.value) < Decimal(10000)  # fees paid
    assert Decimal(balance.available_margin.value) < Decimal(balance.wallet_balance.value)


async def test_mark_prices_stream_from_the_market_websocket(venue: Harness, sim: Sim) -> None:
    call = venue.stub.StreamMarkPrices(venue_service_pb2.StreamMarkPricesRequest(symbols=[ETH]))
    await sim.price(BTC, "60100.0")
    await sim.price(ETH, "3010.00")
    seen = []
    try:
        async with asyncio.timeout(5):
            async for response in call:
                # A subscriber first gets the latest mark, then every move; ETH only, as asked.
                assert response.mark_price.symbol == ETH
                assert response.mark_price.exchange_time.ToMilliseconds() > 0
                seen.append(response.mark_price.price.value)
                if seen[-1] == "3010":
                    break
    finally:
        call.cancel()
    assert set(seen) <= {"3000", "3010"}


async def test_a_request_that_breaks_the_contract_is_invalid_argument(venue: Harness) -> None:
    order = market("PK-Upper", "0.01")
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await venue.stub.PlaceOrder(venue_service_pb2.PlaceOrderRequest(idempotency_key="k", order=order), timeout=5)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "clientOrderID" in (raised.value.details() or "")
