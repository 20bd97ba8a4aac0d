"""The BingX simulator over real HTTP/WebSocket and the venue service in front of it, on loopback.

:func:`simulator` serves ``services.venue.sim`` on an ephemeral port with the wall clock (the
venue service signs with real time) and no price timer: prices move only through the control
API. :func:`venue_service` runs ``services.venue.server.serve`` against it and yields a
:class:`Harness` once the service reports SERVING; leaving the block stops it like SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import grpc.aio
from opentelemetry.sdk.trace.export import SpanExporter

from services.common.proto import venue_event_pb2, venue_service_pb2, venue_service_pb2_grpc
from services.venue.adapter import Adapter
from services.venue.config import VenueSettings
from services.venue.server import Ports, serve
from services.venue.sim.clock import SystemClock
from services.venue.sim.config import SimSettings
from services.venue.sim.runtime import Simulator
from tests.venue_sim.helpers import serving

__all__ = ["BTC", "ETH", "Harness", "Sim", "simulator", "venue_service", "venue_settings"]

BTC = "BTC-USDT"
ETH = "ETH-USDT"
TIMEOUT = aiohttp.ClientTimeout(total=10)
Kind = venue_event_pb2.VenueEventKind


class Sim:
    """The running simulator: its base URL, its state, and its control API."""

    def __init__(self, session: aiohttp.ClientSession, base: str, sim: Simulator) -> None:
        self.session = session
        self.base = base
        self.sim = sim

    async def control(self, path: str, body: dict[str, object] | None = None, method: str = "POST") -> Any:
        async with self.session.request(method, f"{self.base}/_sim/{path}", json=body or {}, timeout=TIMEOUT) as reply:
            text = await reply.text()
            assert reply.status == 200, text
            return await reply.json()

    async def price(self, symbol: str, price: str) -> None:
        await self.control("price", {"symbol": symbol, "price": price})

    async def faults(self, **faults: object) -> None:
        await self.control("faults", dict(faults))

    def orders(self, client_order_id: str | None = None) -> list[Any]:
        """Every order the simulator holds (of one client order id)."""
        orders = list(self.sim.engine.state.orders.values())
        return [order for order in orders if client_order_id is None or order.client_id == client_order_id]


@asynccontextmanager
async def simulator(**overrides: Any) -> AsyncIterator[Sim]:
    values: dict[str, Any] = {"tick_seconds": 0.0, "rate_limits": False, "seed": 11}
    values.update(overrides)
    async with serving(SimSettings.model_validate(values), SystemClock(), Sim) as sim:
        yield sim


def venue_settings(sim: Sim, **overrides: Any) -> VenueSettings:
    values: dict[str, Any] = {
        "environment": "simulator",
        "rest_url": sim.base,
        "port": 0,
        "grace_seconds": 0.5,
        "request_timeout_seconds": 2.0,
        "ack_wait_seconds": 2.0,
        "gap_fill_seconds": 3600.0,
        "reconnect_initial_seconds": 0.05,
        "reconnect_max_seconds": 0.5,
        "stream_idle_seconds": 10.0,
    }
    values.update(overrides)
    return VenueSettings.model_validate(values)


@dataclass
class Harness:
    settings: VenueSettings
    adapter: Adapter
    channel: grpc.aio.Channel
    stub: venue_service_pb2_grpc.VenueServiceAsyncStub
    port: int
    metrics_port: int | None
    stop: asyncio.Event
    task: asyncio.Task[int]

    @property
    def calls(self) -> int:
        """REST calls the adapter sent so far."""
        return self.adapter.client.total_calls

    async def executions(self, count: int, *, after: str = "", seconds: float = 5.0) -> list[Any]:
        """The first ``count`` StreamExecutions responses after ``after``."""
        call = self.stub.StreamExecutions(venue_service_pb2.StreamExecutionsRequest(after_position=after))
        got: list[Any] = []
        try:
            async with asyncio.timeout(seconds):
                async for response in call:
                    got.append(response)
                    if len(got) == count:
                        break
        finally:
            call.cancel()
        return got

    async def wait_for(self, predicate: Callable[[], bool], seconds: float = 5.0) -> None:
        """Returns once ``predicate()`` holds, re-checked after every execution report."""
        if not await self.adapter.executions.wait_for(predicate, seconds):
            raise TimeoutError("condition not met")

    def kinds(self, client_order_id: str) -> list[str]:
        facts = self.adapter.executions.facts(client_order_id=client_order_id)
        return [Kind.Name(event.kind).removeprefix("VENUE_EVENT_KIND_") for event in (facts.events if facts else [])]


@asynccontextmanager
async def venue_service(
    sim: Sim, *, span_exporter: SpanExporter | None = None, **overrides: Any
) -> AsyncIterator[Harness]:
    settings = venue_settings(sim, **overrides)
    stop = asyncio.Event()
    ready: asyncio.Future[Adapter] = asyncio.get_running_loop().create_future()
    ports: list[Ports] = []
    task = asyncio.create_task(
        serve(
            settings, stop_event=stop, on_listening=ports.append, on_ready=ready.set_result, span_exporter=span_exporter
        )
    )
    try:
        async with asyncio.timeout(10):
            adapter = await asyncio.shield(ready)
    except TimeoutError:
        task.cancel()
        raise
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{ports[0].grpc}")
    harness = Harness(
        settings,
        adapter,
        channel,
        venue_service_pb2_grpc.VenueServiceStub(channel),
        ports[0].grpc,
        ports[0].metrics,
        stop,
        task,
    )
    try:
        yield harness
    finally:
        await channel.close()
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            async with asyncio.timeout(10):
                await task
