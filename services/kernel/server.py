"""Wiring of the kernel service: settings, logs, tracing, journal, recovery, writer, gRPC.

Start-up order: pin the kernel parameters, open the journal (a torn tail is truncated and
logged), recover the kernel (snapshot + verified replay), start the writer and the gRPC
server NOT_SERVING, reconcile with the venue and re-send what was in flight, then report
SERVING. SIGTERM: NOT_SERVING, drain, stop the server, stop the venue link and the writer,
snapshot, close the journal, flush traces.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import grpc
from prometheus_client import CollectorRegistry

from services.common.grpc_server import GrpcServer, ServiceBinding, run_until_signal
from services.common.logging import get_logger
from services.common.metrics import MetricsServer
from services.common.proto import kernel_input_pb2, kernel_service_pb2_grpc
from services.common.telemetry import client_interceptors, server_interceptors, setup_tracing
from services.kernel.config import KernelSettings
from services.kernel.core import KernelCore
from services.kernel.feeds import RecordFeed
from services.kernel.handlers import KernelServicer
from services.kernel.journal import Journal
from services.kernel.metrics import KernelMetrics, LagCollector
from services.kernel.recovery import pin_config, recover
from services.kernel.venue_link import VenueLink, VenueLinkError

log = get_logger(__name__)

SERVICE_NAME = "pink.v1.KernelService"
VERSION = "0.1.0"
#: Longest wait at shutdown for queued venue commands (what is left is re-sent at the next start).
DRAIN_SECONDS = 5.0


@dataclass(frozen=True)
class Ports:
    """Where a started service listens (ephemeral ports are known only once bound)."""

    grpc: int
    metrics: int | None


async def _timer(core: KernelCore, seconds: float) -> None:
    """Tells the kernel that time passed, so missed deadlines turn into queries."""
    while True:
        await asyncio.sleep(seconds)
        await core.submit(kernel_input_pb2.Timer())


async def serve(
    settings: KernelSettings,
    *,
    stop_event: asyncio.Event | None = None,
    on_ready: Callable[[int], None] | None = None,
    on_listening: Callable[[Ports], None] | None = None,
) -> int:
    """Runs the kernel service until SIGTERM/SIGINT (or ``stop_event``); returns the exit status.

    ``on_listening`` gets the bound ports as soon as the server listens (still NOT_SERVING);
    ``on_ready`` gets the gRPC port once it reports SERVING.
    """
    provider = setup_tracing("pink-kernel", VERSION)
    config = settings.kernel_config()
    await pin_config(settings.data_dir, config)
    journal = await Journal.open(
        settings.data_dir / "journal", segment_bytes=settings.segment_bytes, fsync=settings.fsync
    )
    recovered = await recover(journal, config)
    registry = CollectorRegistry()
    metrics = KernelMetrics(registry)
    core = KernelCore(
        recovered.kernel,
        journal,
        kernel_id=settings.kernel_id,
        slot_count=settings.slot_count,
        max_batch=settings.max_batch,
        queue_limit=settings.queue_limit,
        snapshot_every=settings.snapshot_every,
        metrics=metrics,
        venue_stream_position=recovered.venue_stream_position,
    )
    registry.register(
        LagCollector(lambda: core.last_sequence, lambda: core.committed_sequence, lambda: journal.consumers)
    )
    feed = RecordFeed(core, journal, settings.watch_buffer)
    servicer = KernelServicer(core, feed, journal, metrics, kernel_id=settings.kernel_id, version=VERSION)
    server = GrpcServer(
        settings,
        [ServiceBinding(SERVICE_NAME, kernel_service_pb2_grpc.add_KernelServiceServicer_to_server, servicer)],
        interceptors=server_interceptors(provider),
        logger=log,
    )
    channel = grpc.aio.insecure_channel(settings.venue_address, interceptors=client_interceptors(provider))
    venue = VenueLink(
        core,
        channel,
        timeout=settings.venue_timeout_seconds,
        symbols=settings.allowed_symbols,
        reconcile_every=settings.reconcile_every_seconds,
        reconcile_spacing=settings.reconcile_spacing_seconds,
    )
    venue.attach()
    metrics_server = (
        MetricsServer(registry, settings.metrics_host, settings.metrics_port)
        if settings.metrics_port is not None
        else None
    )
    tasks: list[asyncio.Task[None]] = []
    try:
        port = await server.start()
        metrics_port = await metrics_server.start() if metrics_server is not None else None
        if on_listening is not None:
            on_listening(Ports(port, metrics_port))
        tasks.append(asyncio.create_task(core.run(), name="kernel-writer"))
        try:
            await venue.startup()
        except VenueLinkError as error:
            log.critical("venue_unreachable_at_startup", error=str(error), venue=settings.venue_address)
            return 3
        tasks.append(asyncio.create_task(venue.run(), name="venue-link"))
        tasks.append(asyncio.create_task(_timer(core, settings.timer_seconds), name="kernel-timer"))
        servicer.accepting = True
        await server.set_serving(True)
        log.info("kernel_serving", port=port, sequence=core.committed_sequence, data_dir=str(settings.data_dir))
        if on_ready is not None:
            on_ready(port)
        stop = stop_event or asyncio.Event()
        watch = asyncio.create_task(_stop_on_failure(core, stop), name="writer-watch")
        await run_until_signal(
            server,
            stop_event=stop,
            logger=log,
            on_stop=[
                _stop_accepting(servicer),
                _drain(venue),
                _cancel(tasks),
                core.final_snapshot,
                journal.close,
                channel.close,
                *([metrics_server.stop] if metrics_server is not None else []),
            ],
        )
        watch.cancel()
        return 1 if core.failed.is_set() else 0
    finally:
        await _cancel(tasks)()
        await journal.close()
        provider.shutdown()


def _stop_accepting(servicer: KernelServicer) -> Callable[[], Awaitable[None]]:
    async def stop() -> None:
        servicer.accepting = False

    return stop


def _drain(venue: VenueLink) -> Callable[[], Awaitable[None]]:
    async def drain() -> None:
        try:
            await asyncio.wait_for(venue.idle(), DRAIN_SECONDS)
        except TimeoutError:
            log.warning("venue_commands_left_at_shutdown", pending=venue.pending)

    return drain


async def _stop_on_failure(core: KernelCore, stop: asyncio.Event) -> None:
    await core.failed.wait()
    log.critical("kernel_writer_failed_stopping")
    stop.set()


def _cancel(tasks: list[asyncio.Task[None]]) -> Callable[[], Awaitable[None]]:
    async def cancel() -> None:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        tasks.clear()

    return cancel
