"""Latency and sustained runs against the real kernel service, next to the empty RPC's.

Phases 1-3 of the benchmark: the floor (fsync, empty RPC at concurrency 1), SubmitIntent,
GetControl and isolated SubmitIntent at concurrency 1, then sustained empty RPC, MarkPrice and
SubmitIntent at ``--concurrency``. Each kernel is ``python -m services.kernel`` (fsync on, metrics
on) with its own venue double; every empty-RPC run comes right before the kernel runs it is
compared with, and the CPU of the kernel, the venue, the empty server and the client is sampled.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import grpc.aio

from bench.kernel_service.callers import IntentCaller, empty_caller, mark_caller, read_caller
from bench.kernel_service.children import Child, Children, channel, free_port, wait_serving
from bench.kernel_service.durable import DURABLE_METHOD
from bench.kernel_service.floor import fsync_floor, fsync_floor_threaded
from bench.kernel_service.settings import (
    ISOLATED_INTENTS,
    ISOLATED_PAUSE,
    LATENCY_SLOTS,
    SLOTS_PER_CLIENT,
    START_TIMEOUT,
    BenchError,
    Options,
)
from bench.kernel_service.stats import Latency, Load, measure_load, own_cpu_seconds
from services.kernel.journal import Journal

#: fsync probes of each floor run.
FSYNC_PROBES = 500


@dataclass(frozen=True)
class LiveResults:
    fsync: Latency
    fsync_threaded: Latency
    #: fsync probes and empty RPCs with the isolated run's pause after each: its floor.
    fsync_paced: Latency
    empty_c1_paced: Load
    empty_c1: Load
    #: The empty RPC made durable (one journal append, group commit): any Python handler's floor.
    durable_c1: Load
    read_c1: Load
    intent_c1: Load
    intent_c1_isolated: Load
    empty_load: Load
    durable_load: Load
    mark_load: Load
    intent_load: Load
    #: Records and mean record bytes of the concurrency-1 kernel's journal.
    live_records: int
    live_record_bytes: float


@dataclass
class KernelUnderTest:
    """A kernel service (fsync on, metrics on) with its own venue double, SERVING."""

    kernel: Child
    venue: Child
    channel: grpc.aio.Channel
    metrics_port: int

    @classmethod
    async def start(cls, children: Children, data_dir: Path, slot_count: int) -> KernelUnderTest:
        venue, venue_port = await children.serve("venue")
        port, metrics_port = free_port(), free_port()
        kernel = await children.kernel(
            data_dir, f"127.0.0.1:{venue_port}", port, slot_count=slot_count, metrics_port=metrics_port
        )
        kernel_channel = channel(port)
        await wait_serving(kernel_channel, kernel, START_TIMEOUT)
        return cls(kernel, venue, kernel_channel, metrics_port)

    def cpu(self, empty: Child) -> dict[str, Callable[[], float]]:
        return {
            "kernel": self.kernel.cpu_seconds,
            "venue": self.venue.cpu_seconds,
            "empty_server": empty.cpu_seconds,
            "client": own_cpu_seconds,
        }

    async def stop(self) -> None:
        """SIGTERM; the kernel must exit 0."""
        await self.channel.close()
        self.kernel.check_alive()
        code = await self.kernel.stop()
        await self.venue.stop()
        if code != 0:
            raise BenchError(f"{self.kernel.name} exited with {code}; log:\n{self.kernel.tail()}")


async def journal_record_sizes(data_dir: Path) -> tuple[int, float]:
    """Records retained in a stopped kernel's journal and their mean bytes, read through ``Journal``."""
    journal = await Journal.open(data_dir / "journal", fsync=False)
    count = size = 0
    try:
        async for _, payload in journal.replay(journal.first_sequence - 1):
            count += 1
            size += len(payload)
    finally:
        await journal.close()
    return count, (size / count if count else 0.0)


