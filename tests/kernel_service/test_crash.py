"""Crash test of the kernel service: SIGKILL the real process under load, restart, compare.

Each run (one seed) starts the venue double in this process and the kernel as a child process
(``python -m services.kernel``, fsync on), drives a concurrent load of SubmitIntent, MarkPrice
and ApplyVenueEvents calls from several client tasks plus a WatchRecords subscriber, and
SIGKILLs the child when the seeded number of acknowledged answers (OK with
``outcome.accepted``) has arrived, while the other clients' calls are in flight. Then:

(a) a clean replay (fresh kernel, every journaled record from sequence 1, outcomes verified)
    of the journal left on disk succeeds;
(b) every acknowledged input is in that journal at its ``outcome.sequence``, with the same
    input and the same outcome, and every record the subscriber was sent is there unchanged;
(c) the kernel restarted on the same data directory recovers exactly that journal (its
    ``kernel_recovered`` log line equals the clean replay), serves, reports through GetStatus a
    state hash equal to a clean replay up to ``state_sequence``, and exits 0 on SIGTERM;
(d) the venue never saw a second order for one client order id, nor an order the journal
    does not hold (commands go out only after their record is durable).

The subscriber registers a log consumer that never acknowledges, which keeps every segment
from compaction: runs can therefore also take snapshots and rotate segments (both drawn from
the seed) while the reference stays a replay from sequence 1.

``PINK_CHAOS_RUNS`` (default 50) sets the number of runs, seeds 0..RUNS-1 (``make chaos``
runs many more); ``PINK_CHAOS_SEED=<n>`` repeats one run. A failure names its seed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import shutil
import signal
import time
import traceback
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TypeAlias

import grpc
import grpc.aio
import pytest

from services.common.proto import (
    intent_pb2,
    kernel_input_pb2,
    kernel_service_pb2,
    kernel_service_pb2_grpc,
    log_pb2,
    outcome_pb2,
    types_pb2,
    venue_event_pb2,
    venue_service_pb2,
)
from services.kernel.config import KernelSettings
from services.kernel.journal import Journal
from tests.kernel_service.conftest import clean_replay, make_settings
from tests.kernel_service.kernel_process import KernelProcess, kernel_process
from tests.kernel_service.venue_double import BTC, ETH, VenueDouble

pytestmark = pytest.mark.anyio
log = logging.getLogger(__name__)

RUNS_ENV = "PINK_CHAOS_RUNS"
SEED_ENV = "PINK_CHAOS_SEED"
PARALLEL_ENV = "PINK_CHAOS_PARALLEL"
DEFAULT_RUNS = 50
#: Runs at a time: a process start is ~1 s of one core, so two runs keep both cores busy.
DEFAULT_PARALLEL = 2
#: Deadline of one whole run (two process starts, the load, the checks).
RUN_SECONDS = 120.0
#: Deadline of a process start up to SERVING, of one RPC, of an exit after a signal.
START_SECONDS = 30.0
RPC_SECONDS = 10.0
EXIT_SECONDS = 30.0
SLOTS = 10
#: The subscriber's consumer name: never acknowledged, so nothing is ever compacted.
CONSUMER = "crash-test"
#: Prices and sizes valid for the venue double's instruments (tick, step).
PRICES = {BTC: Decimal(50000), ETH: Decimal(2500)}
TICKS = {BTC: Decimal("0.1"), ETH: Decimal("0.01")}
STEPS = {BTC: Decimal("0.001"), ETH: Decimal("0.01")}

Input: TypeAlias = intent_pb2.Intent | venue_event_pb2.VenueEvent | kernel_input_pb2.MarkPrice


def _seeds() -> list[int]:
    single = os.environ.get(SEED_ENV)
    if single:
        return [int(single)]
    return list(range(int(os.environ.get(RUNS_ENV, str(DEFAULT_RUNS)))))


@dataclass(frozen=True)
class Plan:
    """Everything a seed decides, apart from the load's own choices (seeded per client)."""

    seed: int
    clients: int
    kill_after: int
    snapshot_every: int
    segment_bytes: int
    timer_seconds: float
    max_batch: int

    @classmethod
    def of(cls, seed: int) -> Plan:
        rng = random.Random(seed)  # noqa: S311 - a reproducible test schedule, not a secret
        return cls(
            seed=seed,
            clients=rng.randint(3, 8),
            kill_after=rng.randint(1, 200),
            snapshot_every=rng.choice([1_000_000, 1_000_000, 25, 60]),
            segment_bytes=rng.choice([64 * 1024 * 1024, 64 * 1024 * 1024, 8192, 32768]),
            timer_seconds=rng.choice([0.1, 0.5, 1.0]),
            max_batch=rng.choice([256, 256, 4]),
        )

    def settings(self, data_dir: Path, venue: VenueDouble) -> KernelSettings:
        return make_settings(
            data_dir,
            venue_address=venue.address,
            fsync=True,
            snapshot_every=self.snapshot_every,
            segment_bytes=self.segment_bytes,
            timer_seconds=self.timer_seconds,
            max_batch=self.max_batch,
            slot_count=SLOTS,
        )


