"""Wiring of the venue service: settings, tracing, metrics, the adapter, gRPC.

Start-up: the gRPC server starts NOT_SERVING; the adapter verifies the account (a signed read)
and loads the instruments, then connects the user stream; only then SERVING. While running,
health follows the user stream (:mod:`services.venue.readiness`, a watched task: one that
fails shuts the service down): NOT_SERVING once it has been down longer than
``user_stream_grace_seconds``, SERVING again once it is back and gap-filled.
SIGTERM: NOT_SERVING, drain, stop the server (in-flight RPCs get their grace), stop the
readiness watcher (which changes health no more once SIGTERM came), stop the adapter's tasks
and close its session, close the metrics endpoint, flush traces.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable
from dataclasses import dataclass

from opentelemetry.sdk.trace.export import SpanExporter
from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector

from services.common.grpc_server import GrpcServer, ServiceBinding, run_until_signal
from services.common.logging import get_logger
from services.common.proto import venue_service_pb2_grpc
from services.common.tasks import ServiceTasks
from services.common.telemetry import server_interceptors, setup_tracing
from services.venue.adapter import Adapter
from services.venue.bingx.client import BingXError, OutcomeUnknownError, RateLimitedError
from services.venue.bingx.wire import WireError
from services.venue.config import VenueSettings
from services.venue.handlers import VenueServicer
from services.venue.metrics import VenueMetrics
from services.venue.readiness import UserStreamReadiness

__all__ = ["SERVICE_NAME", "Ports", "serve"]

READINESS = "readiness-user-stream"

log = get_logger(__name__)

SERVICE_NAME = "pink.v1.VenueService"
VERSION = "0.1.0"


@dataclass(frozen=True)
class Ports:
    grpc: int
    metrics: int | None


async def serve(
    settings: VenueSettings,
    *,
    stop_event: asyncio.Event | None = None,
    on_listening: Callable[[Ports], None] | None = None,
    on_started: Callable[[Adapter], None] | None = None,
    on_ready: Callable[[Adapter], None] | None = None,
    span_exporter: SpanExporter | None = None,
) -> int:
    """Runs the venue service until SIGTERM/SIGINT (or ``stop_event``); returns the exit status.

    ``on_listening`` gets the ports once gRPC listens (NOT_SERVING), ``on_started`` the adapter
    once the account is verified and the instruments loaded (still NOT_SERVING until the user
    stream is connected and gap-filled), ``on_ready`` the adapter once SERVING. Exit status 3:
    BingX unusable at start-up (keys refused, unreachable).
    """
    stop = stop_event or asyncio.Event()
    async with contextlib.AsyncExitStack() as stack:
        provider = setup_tracing("pink-venue", VERSION, exporter=span_exporter)
        stack.callback(provider.shutdown)
        registry = CollectorRegistry()
        for collector in (ProcessCollector, PlatformCollector, GCCollector):
            collector(registry=registry)
        metrics = VenueMetrics(registry)
        adapter = Adapter(settings, metrics, provider.get_tracer("services.venue"))
        stack.push_async_callback(adapter.stop)
        server = GrpcServer(
            settings,
            [
                ServiceBinding(
                    SERVICE_NAME, venue_service_pb2_grpc.add_VenueServiceServicer_to_server, VenueServicer(adapter)
                )
            ],
            interceptors=server_interceptors(provider),
            logger=log,
        )
        stack.push_async_callback(server.stop)
        port = await server.start()
        metrics_port = await _start_metrics(settings, registry, stack)
        if on_listening is not None:
            on_listening(Ports(port, metrics_port))
        try:
            await adapter.start()
        except (BingXError, OutcomeUnknownError, RateLimitedError, WireError) as error:
            log.critical("venue_unusable_at_startup", error=str(error), environment=settings.environment)
            return 3
        if on_started is not None:
            on_started(adapter)
        if not await _ready_unless_stopped(adapter, stop):
            log.warning("venue_stopped_before_ready", connected=adapter.user_stream.connected.is_set())
            return 0
        await server.set_serving(True)
        log.info("venue_serving", port=port, environment=settings.environment, epoch=adapter.executions.epoch)
        readiness = UserStreamReadiness(
            adapter.user_stream,
            metrics,
            caught_up=adapter.wait_caught_up,
            set_serving=server.set_serving,
            grace_seconds=settings.user_stream_grace_seconds,
            stop=stop,
        )
        tasks = ServiceTasks(on_failure=stop.set)  # a watcher that fails cannot vouch for SERVING
        stack.push_async_callback(tasks.stop_all)
        tasks.start(READINESS, readiness.run())
        if on_ready is not None:
            on_ready(adapter)
        await run_until_signal(server, stop_event=stop, logger=log, on_stop=[tasks.stopper(READINESS), adapter.stop])
        return 0
    raise AssertionError("unreachable")  # AsyncExitStack does not swallow exceptions


async def _ready_unless_stopped(adapter: Adapter, stop: asyncio.Event) -> bool:
    """Waits for the adapter to be ready; False when SIGTERM/SIGINT (or ``stop``) comes first."""
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT)
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    ready = asyncio.ensure_future(adapter.wait_ready())
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({ready, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in (ready, stopped):
            waiter.cancel()
    succeeded = ready.done() and not ready.cancelled()
    if not succeeded:
        for sig in signals:
            loop.remove_signal_handler(sig)
    # Else the handlers stay until run_until_signal replaces them: a signal in between still stops.
    return succeeded


async def _start_metrics(
    settings: VenueSettings, registry: CollectorRegistry, stack: contextlib.AsyncExitStack
) -> int | None:
    if settings.metrics_port is None:
        return None
    from services.common.metrics import MetricsServer  # noqa: PLC0415 - aiohttp-based, only when configured

    metrics_server = MetricsServer(registry, settings.metrics_host, settings.metrics_port)
    bound = await metrics_server.start()
    stack.push_async_callback(metrics_server.stop)
    return bound
