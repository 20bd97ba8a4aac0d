"""StreamExecutions resumes after a position; the steady-state and idle REST budgets. [E1]"""

from __future__ import annotations

import asyncio

import grpc
import grpc.aio
import pytest

from services.common.proto import types_pb2, venue_service_pb2
from tests.venue_service.harness import Harness, Sim
from tests.venue_service.test_contract import kinds, limit, market, place

pytestmark = pytest.mark.anyio


async def test_a_reader_that_went_away_resumes_after_its_position_and_misses_nothing(venue: Harness) -> None:
    await place(venue, market("pk-r1", "0.01"))
    first = await venue.executions(2, after=venue.adapter.executions.position(0))
    assert kinds([r.event for r in first]) == ["ORDER_ACCEPTED", "FILL"]
    # The reader is gone (a kernel restart); more happens meanwhile.
    await place(venue, market("pk-r2", "0.01", side=types_pb2.ORDER_SIDE_SELL))
    await place(venue, limit("pk-r3", "0.001", "50000.0"))
    resumed = await venue.executions(3, after=first[-1].position)
    assert [(r.event.client_order_id, r.event.kind) for r in resumed] == [
        ("pk-r2", 1),
        ("pk-r2", 4),
        ("pk-r3", 1),
    ]
    # A position of an earlier process of the service replays everything this one holds.
    earlier = await venue.executions(5, after="0-000000000007")
    assert [r.position for r in earlier] == [r.position for r in first + resumed]


async def test_a_position_the_service_cannot_resume_from_is_refused(venue: Harness) -> None:
    for position, code in (
        ("garbage", grpc.StatusCode.INVALID_ARGUMENT),
        (venue.adapter.executions.position(99), grpc.StatusCode.INVALID_ARGUMENT),
    ):
        call = venue.stub.StreamExecutions(venue_service_pb2.StreamExecutionsRequest(after_position=position))
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await call.read()
        assert raised.value.code() == code


async def test_steady_state_costs_one_rest_call_per_order_and_nothing_while_idle(venue: Harness, sim: Sim) -> None:
    await place(venue, market("pk-warm", "0.01"))
    before = venue.calls
    for n in range(5):
        await place(
            venue,
            market(f"pk-steady-{n}", "0.01", side=types_pb2.ORDER_SIDE_BUY if n % 2 else types_pb2.ORDER_SIDE_SELL),
        )
    assert venue.calls - before == 5
    idle = venue.calls
    # An observation window, not synchronisation: nothing may call BingX while nothing happens.
    await asyncio.sleep(1.0)
    assert venue.calls == idle