@dataclass(frozen=True)
class Ack:
    """An acknowledged input: the call answered OK and its outcome was accepted."""

    payload: Input
    outcome: outcome_pb2.Outcome


@dataclass
class Load:
    """Concurrent clients against one kernel process, which they SIGKILL after ``plan.kill_after`` acks."""

    plan: Plan
    stub: kernel_service_pb2_grpc.KernelServiceAsyncStub
    venue: VenueDouble
    kernel: KernelProcess
    acks: list[Ack] = field(default_factory=list)
    #: Every record the WatchRecords subscriber was sent.
    watched: list[log_pb2.LogRecord] = field(default_factory=list)
    answers: int = 0
    in_flight: int = 0
    in_flight_at_kill: int = -1
    #: Set when the SIGKILL is sent; calls failing after it are expected.
    killed: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        """Subscribes, drives the clients until the kill, returns once every call has ended."""
        subscribed = asyncio.Event()
        watcher = asyncio.create_task(self._watch(subscribed), name="crash-watcher")
        first_record = asyncio.create_task(subscribed.wait(), name="crash-subscribed")
        try:
            async with asyncio.timeout(START_SECONDS):
                await asyncio.wait({watcher, first_record}, return_when="FIRST_COMPLETED")
            if watcher.done():
                watcher.result()
                raise AssertionError("the subscriber ended before its first record")
            async with asyncio.TaskGroup() as group:
                for index in range(self.plan.clients):
                    group.create_task(self._client(index), name=f"crash-client-{index}")
        finally:
            if not self.killed.is_set():  # a client failed: the checks will not run, just stop the kernel
                self.killed.set()
                self.kernel.send(signal.SIGKILL)
            first_record.cancel()
            await watcher

    async def _watch(self, subscribed: asyncio.Event) -> None:
        request = kernel_service_pb2.WatchRecordsRequest(after_sequence=0, consumer=CONSUMER)
        call = self.stub.WatchRecords(request, timeout=RUN_SECONDS)
        try:
            async for message in call:
                self.watched.append(message.record)
                subscribed.set()  # the consumer is registered before the first record is sent
        except grpc.aio.AioRpcError:
            if not self.killed.is_set():
                raise

    def _acknowledge(self, payload: Input, outcome: outcome_pb2.Outcome) -> None:
        self.answers += 1
        if not outcome.accepted:
            return
        self.acks.append(Ack(payload, outcome))
        if len(self.acks) == self.plan.kill_after and not self.killed.is_set():
            # The other clients' calls are in flight right now (each client always has one).
            self.killed.set()
            self.in_flight_at_kill = self.in_flight
            self.kernel.send(signal.SIGKILL)

    async def _client(self, index: int) -> None:
        rng = random.Random(f"{self.plan.seed}:{index}")  # noqa: S311 - reproducible choices, not a secret
        number = 0
        while not self.killed.is_set():
            number += 1
            key = f"s{self.plan.seed}-c{index}-{number}"
            self.in_flight += 1
            try:
                answered = await self._call(rng, key)
            except grpc.aio.AioRpcError:
                if self.killed.is_set():
                    return  # the kernel is gone: this call is not acknowledged, and that is fine
                raise
            finally:
                self.in_flight -= 1
            for payload, outcome in answered:
                self._acknowledge(payload, outcome)

    async def _call(self, rng: random.Random, key: str) -> list[tuple[Input, outcome_pb2.Outcome]]:
        kind = rng.choices(["enter", "exit", "mark", "events", "cancel"], weights=[5, 3, 3, 3, 1])[0]
        if kind == "mark":
            mark = _mark(rng)
            marked = await self.stub.MarkPrice(
                kernel_service_pb2.MarkPriceRequest(mark_price=mark), timeout=RPC_SECONDS
            )
            return [(mark, marked.outcome)]
        if kind == "events":
            events = [self._event(rng, f"{key}-{i}") for i in range(rng.randint(1, 3))]
            request = kernel_service_pb2.ApplyVenueEventsRequest(events=events)
            applied = await self.stub.ApplyVenueEvents(request, timeout=RPC_SECONDS)
            assert len(applied.outcomes) == len(events), "one outcome per event"
            return list(zip(events, applied.outcomes, strict=True))
        intent = _enter(rng, key) if kind == "enter" else _exit_or_cancel(rng, key, cancel=kind == "cancel")
        submitted = await self.stub.SubmitIntent(
            kernel_service_pb2.SubmitIntentRequest(intent=intent), timeout=RPC_SECONDS
        )
        return [(intent, submitted.outcome)]

    def _event(self, rng: random.Random, key: str) -> venue_event_pb2.VenueEvent:
        """Mostly a real event of the venue (the kernel may have it already), else a stray one."""
        executions = self.venue.executions
        if executions and rng.random() < 0.8:
            event = venue_event_pb2.VenueEvent()
            event.CopyFrom(executions[rng.randrange(len(executions))].event)
            return event
        stray = venue_event_pb2.VenueEvent(
            kind=venue_event_pb2.VENUE_EVENT_KIND_ORDER_ACCEPTED,
            client_order_id=f"pk-stray-{rng.randrange(1_000_000)}",
            venue_event_id=f"stray-{key}",
        )
        stray.exchange_time.FromNanoseconds(time.time_ns())
        return stray


