"""services.common.aio: outgoing timeouts bounded by the caller's deadline."""

from __future__ import annotations

import io

import grpc
import grpc.aio
import pytest

from services.common.aio import call_timeout
from services.common.grpc_server import GrpcServer
from services.common.logging import get_logger
from tests.common.helpers import TIMEOUT, generic_binding, loopback_settings, raw, started

SERVICE = "pink.test.v1.Deadline"


async def budget_of(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
    return repr(call_timeout(context, float(request.decode()))).encode()


async def timeout_seen(channel: grpc.aio.Channel, budget: float, deadline: float) -> float:
    method = channel.unary_unary(f"/{SERVICE}/Budget", request_serializer=raw, response_deserializer=raw)
    return float(await method(repr(budget).encode(), timeout=deadline))


@pytest.mark.anyio
async def test_bounded_by_the_callers_deadline(log_stream: io.StringIO) -> None:
    server = GrpcServer(loopback_settings(), [generic_binding(SERVICE, {"Budget": budget_of})], logger=get_logger("t"))
    async with started(server) as channel:
        assert await timeout_seen(channel, budget=10.0, deadline=1000.0) == 10.0
        short = await timeout_seen(channel, budget=10.0, deadline=TIMEOUT)
        # The grpc-timeout header is rounded up on the wire, so allow a little slack.
        assert 0 < short <= TIMEOUT + 0.1


def test_without_a_context_the_budget_applies() -> None:
    assert call_timeout(None, 2.5) == 2.5
    for bad in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="budget"):
            call_timeout(None, bad)
