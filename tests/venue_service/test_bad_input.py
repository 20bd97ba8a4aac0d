"""Requests that break the contract are INVALID_ARGUMENT naming the field, and change nothing at BingX."""

from __future__ import annotations

import grpc
import grpc.aio
import pytest

from services.common.errors import error_details
from services.common.proto import command_pb2, types_pb2, venue_service_pb2
from tests.common.messages import set_fields
from tests.venue_service.harness import BTC, Harness, Sim
from tests.venue_service.test_contract import d, limit, market

pytestmark = pytest.mark.anyio


def _with(order: command_pb2.PlaceOrder, **fields: object) -> command_pb2.PlaceOrder:
    changed = command_pb2.PlaceOrder()
    changed.CopyFrom(order)
    return set_fields(changed, **fields)


BAD_PLACEMENTS = [
    (_with(market("pk-b", "1"), quantity=d("NaN")), "order.quantity"),
    (_with(market("pk-b", "1"), quantity=d("inf")), "order.quantity"),
    (_with(market("pk-b", "1"), quantity=d("1e3")), "order.quantity"),
    (_with(market("pk-b", "1"), quantity=d("")), "order.quantity"),
    (_with(market("pk-b", "1"), quantity=d("9" * 40)), "order.quantity"),
    (_with(market("pk-b", "1"), client_order_id="pk\x00b"), "order.client_order_id"),
    (_with(market("pk-b", "1"), client_order_id="x" * 41), "order.client_order_id"),
    (_with(market("pk-b", "1"), side=7), "order.side"),
    (_with(market("pk-b", "1"), order_type=9), "order.order_type"),
    (_with(market("pk-b", "1"), limit_price=d("100")), "order.limit_price"),
    (_with(limit("pk-b", "0.001", "50000.0"), limit_price=d("-1.5.2")), "order.limit_price"),
    (_with(limit("pk-b", "0.001", "50000.0"), time_in_force=42), "order.time_in_force"),
    (_with(market("pk-b", "1"), purpose=types_pb2.ORDER_PURPOSE_ENTRY, leverage=d("x")), "order.leverage"),
]


@pytest.mark.parametrize(("order", "field"), BAD_PLACEMENTS)
async def test_a_bad_placement_names_the_field_and_sends_nothing(
    venue: Harness, sim: Sim, order: command_pb2.PlaceOrder, field: str
) -> None:
    before = venue.calls
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await venue.stub.PlaceOrder(venue_service_pb2.PlaceOrderRequest(idempotency_key="k", order=order), timeout=5)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    violations, _ = await error_details(raised.value)
    assert [name for name, _ in violations] == [field]
    assert venue.calls == before
    assert sim.orders() == []


@pytest.mark.parametrize(
    ("order", "field"),
    [
        (command_pb2.CancelOrder(symbol=BTC), "order.client_order_id"),
        (command_pb2.CancelOrder(client_order_id="PK-1", symbol=BTC), "order.client_order_id"),
        (command_pb2.CancelOrder(venue_order_id="12ab", symbol=BTC), "order.venue_order_id"),
        (command_pb2.CancelOrder(client_order_id="pk-1", symbol="NOPE\x00"), "order.symbol"),
        (command_pb2.CancelOrder(client_order_id="pk-unknown"), "order.symbol"),
    ],
)
async def test_a_bad_cancel_or_query_names_the_field(
    venue: Harness, order: command_pb2.CancelOrder, field: str
) -> None:
    before = venue.calls
    with pytest.raises(grpc.aio.AioRpcError) as cancelled:
        await venue.stub.CancelOrder(venue_service_pb2.CancelOrderRequest(idempotency_key="k", order=order), timeout=5)
    assert cancelled.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [name for name, _ in (await error_details(cancelled.value))[0]] == [field]
    query = command_pb2.QueryOrder(
        client_order_id=order.client_order_id, venue_order_id=order.venue_order_id, symbol=order.symbol
    )
    with pytest.raises(grpc.aio.AioRpcError) as queried:
        await venue.stub.QueryOrder(venue_service_pb2.QueryOrderRequest(idempotency_key="q", order=query), timeout=5)
    assert queried.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert venue.calls == before