def _decimal(value: Decimal) -> types_pb2.Decimal:
    return types_pb2.Decimal(value=f"{value:f}")


def _mark(rng: random.Random) -> kernel_input_pb2.MarkPrice:
    symbol = rng.choice([BTC, ETH])
    ticks = round(PRICES[symbol] * Decimal(rng.uniform(0.95, 1.05)) / TICKS[symbol])
    mark = kernel_input_pb2.MarkPrice(symbol=symbol, price=_decimal(ticks * TICKS[symbol]))
    mark.exchange_time.FromNanoseconds(time.time_ns())
    return mark


def _enter(rng: random.Random, key: str) -> intent_pb2.Intent:
    symbol = rng.choice([BTC, ETH])
    intent = intent_pb2.Intent(
        intent_id=key,
        action=intent_pb2.INTENT_ACTION_ENTER,
        slot_id=rng.randrange(SLOTS),
        symbol=symbol,
        side=rng.choice([types_pb2.SIDE_LONG, types_pb2.SIDE_SHORT]),
        order_type=types_pb2.ORDER_TYPE_MARKET,
        target_size=_decimal(STEPS[symbol] * rng.randint(1, 10)),
        leverage=_decimal(Decimal(rng.randint(1, 10))),
        reference_price=_decimal(PRICES[symbol]),
    )
    if rng.random() < 0.3:
        intent.exit_leg_ratios.extend([_decimal(Decimal("0.5")), _decimal(Decimal("0.5"))])
    return intent


def _exit_or_cancel(rng: random.Random, key: str, *, cancel: bool) -> intent_pb2.Intent:
    slot = rng.randrange(SLOTS)
    if cancel:
        return intent_pb2.Intent(intent_id=key, action=intent_pb2.INTENT_ACTION_CANCEL, slot_id=slot)
    action = rng.choice([intent_pb2.INTENT_ACTION_EXIT, intent_pb2.INTENT_ACTION_EXIT_RESIDUAL])
    return intent_pb2.Intent(intent_id=key, action=action, slot_id=slot, order_type=types_pb2.ORDER_TYPE_MARKET)