async def run_live(options: Options, children: Children, work: Path) -> LiveResults:
    """Phases 1-3: floor, SubmitIntent at concurrency 1, sustained load (kernel and empty RPC).

    The concurrency-1 kernel has ``LATENCY_SLOTS`` slots (close to the default 10); the sustained
    one ``SLOTS_PER_CLIENT`` per client.
    """
    fsync = fsync_floor(work, FSYNC_PROBES)
    fsync_threaded = await fsync_floor_threaded(work, FSYNC_PROBES)
    fsync_paced = fsync_floor(work, ISOLATED_INTENTS, pause=ISOLATED_PAUSE)
    empty, empty_port = await children.serve("empty")
    concurrency = options.concurrency
    async with channel(empty_port) as empty_channel:
        empty_call = empty_caller(empty_channel)
        durable_call = empty_caller(empty_channel, DURABLE_METHOD)

        service = await KernelUnderTest.start(children, work / "c1", LATENCY_SLOTS)
        cpu = service.cpu(empty)
        count = options.latency_intents
        intents = IntentCaller(service.channel, [range(LATENCY_SLOTS)], "l")
        empty_c1 = await measure_load("empty c1", empty_call, cpu, concurrency=1, warmup=count // 5, calls=count)
        durable_c1 = await measure_load("durable c1", durable_call, cpu, concurrency=1, warmup=count // 5, calls=count)
        read_c1 = await measure_load(
            "read c1", read_caller(service.channel), cpu, concurrency=1, warmup=count // 5, calls=count // 2
        )
        intent_c1 = await measure_load(
            "intent c1",
            intents,
            cpu,
            concurrency=1,
            warmup=count // 5,
            calls=count,
            metrics_port=service.metrics_port,
            waits=intents.waits,
        )
        empty_c1_paced = await measure_load(
            "empty c1 paced",
            empty_call,
            cpu,
            concurrency=1,
            warmup=LATENCY_SLOTS * 2,
            calls=ISOLATED_INTENTS,
            pause=ISOLATED_PAUSE,
        )
        isolated = await measure_load(
            "intent c1 isolated",
            intents,
            cpu,
            concurrency=1,
            warmup=LATENCY_SLOTS * 2,
            calls=ISOLATED_INTENTS,
            metrics_port=service.metrics_port,
            pause=ISOLATED_PAUSE,
            waits=intents.waits,
        )
        await service.stop()
        live_records, live_record_bytes = await journal_record_sizes(work / "c1")

        service = await KernelUnderTest.start(children, work / "load", concurrency * SLOTS_PER_CLIENT)
        cpu = service.cpu(empty)
        empty_load = await measure_load(
            "empty load", empty_call, cpu, concurrency=concurrency, seconds=options.duration
        )
        durable_load = await measure_load(
            "durable load", durable_call, cpu, concurrency=concurrency, seconds=options.duration
        )
        # Before the intents, with no slot open: the kernel's write path without venue traffic.
        mark_load = await measure_load(
            "mark load",
            mark_caller(service.channel),
            cpu,
            concurrency=concurrency,
            seconds=options.duration,
            metrics_port=service.metrics_port,
        )
        owned = [range(i * SLOTS_PER_CLIENT, (i + 1) * SLOTS_PER_CLIENT) for i in range(concurrency)]
        load_intents = IntentCaller(service.channel, owned, "t")
        intent_load = await measure_load(
            "intent load",
            load_intents,
            cpu,
            concurrency=concurrency,
            seconds=options.duration,
            metrics_port=service.metrics_port,
            waits=load_intents.waits,
        )
        await service.stop()
    await empty.stop()
    return LiveResults(
        fsync=fsync,
        fsync_threaded=fsync_threaded,
        fsync_paced=fsync_paced,
        empty_c1_paced=empty_c1_paced,
        empty_c1=empty_c1,
        durable_c1=durable_c1,
        read_c1=read_c1,
        intent_c1=intent_c1,
        intent_c1_isolated=isolated,
        empty_load=empty_load,
        durable_load=durable_load,
        mark_load=mark_load,
        intent_load=intent_load,
        live_records=live_records,
        live_record_bytes=live_record_bytes,
    )
