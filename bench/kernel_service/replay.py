"""Restart figures: replay rate of ``recover()`` and time from process start to gRPC SERVING.

Phase 4 of the benchmark. Over the journal of :mod:`bench.kernel_service.journal_build`:
(a) ``Journal.open`` (scan and checksum every frame) then ``recovery.recover()`` (verified replay)
in this process, timed apart (records/s; target >= 500k/s), the recovered state checked against
the kernel that wrote the journal; (b) process start -> first SERVING health answer of
``python -m services.kernel`` (target < 3 s) over an empty journal, over the whole journal with
no snapshot (then SIGKILLed, as after a crash), and over a snapshot ``SNAPSHOT_TAIL`` records
before the end after compaction (the worst tail of ``snapshot_every=10000``). The milestones of
each start come from the kernel's own log.
"""

from __future__ import annotations

import json
import signal
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final

import pink_kernel
from bench.kernel_service.children import Child, Children, channel, free_port, wait_serving
from bench.kernel_service.journal_build import ReplayJournal, build_journal
from bench.kernel_service.settings import RPC_TIMEOUT, START_TIMEOUT, BenchError, Options
from services.common.proto import kernel_service_pb2, kernel_service_pb2_grpc, log_pb2
from services.kernel.config import KernelSettings
from services.kernel.journal import Journal
from services.kernel.recovery import recover
from tests.kernel_service.conftest import make_settings

#: Start-up milestone -> text of the kernel's log line that marks it.
MILESTONES: Final = {
    "journal_opened": "opened: last sequence",
    "recovered": "kernel_recovered",
    "grpc_started": "grpc server started",
    "serving": "kernel_serving",
}


@dataclass(frozen=True)
class Recovery:
    open_seconds: float
    recover_seconds: float
    replayed: int


@dataclass(frozen=True)
class Ready:
    seconds: float
    sequence: int
    breakdown: dict[str, float]


@dataclass(frozen=True)
class ReplayResults:
    journal: ReplayJournal
    recovery: Recovery
    ready_empty: Ready
    ready_replay: Ready
    ready_snapshot: Ready
    snapshot_freed_bytes: int
    snapshot_restore_seconds: float


async def measure_recovery(settings: KernelSettings, expected_hash: str) -> Recovery:
    """Journal.open (scan and checksum every frame) then recover() (verified replay), timed apart."""
    config = settings.kernel_config()
    began = time.perf_counter()
    journal = await Journal.open(settings.data_dir / "journal", segment_bytes=settings.segment_bytes, fsync=True)
    opened = time.perf_counter()
    try:
        recovered = await recover(journal, config)
        done = time.perf_counter()
    finally:
        await journal.close()
    if recovered.kernel.state_hash() != expected_hash:
        raise BenchError("the recovered kernel's state differs from the kernel that wrote the journal")
    return Recovery(opened - began, done - opened, recovered.replayed)


def milestones(child: Child) -> dict[str, float]:
    """Seconds from process start to each start-up milestone, from the kernel's JSON log."""
    found: dict[str, float] = {}
    for line in child.log_path.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # not a log record (e.g. a line a library printed)
        text = f"{entry.get('event', '')}"
        for name, marker in MILESTONES.items():
            if name not in found and marker in text:
                stamp = datetime.fromisoformat(str(entry["timestamp"]).replace("Z", "+00:00")).timestamp()
                found[name] = round(stamp - child.started_wall, 3)
    return found


async def time_to_serving(children: Children, data_dir: Path, *, crash: bool) -> Ready:
    """Process start -> health SERVING of ``python -m services.kernel`` over ``data_dir`` (fresh venue double)."""
    venue, venue_port = await children.serve("venue")
    port = free_port()
    kernel = await children.kernel(data_dir, f"127.0.0.1:{venue_port}", port)
    async with channel(port) as kernel_channel:
        serving = await wait_serving(kernel_channel, kernel, START_TIMEOUT)
        seconds = serving - kernel.started
        stub = kernel_service_pb2_grpc.KernelServiceStub(kernel_channel)
        status = await stub.GetStatus(kernel_service_pb2.GetStatusRequest(), timeout=RPC_TIMEOUT)
    code = await kernel.stop(signal.SIGKILL if crash else signal.SIGTERM)
    if not crash and code != 0:
        raise BenchError(f"the kernel exited with {code}; log:\n{kernel.tail()}")
    await venue.stop()
    return Ready(seconds, status.sequence, milestones(kernel))


async def add_snapshot(settings: KernelSettings, journal_info: ReplayJournal) -> int:
    """Stores the loop's snapshot (``SNAPSHOT_TAIL`` records before its end) and compacts; returns bytes freed."""
    journal = await Journal.open(settings.data_dir / "journal", segment_bytes=settings.segment_bytes, fsync=True)
    try:
        stored = log_pb2.JournalSnapshot(kernel_snapshot=journal_info.snapshot)
        await journal.write_snapshot(journal_info.snapshot_sequence, stored.SerializeToString())
        return await journal.compact()
    finally:
        await journal.close()


async def run_replay(options: Options, children: Children, work: Path) -> ReplayResults:
    """Phase 4: build the journal, recover() in process, then time to SERVING without and with a snapshot."""
    ready_empty = await time_to_serving(children, work / "fresh", crash=False)
    data_dir = work / "replay"
    settings = make_settings(data_dir)
    journal = await build_journal(settings, options.replay_records)
    recovery = await measure_recovery(settings, journal.state_hash)
    if recovery.replayed != journal.records:
        raise BenchError(f"recover() replayed {recovery.replayed} of {journal.records} records")
    ready_replay = await time_to_serving(children, data_dir, crash=True)
    freed = await add_snapshot(settings, journal)
    began = time.perf_counter()
    pink_kernel.Kernel.restore(journal.snapshot)
    restore_seconds = time.perf_counter() - began
    ready_snapshot = await time_to_serving(children, data_dir, crash=False)
    return ReplayResults(
        journal=journal,
        recovery=recovery,
        ready_empty=ready_empty,
        ready_replay=ready_replay,
        ready_snapshot=ready_snapshot,
        snapshot_freed_bytes=freed,
        snapshot_restore_seconds=restore_seconds,
    )
