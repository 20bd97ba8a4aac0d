"""Readiness follows the user stream: NOT_SERVING once it is down past the grace, SERVING once it is back.

The simulator keeps the user stream down with its ``ws_refuse_user`` fault (handshakes refused)
after ``/_sim/ws/disconnect``; health is observed through the standard ``grpc.health.v1`` Watch,
the gauges and counters through the service's /metrics endpoint.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import grpc
import grpc.aio
import pytest
from grpc_health.v1 import health_pb2
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError

from services.venue.config import VenueSettings
from tests.common.helpers import captured_logs
from tests.venue_service.harness import BTC, Harness, Sim, venue_service
from tests.venue_service.test_contract import health_check, limit, place

pytestmark = pytest.mark.anyio

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SERVICE = "pink.v1.VenueService"
TIMEOUT = 15.0
SIMULATOR_LOGGERS = ("services.venue.sim", "aiohttp.access")
DROP_USER_STREAM: dict[str, object] = {"user": True, "market": False, "abort": True}
CONNECTED = ("pink_venue_user_stream_connected", ())
WITHDRAWALS = ("pink_venue_health_withdrawals_total", (("reason", "user_stream"),))


def watch(channel: grpc.aio.Channel, service: str) -> AsyncIterator[int]:
    """The statuses the standard health Watch of ``service`` reports, as they change."""
    call = channel.unary_stream(
        "/grpc.health.v1.Health/Watch",
        request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
        response_deserializer=health_pb2.HealthCheckResponse.FromString,
    )(health_pb2.HealthCheckRequest(service=service), timeout=TIMEOUT)

    async def statuses() -> AsyncIterator[int]:
        async for response in call:
            yield response.status

    return statuses()


async def until_the_server_stops(statuses: AsyncIterator[int]) -> list[int]:
    """The statuses still reported until the server ends the Watch."""
    seen: list[int] = []

    async def collect() -> None:
        async for status in statuses:
            seen.append(status)

    with pytest.raises(grpc.aio.AioRpcError) as ended:
        await collect()
    assert ended.value.code() == grpc.StatusCode.UNAVAILABLE, ended.value
    return seen


async def scrape(venue: Harness) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    assert venue.metrics_port is not None
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{venue.metrics_port}/metrics") as reply,
    ):
        text = await reply.text()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def log_lines(text: str, event: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in text.splitlines()]
    return [line for line in lines if line.get("event") == event]


async def test_a_user_stream_down_past_the_grace_withdraws_health_until_it_is_back_and_gap_filled(sim: Sim) -> None:
    created: list[str] = []
    create_key = sim.sim.hub.create_key

    def recording_create_key() -> str:
        created.append(create_key())
        return created[-1]

    sim.sim.hub.create_key = recording_create_key  # type: ignore[method-assign]  # every listenKey handed out
    with captured_logs("pink-venue") as logs:
        async with venue_service(sim, user_stream_grace_seconds=0.3, metrics_port=0) as venue:
            overall, named = watch(venue.channel, ""), watch(venue.channel, SERVICE)
            assert (await anext(overall), await anext(named)) == (SERVING, SERVING)
            before = await scrape(venue)
            assert before[CONNECTED] == 1
            assert before.get(WITHDRAWALS, 0) == 0
            await place(venue, limit("pk-outage", "0.001", "59000.0"))

            await sim.faults(ws_refuse_user=True)
            await sim.control("ws/disconnect", DROP_USER_STREAM)
            assert (await anext(overall), await anext(named)) == (NOT_SERVING, NOT_SERVING)
            assert not venue.adapter.user_stream.connected.is_set()
            down = await scrape(venue)
            assert down[CONNECTED] == 0
            assert down[WITHDRAWALS] == 1

            await sim.price(BTC, "58000.0")  # fills while no user stream is connected
            assert "FILL" not in venue.kinds("pk-outage")
            await sim.faults(ws_refuse_user=False)
            assert (await anext(overall), await anext(named)) == (SERVING, SERVING)
            # SERVING only once the reconnect's gap-fill ran: the fill the stream missed is in the log.
            assert "FILL" in venue.kinds("pk-outage")
            assert venue.adapter.user_stream.connected.is_set()
            back = await scrape(venue)
            assert back[CONNECTED] == 1
            assert back[WITHDRAWALS] == 1
            connect_gap_fills = ("pink_venue_gap_fills_total", (("reason", "connect"),))
            assert back[connect_gap_fills] == before.get(connect_gap_fills, 0) + 1
    text = logs.getvalue()
    [withdrawn] = log_lines(text, "venue_health_withdrawn")
    assert withdrawn["level"] == "warning"
    assert withdrawn["reason"] == "user_stream"
    assert withdrawn["down_seconds"] >= 0.29  # the grace (a timer may fire a clock tick early)
    [restored] = log_lines(text, "venue_health_restored")
    assert restored["level"] == "info"
    assert restored["down_seconds"] >= withdrawn["down_seconds"]
    keys = set(sim.sim.hub.listen_keys) | set(created)
    assert len(keys) >= 2  # the first connection's and the reconnect's
    # The simulator's own lines (its access log shows the WebSocket URL) are not the service's.
    ours = [line for line in text.splitlines() if not json.loads(line).get("logger", "").startswith(SIMULATOR_LOGGERS)]
    assert [key for key in keys if any(key in line for line in ours)] == [], "the service logged a listenKey"


async def test_a_drop_shorter_than_the_grace_leaves_health_serving(sim: Sim) -> None:
    async with venue_service(sim, user_stream_grace_seconds=30.0, metrics_port=0) as venue:
        statuses = watch(venue.channel, "")
        assert await anext(statuses) == SERVING
        stream, gap_fill = venue.adapter.user_stream, venue.adapter.gap_fill
        connections, runs = stream.connections, gap_fill.runs
        await sim.control("ws/disconnect", DROP_USER_STREAM)
        async with asyncio.timeout(5):
            await gap_fill.wait_runs(runs + 1)  # reconnected, and the reconnect's gap-fill done
        assert stream.connections == connections + 1
        assert stream.connected.is_set()
        assert await health_check(venue.channel, SERVICE) == SERVING
        samples = await scrape(venue)
        assert samples[CONNECTED] == 1
        assert samples.get(WITHDRAWALS, 0) == 0
        assert samples[("pink_venue_stream_reconnects_total", (("stream", "user"),))] == 1
        venue.stop.set()  # SIGTERM: the only NOT_SERVING this service ever reported
        assert await until_the_server_stops(statuses) == [NOT_SERVING]


async def test_shutdown_during_an_outage_never_reports_serving_again(sim: Sim) -> None:
    with captured_logs("pink-venue") as logs:
        async with venue_service(sim, user_stream_grace_seconds=0.2, drain_seconds=1.5) as venue:
            statuses = watch(venue.channel, "")
            assert await anext(statuses) == SERVING
            await sim.faults(ws_refuse_user=True)
            await sim.control("ws/disconnect", DROP_USER_STREAM)
            assert await anext(statuses) == NOT_SERVING
            venue.stop.set()  # SIGTERM while withdrawn
            await sim.faults(ws_refuse_user=False)  # the stream comes back during the drain
            async with asyncio.timeout(5):
                await venue.adapter.user_stream.connected.wait()
                await venue.adapter.wait_caught_up()
            assert await until_the_server_stops(statuses) == []
            async with asyncio.timeout(10):
                assert await venue.task == 0
    text = logs.getvalue()
    assert log_lines(text, "venue_health_restored") == []
    assert log_lines(text, "health change ignored: server is shutting down") == []  # never even tried


def test_the_grace_is_a_positive_number_of_seconds() -> None:
    base = {"environment": "simulator", "rest_url": "http://127.0.0.1:1"}
    assert VenueSettings.model_validate(base).user_stream_grace_seconds == 5.0
    assert VenueSettings.model_validate(base | {"user_stream_grace_seconds": 0.5}).user_stream_grace_seconds == 0.5
    for bad in (0, -1, "soon"):
        with pytest.raises(ValidationError):
            VenueSettings.model_validate(base | {"user_stream_grace_seconds": bad})