async def _journal_records(settings: KernelSettings) -> tuple[list[log_pb2.LogRecord], int]:
    """Every record of the journal on disk from sequence 1 (checksums verified), and the torn tail cut (bytes)."""
    journal = await Journal.open(settings.data_dir / "journal", segment_bytes=settings.segment_bytes, fsync=False)
    try:
        assert journal.last_sequence == 0 or journal.first_sequence == 1, "part of the journal was compacted"
        records: list[log_pb2.LogRecord] = []
        while len(records) < journal.last_sequence:
            for sequence, payload in await journal.read(len(records), 4096):
                record = log_pb2.LogRecord.FromString(payload)
                assert record.sequence == sequence == len(records) + 1, f"record {sequence} out of order"
                records.append(record)
        return records, journal.recovery.truncated_bytes
    finally:
        await journal.close()


def _journaled_input(record: log_pb2.LogRecord) -> Input | None:
    which = record.input.WhichOneof("payload")
    if which == "intent":
        return record.input.intent
    if which == "venue_event":
        return record.input.venue_event
    if which == "mark_price":
        return record.input.mark_price
    return None


def _describe(payload: Input) -> str:
    if isinstance(payload, intent_pb2.Intent):
        return f"intent {payload.intent_id}"
    if isinstance(payload, venue_event_pb2.VenueEvent):
        return f"venue event {payload.venue_event_id}"
    return f"mark {payload.symbol} {payload.price.value}"


def _check_acknowledged(load: Load, records: list[log_pb2.LogRecord]) -> None:
    """(b): every acknowledged input and every record sent to the subscriber survived the crash."""
    sequences = [ack.outcome.sequence for ack in load.acks]
    assert len(set(sequences)) == len(sequences), "two acknowledged answers carry the same sequence"
    for ack in load.acks:
        sequence = ack.outcome.sequence
        assert 1 <= sequence <= len(records), (
            f"acknowledged {_describe(ack.payload)} at sequence {sequence} is lost: the journal ends at {len(records)}"
        )
        record = records[sequence - 1]
        journaled = _journaled_input(record)
        assert journaled == ack.payload, (
            f"sequence {sequence} was acknowledged for {_describe(ack.payload)} but the journal holds "
            f"{record.input.WhichOneof('payload')} {journaled}"
        )
        assert record.outcome == ack.outcome, f"the journaled outcome of sequence {sequence} differs from the answer"
    for seen in load.watched:
        assert 1 <= seen.sequence <= len(records), (
            f"record {seen.sequence} was sent to a subscriber but is lost: the journal ends at {len(records)}"
        )
        assert records[seen.sequence - 1] == seen, f"record {seen.sequence} differs from what the subscriber was sent"


def _check_venue(venue: VenueDouble, records: list[log_pb2.LogRecord]) -> None:
    """(d): one order per client order id at the venue, each one placed by a journaled command."""
    keys: dict[str, set[str]] = {}
    for request in venue.requests_of(venue_service_pb2.PlaceOrderRequest):
        keys.setdefault(request.order.client_order_id, set()).add(request.idempotency_key)
    twice = {cid: sorted(ids) for cid, ids in keys.items() if len(ids) > 1}
    assert not twice, f"client order ids placed under several keys (duplicate orders): {twice}"
    journaled = {
        command.place_order.client_order_id
        for record in records
        for command in record.outcome.commands
        if command.HasField("place_order")
    }
    orphans = sorted(set(venue.orders) - journaled)
    assert not orphans, f"orders at the venue that no journaled record placed: {orphans}"


@dataclass(frozen=True)
class RunReport:
    seed: int
    acks: int
    answers: int
    in_flight_at_kill: int
    journal_at_kill: int
    truncated_bytes: int
    watched: int
    snapshot_sequence: int
    final_sequence: int


