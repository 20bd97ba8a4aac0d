"""Wiring of the kernel service: settings, logs, tracing, journal, recovery, writer, gRPC.

Start-up order: lock the data directory, pin the kernel parameters, open the journal (a torn
tail is truncated and logged), recover the kernel (snapshot + verified replay), start the
gRPC server NOT_SERVING and the writer, reconcile with the venue and re-send what was in
flight, then report SERVING. SIGTERM: NOT_SERVING, drain, stop the server, stop accepting,
send the queued venue commands, stop the venue link and the timer, let the writer commit what
is queued, snapshot; then close the metrics endpoint, the venue channel, the journal and the
lock and flush traces. Everything opened is closed on every path, start-up failures included.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import grpc
from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector

from services.common.grpc_server import GrpcServer, ServiceBinding, run_until_signal
from services.common.logging import get_logger
from services.common.proto import kernel_service_pb2_grpc
from services.common.tasks import ServiceTasks
from services.common.telemetry import client_interceptors, server_interceptors, setup_tracing
from services.kernel.config import KernelSettings
from services.kernel.core import KernelCore, WriterFailedError
from services.kernel.datadir import DataDirLock
from services.kernel.feeds import RecordFeed
from services.kernel.handlers import KernelServicer
from services.kernel.journal import Journal
from services.kernel.metrics import KernelMetrics, LagCollector, SlotStateCollector
from services.kernel.recovery import Recovered, pin_config, recover
from services.kernel.tasks import tick
from services.kernel.venue_link import VenueLink, VenueLinkError

log = get_logger(__name__)

SERVICE_NAME = "pink.v1.KernelService"
VERSION = "0.1.0"
#: Longest wait at shutdown for queued venue commands (what is left is re-sent at the next start).
DRAIN_SECONDS = 5.0
#: Longest wait at shutdown for the writer to commit what is queued.
WRITER_STOP_SECONDS = 10.0
WRITER, VENUE_LINK, TIMER = "kernel-writer", "venue-link", "kernel-timer"


@dataclass(frozen=True)
class Ports:
    """Where a started service listens (ephemeral ports are known only once bound)."""

    grpc: int
    metrics: int | None


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
    stop = stop_event or asyncio.Event()
    async with contextlib.AsyncExitStack() as stack:
        provider = setup_tracing("pink-kernel", VERSION)
        stack.callback(provider.shutdown)
        lock = await DataDirLock.acquire(settings.data_dir)
        stack.push_async_callback(lock.release)
        config = settings.kernel_config()
        await pin_config(settings.data_dir, config)
        journal = await Journal.open(
            settings.data_dir / "journal", segment_bytes=settings.segment_bytes, fsync=settings.fsync
        )
        stack.push_async_callback(journal.close)
        recovered = await recover(journal, config)
        core, registry, metrics = _build_core(settings, recovered, journal)
        feed = RecordFeed(core, journal, settings.watch_buffer)
        servicer = KernelServicer(core, feed, journal, metrics, kernel_id=settings.kernel_id, version=VERSION)
        server = GrpcServer(
            settings,
            [ServiceBinding(SERVICE_NAME, kernel_service_pb2_grpc.add_KernelServiceServicer_to_server, servicer)],
            interceptors=server_interceptors(provider),
            logger=log,
        )
        stack.push_async_callback(server.stop)
        channel = grpc.aio.insecure_channel(settings.venue_address, interceptors=client_interceptors(provider))
        stack.push_async_callback(_close_channel, channel, settings.venue_address)
        venue = VenueLink(
            core,
            channel,
            timeout=settings.venue_timeout_seconds,
            symbols=settings.allowed_symbols,
            reconcile_every=settings.reconcile_every_seconds,
            reconcile_spacing=settings.reconcile_spacing_seconds,
        )
        venue.attach()
        tasks = ServiceTasks(on_failure=stop.set)
        stack.push_async_callback(tasks.stop_all)

        port = await server.start()
        metrics_port = await _start_metrics(settings, registry, stack)
        if on_listening is not None:
            on_listening(Ports(port, metrics_port))
        tasks.start(WRITER, core.run())
        try:
            await venue.startup()
        except VenueLinkError as error:
            log.critical("venue_unreachable_at_startup", error=str(error), venue=settings.venue_address)
            return 3
        except WriterFailedError:
            log.critical("kernel_writer_failed_at_startup")
            return 1
        tasks.start(VENUE_LINK, venue.run())
        tasks.start(TIMER, tick(core.submit, settings.timer_seconds, core.view.due))
        servicer.accepting = True
        await server.set_serving(True)
        log.info("kernel_serving", port=port, sequence=core.committed_sequence, data_dir=str(settings.data_dir))
        if on_ready is not None:
            on_ready(port)
        await run_until_signal(
            server,
            stop_event=stop,
            logger=log,
            on_stop=[
                _stop_accepting(servicer),
                _drain(venue),
                tasks.stopper(VENUE_LINK, TIMER),
                _stop_writer(core, tasks),
                core.final_snapshot,
            ],
        )
        if tasks.failed or core.failed.is_set():
            log.critical("kernel_stopped_after_a_failure", tasks=tasks.failed, writer_failed=core.failed.is_set())
            return 1
        return 0
    raise AssertionError("unreachable")  # AsyncExitStack does not swallow exceptions


def _build_core(
    settings: KernelSettings, recovered: Recovered, journal: Journal
) -> tuple[KernelCore, CollectorRegistry, KernelMetrics]:
    """The writer over the recovered kernel, with its metrics registry."""
    registry = CollectorRegistry()
    for collector in (ProcessCollector, PlatformCollector, GCCollector):
        collector(registry=registry)  # memory, CPU, open files, uptime, GC of this process
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
    registry.register(SlotStateCollector(lambda: core.view.slots))
    return core, registry, metrics


async def _start_metrics(
    settings: KernelSettings, registry: CollectorRegistry, stack: contextlib.AsyncExitStack
) -> int | None:
    """The metrics endpoint when a port is configured (stopped by ``stack``); its bound port."""
    if settings.metrics_port is None:
        return None
    # Imported only when configured: aiohttp's import is about a third of an empty start-up.
    from services.common.metrics import MetricsServer  # noqa: PLC0415

    metrics_server = MetricsServer(registry, settings.metrics_host, settings.metrics_port)
    port = await metrics_server.start()
    stack.push_async_callback(metrics_server.stop)
    return port


async def _close_channel(channel: grpc.aio.Channel, address: str) -> None:
    await channel.close()
    log.info("venue_channel_closed", venue=address)


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


def _stop_writer(core: KernelCore, tasks: ServiceTasks) -> Callable[[], Awaitable[None]]:
    """Lets the writer commit what is queued, then end; cancels it if it does not within the limit."""

    async def stop_writer() -> None:
        await core.stop()
        if not await tasks.wait(WRITER, WRITER_STOP_SECONDS):
            log.error("kernel_writer_did_not_stop", seconds=WRITER_STOP_SECONDS, action="cancelled")
            await tasks.stop([WRITER])

    return stop_writer