async def crash_run(seed: int, data_dir: Path) -> RunReport:
    """One run (see the module docstring); raises AssertionError on any violation."""
    plan = Plan.of(seed)
    venue = VenueDouble()
    await venue.start()
    try:
        settings = plan.settings(data_dir, venue)
        # --- the load and the kill
        async with kernel_process(settings) as first:
            port = await first.wait_serving(START_SECONDS)
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                load = Load(plan, kernel_service_pb2_grpc.KernelServiceStub(channel), venue, first)
                await load.run()
            status = await first.wait(EXIT_SECONDS)
        assert status == -signal.SIGKILL, f"the kernel exited with {status} before the kill:\n{first.output_tail()}"
        assert load.in_flight_at_kill > 0, "the kill landed with no request in flight"

        # --- (a) and (b): the journal left by the crash
        at_kill, truncated = await _journal_records(settings)
        reference = await clean_replay(settings)
        assert reference.last_sequence == len(at_kill)
        _check_acknowledged(load, at_kill)

        # --- (c): restart on the same directory, status, clean shutdown
        async with kernel_process(settings) as second:
            port = await second.wait_serving(START_SECONDS)
            recovered = second.events("kernel_recovered")
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = kernel_service_pb2_grpc.KernelServiceStub(channel)
                reply = await stub.GetStatus(kernel_service_pb2.GetStatusRequest(), timeout=RPC_SECONDS)
            second.send(signal.SIGTERM)
            status = await second.wait(EXIT_SECONDS)
        assert status == 0, f"the restarted kernel exited with {status} on SIGTERM:\n{second.output_tail()}"
        assert len(recovered) == 1, f"expected one kernel_recovered line, got {recovered}"
        assert (recovered[0]["sequence"], recovered[0]["state_hash"]) == (len(at_kill), reference.state_hash()), (
            "the restarted kernel did not recover the journal the crash left (clean replay differs)"
        )
        assert reply.serving
        assert reply.state_sequence >= reply.sequence >= len(at_kill)
        at_status = await clean_replay(settings, upto=reply.state_sequence)
        assert reply.state_hash == at_status.state_hash(), (
            f"GetStatus state hash at {reply.state_sequence} differs from a clean replay"
        )

        # --- (d): the venue's book against the whole journal
        final, _ = await _journal_records(settings)
        assert final[: len(at_kill)] == at_kill, "the restart changed records written before the crash"
        _check_venue(venue, final)
        return RunReport(
            seed=seed,
            acks=len(load.acks),
            answers=load.answers,
            in_flight_at_kill=load.in_flight_at_kill,
            journal_at_kill=len(at_kill),
            truncated_bytes=truncated,
            watched=len(load.watched),
            snapshot_sequence=int(recovered[0]["snapshot_sequence"]),
            final_sequence=len(final),
        )
    finally:
        await venue.stop()


async def test_sigkill_during_load_loses_no_acknowledged_input(tmp_path: Path) -> None:
    seeds = _seeds()
    parallel = max(1, int(os.environ.get(PARALLEL_ENV, str(DEFAULT_PARALLEL))))
    started = time.perf_counter()
    reports: list[RunReport] = []
    failures: list[str] = []
    pending = iter(seeds)

    async def worker() -> None:
        for seed in pending:
            if failures:
                return
            data_dir = tmp_path / f"seed-{seed}"
            try:
                async with asyncio.timeout(RUN_SECONDS):
                    report = await crash_run(seed, data_dir)
            except Exception as error:  # noqa: BLE001 - every failure is reported with its seed
                failures.append(
                    f"crash run with seed {seed} failed (data in {data_dir}; repeat it with {SEED_ENV}={seed}):\n"
                    + "".join(traceback.format_exception(error))
                )
                return
            log.debug("crash run %s", report)
            reports.append(report)
            shutil.rmtree(data_dir)

    async with asyncio.TaskGroup() as group:
        for index in range(min(parallel, len(seeds))):
            group.create_task(worker(), name=f"crash-worker-{index}")
    if failures:
        pytest.fail("\n\n".join(failures), pytrace=False)
    assert len(reports) == len(seeds)
    log.info(
        "%d crash runs in %.1f s: %d acknowledged inputs, %d records at the kills, %d torn tails cut, "
        "%d runs recovered from a snapshot",
        len(reports),
        time.perf_counter() - started,
        sum(r.acks for r in reports),
        sum(r.journal_at_kill for r in reports),
        sum(1 for r in reports if r.truncated_bytes > 0),
        sum(1 for r in reports if r.snapshot_sequence > 0),
    )
