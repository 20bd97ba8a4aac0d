"""The kernel service against the legacy flaws it removes (tests/legacy/flaw_map.tsv).

Real servers only: ``serve`` on a loopback port (or ``python -m services.kernel`` as a child
process when a signal or a crash is the point), the venue double behind it, a real journal,
real gRPC calls with deadlines. Nothing sleeps to synchronise: tests wait on gRPC streams
(health Watch, WatchRecords), on the double's state or on the child's log lines, each with a
timeout.

[F21, G29, G32, H15, O1] shutdown: NOT_SERVING first, the venue answer in flight is applied
before the venue channel closes, every step awaited in order, a final snapshot, exit 0.
[K1, K2] JSON logs from boot to exit, health NOT_SERVING on a signal. [M10, K3] refusals
counted by code next to successes. [H16, J14] typed settings checked at boot. [I9, I14, I10]
durable inputs; after a crash, recovery, reconcile and re-send with the same key; no double
processing after a restart. [N1] one writer. [F8, K7, M12] the log and its consumers.
[F1, S3, S12] each record holds what its own input caused. [J4] venue mark prices revalue
positions.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import grpc
import grpc.aio
import pytest
from google.protobuf import duration_pb2
from grpc_health.v1 import health_pb2
from prometheus_client.parser import text_string_to_metric_families
from structlog.testing import capture_logs

from services.common.config import ConfigError, load_settings
from services.common.errors import error_details
from services.common.proto import (
    intent_pb2,
    kernel_input_pb2,
    kernel_service_pb2,
    kernel_service_pb2_grpc,
    log_pb2,
    outcome_pb2,
    slot_pb2,
    types_pb2,
    venue_event_pb2,
    venue_service_pb2,
    view_pb2,
)
from services.kernel.config import KernelSettings
from services.kernel.journal import Journal
from services.kernel.server import serve
from services.launcher.children import child_process
from tests.kernel import helpers
from tests.kernel_service import conftest as service_fixtures
from tests.kernel_service.conftest import clean_replay, make_settings
from tests.kernel_service.kernel_process import REPO_ROOT, kernel_env, kernel_process
from tests.kernel_service.test_kernel_service import enter, running_service, wait_done
from tests.kernel_service.test_operations import started, watch_health
from tests.kernel_service.venue_double import BTC, VenueDouble

if TYPE_CHECKING:
    from typing import TypeAlias

    from services.common.proto.kernel_service_pb2_grpc import KernelServiceAsyncStub as Stub

    HealthWatch: TypeAlias = grpc.aio.UnaryStreamCall[Any, health_pb2.HealthCheckResponse]
    RecordStream: TypeAlias = grpc.aio.UnaryStreamCall[Any, kernel_service_pb2.WatchRecordsResponse]

pytestmark = pytest.mark.anyio

# The fixtures of the kernel-service tests: asyncio, and a started venue double.
anyio_backend = service_fixtures.anyio_backend
venue = service_fixtures.venue

TIMEOUT = 10.0
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
OPEN = slot_pb2.SLOT_STATE_POSITION_OPEN


# ---------------------------------------------------------------------------------- helpers


def quiet(tmp_path: Path, venue: VenueDouble, **overrides: object) -> KernelSettings:
    """Settings for ``tmp_path`` and ``venue`` with no timer ticks: after a test's last answer the
    writer has nothing left to commit, so stopping the service never cancels it in the middle of a
    commit (which ``KernelCore.run`` reports as a writer failure, exit status 1)."""
    values: dict[str, object] = {"venue_address": venue.address, "timer_seconds": 3600.0}
    values.update(overrides)
    return make_settings(tmp_path, **values)


async def settled(stub: Stub) -> None:
    """Returns once the writer has finished every batch before this call (its snapshots included):
    an input the kernel refuses travels through the writer's queue behind them and changes nothing."""
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.MarkPrice(mark("NaN"), timeout=TIMEOUT)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def next_status(call: HealthWatch) -> int:
    response = await asyncio.wait_for(call.read(), TIMEOUT)
    assert isinstance(response, health_pb2.HealthCheckResponse), "the health watch ended"
    return int(response.status)


def logged(captured: Sequence[MutableMapping[str, Any]], event: str) -> list[MutableMapping[str, Any]]:
    return [entry for entry in captured if entry.get("event") == event]


def mark(price: int | str, symbol: str = BTC) -> kernel_service_pb2.MarkPriceRequest:
    return kernel_service_pb2.MarkPriceRequest(
        mark_price=kernel_input_pb2.MarkPrice(symbol=symbol, price=types_pb2.Decimal(value=str(price)))
    )


async def marks(stub: Stub, prices: Sequence[int]) -> list[kernel_service_pb2.MarkPriceResponse]:
    """One MarkPrice RPC per price, all at once (so the writer commits them in batches)."""
    return await asyncio.wait_for(asyncio.gather(*(stub.MarkPrice(mark(p), timeout=TIMEOUT) for p in prices)), TIMEOUT)


async def status(stub: Stub) -> kernel_service_pb2.GetStatusResponse:
    return await stub.GetStatus(kernel_service_pb2.GetStatusRequest(), timeout=TIMEOUT)


async def read_records(
    call: RecordStream,
    until: Callable[[log_pb2.LogRecord], bool],
) -> list[log_pb2.LogRecord]:
    """Records from a WatchRecords stream up to and including the first one ``until`` accepts."""
    records: list[log_pb2.LogRecord] = []
    async with asyncio.timeout(TIMEOUT):
        while True:
            response = await call.read()
            assert isinstance(response, kernel_service_pb2.WatchRecordsResponse), "WatchRecords ended"
            records.append(response.record)
            if until(response.record):
                return records


def watch_records(stub: Stub, after: int, consumer: str = "") -> RecordStream:
    return stub.WatchRecords(
        kernel_service_pb2.WatchRecordsRequest(after_sequence=after, consumer=consumer), timeout=60
    )


async def scrape(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """``GET /metrics``: every sample by (name, labels)."""
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT)) as session,
        session.get(f"http://127.0.0.1:{port}/metrics") as response,
    ):
        assert response.status == 200
        text = await response.text()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def sample(samples: Mapping[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def slot_of(kernel_view: bytes, slot_id: int) -> slot_pb2.Slot:
    (slot,) = view_pb2.KernelView.FromString(kernel_view).slots
    assert slot.slot_id == slot_id
    return slot


def clear_pink_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("PINK_"):
            monkeypatch.delenv(name)


# ---------------------------------------------------------------------------------- life cycle


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_a_signal_turns_health_not_serving_then_shuts_down_in_order_and_exits_zero(
    tmp_path: Path, venue: VenueDouble, sig: signal.Signals
) -> None:
    """[G29, G32, H15, O1, K1, K2] ``python -m services.kernel`` logs JSON lines from boot on; a
    signal turns health NOT_SERVING, every shutdown step runs (awaited, in order, none failing),
    the last record is snapshotted and the journal closed, and the process exits 0."""
    settings = quiet(tmp_path, venue, metrics_port=0)
    async with kernel_process(settings) as child:
        port = await child.wait_serving(TIMEOUT)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub: Stub = kernel_service_pb2_grpc.KernelServiceStub(channel)
            traded = await stub.SubmitIntent(
                kernel_service_pb2.SubmitIntentRequest(intent=enter("i-1", 0), wait=wait_done()), timeout=TIMEOUT
            )
            assert traded.slot.state == OPEN
            last = (await status(stub)).sequence
            watch = watch_health(channel)
            assert await next_status(watch) == SERVING
            child.send(sig)
            assert await next_status(watch) == NOT_SERVING, "health says NOT_SERVING before anything stops"
            watch.cancel()
        assert await child.wait(TIMEOUT) == 0

    events = [entry["event"] for entry in child.logs]
    assert [line for line in child.lines if line.strip() and not line.startswith("{")] == [], "JSON lines only"
    assert all(entry["service"] == "pink-kernel" and entry["timestamp"] and entry["level"] for entry in child.logs)
    boot = ["journal", "kernel_recovered", "grpc server started", "metrics endpoint serving", "kernel_serving"]
    positions = [next(i for i, event in enumerate(events) if event.startswith(name)) for name in boot]
    assert positions == sorted(positions), f"start-up is logged in order: {events}"
    received = child.events("signal received, shutting down")
    assert [entry["signal"] for entry in received] == [sig.name]
    steps = [str(entry["step"]) for entry in child.events("shutdown step")]
    assert steps[0] == "grpc server", "health and traffic stop first"

    def position(suffix: str) -> int:
        return next(i for i, step in enumerate(steps) if step.endswith(suffix))

    assert position("drain") < position("stop_tasks") < position("stop_writer") < position("final_snapshot")
    closing = ["snapshot_written", "metrics endpoint stopped", "venue_channel_closed", "journal ", "data_dir_released"]
    closed_at = [max(i for i, event in enumerate(events) if event.startswith(name)) for name in closing]
    assert closed_at == sorted(closed_at), f"closed in order after the last snapshot: {events}"
    assert child.events("shutdown step failed") == []
    assert child.events("shutdown complete")
    assert [entry["sequence"] for entry in child.events("snapshot_written")] == [last]
    journal = await Journal.open(tmp_path / "journal", fsync=False)
    try:
        snapshot = await journal.latest_snapshot()
        assert snapshot is not None
        assert snapshot.sequence == journal.last_sequence == last, "the final snapshot covers every record"
    finally:
        await journal.close()


async def test_shutdown_applies_the_venue_answer_in_flight_before_it_closes_the_venue_channel(
    tmp_path: Path, venue: VenueDouble
) -> None:
    """[F21] The venue is still answering an order when shutdown starts: the service waits for the
    answer and journals it before it stops the writer and closes the venue channel."""
    settings = quiet(tmp_path, venue, grace_seconds=0.5)
    gate = venue.hold("PlaceOrder")

    async def release_once_the_server_stopped(watch: HealthWatch) -> None:
        assert await next_status(watch) == NOT_SERVING
        # The watch stays open: the server ends it when it stops (after its grace period).
        # Only then does the venue answer: the kernel must still be listening.
        with contextlib.suppress(grpc.aio.AioRpcError):
            await asyncio.wait_for(watch.read(), TIMEOUT)
        gate.set()

    async with running_service(settings) as kernel:
        placed = await kernel.stub.SubmitIntent(
            kernel_service_pb2.SubmitIntentRequest(intent=enter("i-1", 0)), timeout=TIMEOUT
        )
        assert placed.outcome.accepted
        await venue.wait_for(lambda: bool(venue.requests_of(venue_service_pb2.PlaceOrderRequest)))
        watch = watch_health(kernel.channel)
        assert await next_status(watch) == SERVING
        release = asyncio.create_task(release_once_the_server_stopped(watch))
    await asyncio.wait_for(release, TIMEOUT)
    assert gate.is_set()

    written = await clean_replay(settings)
    slot = slot_of(written.view([0]), 0)
    assert slot.state == OPEN, "the answer that came during shutdown was journaled"
    assert Decimal(slot.position_size.value) == Decimal("0.01")
    assert len(venue.orders) == 1


async def test_an_unreachable_venue_stops_the_service_before_it_ever_serves(tmp_path: Path, venue: VenueDouble) -> None:
    """[H16, I14] The venue cannot be read at start-up: the service exits with status 3 and a
    critical log line; it never reports ready (a misconfiguration fails at boot, not at the first trade)."""
    venue.fail_next("GetInstruments", grpc.StatusCode.PERMISSION_DENIED)
    ready: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    with capture_logs() as captured:
        status = await asyncio.wait_for(serve(quiet(tmp_path, venue), on_ready=ready.set_result), TIMEOUT)
    assert status == 3
    assert not ready.done()
    (failure,) = logged(captured, "venue_unreachable_at_startup")
    assert failure["log_level"] == "critical"
    assert "PERMISSION_DENIED" in failure["error"]


async def test_an_invalid_configuration_stops_the_process_at_boot_naming_each_variable(
    tmp_path: Path, venue: VenueDouble
) -> None:
    """[H16, J14, K1] Bad settings stop ``python -m services.kernel`` at once with status 2 and a
    message naming every offending variable (an empty boolean is an error, not False); nothing
    is served and no journal is created."""
    env = kernel_env(quiet(tmp_path, venue))
    env["PINK_KERNEL_SLOT_COUNT"] = "0"
    env["PINK_KERNEL_FSYNC"] = ""
    async with child_process("kernel", "services.kernel", env, cwd=REPO_ROOT) as child:
        assert await child.wait(TIMEOUT) == 2
    output = "\n".join(child.lines)
    assert "invalid configuration" in output
    for name in ("PINK_KERNEL_SLOT_COUNT", "PINK_KERNEL_FSYNC"):
        assert name in output
    assert child.events("grpc server started") == []
    assert not (tmp_path / "journal").exists()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, True),
        ("false", False),
        ("0", False),
        ("no", False),
        ("off", False),
        ("true", True),
        ("1", True),
        ("YES", True),
        ("on", True),
        ("", None),
        (" ", None),
        ("maybe", None),
    ],
)
def test_boolean_settings_have_one_grammar_and_an_empty_value_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, raw: str | None, expected: bool | None
) -> None:
    """[J14] Unset means the declared default; every set value parses with one grammar; an empty
    or unknown value is a ConfigError naming the variable (never silently False)."""
    clear_pink_environment(monkeypatch)
    monkeypatch.setenv("PINK_KERNEL_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PINK_KERNEL_VENUE_ADDRESS", "127.0.0.1:9")
    if raw is not None:
        monkeypatch.setenv("PINK_KERNEL_TRADING_ENABLED", raw)
        monkeypatch.setenv("PINK_KERNEL_FSYNC", raw)
    if expected is None:
        with pytest.raises(ConfigError) as raised:
            load_settings(KernelSettings)
        assert {name for name, _ in raised.value.problems} == {"PINK_KERNEL_TRADING_ENABLED", "PINK_KERNEL_FSYNC"}
    else:
        settings = load_settings(KernelSettings)
        assert (settings.trading_enabled, settings.fsync) == (expected, expected)


# ---------------------------------------------------------------------------------- monitoring


async def test_metrics_count_refusals_by_code_next_to_successes_and_commands_by_type(
    tmp_path: Path, venue: VenueDouble
) -> None:
    """[M10, K2, K3] /metrics of the running service: a refused intent is counted under its code
    next to the accepted one, the venue's order rejection under its event kind, the orders
    placed by command type, and the RPC latency of both calls."""
    # The venue refuses the order (an error answer the link logs and drops); the rejection reaches
    # the kernel as the venue service reports it: an ORDER_REJECTED event.
    venue.fail_next("PlaceOrder", grpc.StatusCode.FAILED_PRECONDITION)
    async with started(quiet(tmp_path, venue, metrics_port=0)) as service:
        ports = await service.ports()
        assert ports.metrics is not None
        port = await asyncio.wait_for(service.ready, TIMEOUT)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub: Stub = kernel_service_pb2_grpc.KernelServiceStub(channel)
            placed = await stub.SubmitIntent(
                kernel_service_pb2.SubmitIntentRequest(intent=enter("i-1", 0)), timeout=TIMEOUT
            )
            assert placed.outcome.accepted
            exit_idle = intent_pb2.Intent(
                intent_id="x-1", action=intent_pb2.INTENT_ACTION_EXIT, slot_id=3, order_type=types_pb2.ORDER_TYPE_MARKET
            )
            refused = await stub.SubmitIntent(kernel_service_pb2.SubmitIntentRequest(intent=exit_idle), timeout=TIMEOUT)
            assert refused.outcome.code == outcome_pb2.DIAGNOSTIC_CODE_NO_OPEN_POSITION
            (command,) = [c.place_order for c in placed.outcome.commands if c.HasField("place_order")]
            rejection = venue_event_pb2.VenueEvent(
                kind=venue_event_pb2.VENUE_EVENT_KIND_ORDER_REJECTED,
                client_order_id=command.client_order_id,
                venue_event_id="reject-1",
                reason="insufficient margin",
            )
            rejection.exchange_time.GetCurrentTime()
            await venue.wait_for(lambda: bool(venue.requests_of(venue_service_pb2.PlaceOrderRequest)))
            answers = await stub.ApplyVenueEvents(
                kernel_service_pb2.ApplyVenueEventsRequest(events=[rejection]), timeout=TIMEOUT
            )
            samples = await scrape(ports.metrics)

    assert [(o.accepted, o.code) for o in answers.outcomes] == [(True, outcome_pb2.DIAGNOSTIC_CODE_OK)]
    assert sample(samples, "pink_kernel_inputs_total", kind="intent", code="OK") == 1
    assert sample(samples, "pink_kernel_inputs_total", kind="intent", code="NO_OPEN_POSITION") == 1
    assert sample(samples, "pink_kernel_commands_total", command="place_order") == 1
    assert sample(samples, "pink_kernel_venue_events_total", kind="ORDER_REJECTED", code="OK") == 1
    assert sample(samples, "pink_kernel_rpc_seconds_count", method="SubmitIntent") == 2


# ---------------------------------------------------------------------------------- durability


async def test_a_crash_after_the_venue_executed_an_order_leaves_one_order_and_one_position(
    tmp_path: Path, venue: VenueDouble
) -> None:
    """[I9, I14] The legacy's worst crash: the venue executed the order, the kernel died before
    its answer arrived. The acknowledged ENTER is in the journal; the restarted service recovers
    the slot, re-sends with the same key and ends with the venue's one order and its position;
    a second ENTER on the slot is refused."""
    settings = quiet(tmp_path, venue, fsync=True)
    venue.fail_next("StreamExecutions", grpc.StatusCode.UNAVAILABLE, times=100_000)  # answers only
    venue.delay("PlaceOrder", 3600)  # executed at once, answered never (before the crash)
    async with kernel_process(settings) as child:
        port = await child.wait_serving(TIMEOUT)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub: Stub = kernel_service_pb2_grpc.KernelServiceStub(channel)
            placed = await stub.SubmitIntent(
                kernel_service_pb2.SubmitIntentRequest(intent=enter("i-1", 0)), timeout=TIMEOUT
            )
        assert placed.outcome.accepted
        (command,) = [c.place_order for c in placed.outcome.commands if c.HasField("place_order")]
        await venue.wait_for(lambda: command.client_order_id in venue.orders)
        child.send(signal.SIGKILL)
        assert await child.wait(TIMEOUT) == -signal.SIGKILL
    venue.delay("PlaceOrder", 0)

    journaled = await clean_replay(settings)
    assert journaled.last_sequence >= placed.outcome.sequence, "the acknowledged ENTER survived the crash"
    assert slot_of(journaled.view([0]), 0).state == slot_pb2.SLOT_STATE_ENTRY_PENDING

    async with running_service(settings) as kernel:
        slot = (await kernel.stub.GetSlot(kernel_service_pb2.GetSlotRequest(slot_id=0), timeout=TIMEOUT)).slot
        if slot.state != OPEN:
            changes = kernel.stub.WatchSlots(kernel_service_pb2.WatchSlotsRequest(slot_ids=[0]), timeout=TIMEOUT)
            async for change in changes:
                if any(s.state == OPEN for s in change.view.slots):
                    break
            changes.cancel()
            slot = (await kernel.stub.GetSlot(kernel_service_pb2.GetSlotRequest(slot_id=0), timeout=TIMEOUT)).slot
        again = await kernel.stub.SubmitIntent(
            kernel_service_pb2.SubmitIntentRequest(intent=enter("i-2", 0)), timeout=TIMEOUT
        )
        listed = await kernel.stub.ListSlots(kernel_service_pb2.ListSlotsRequest(states=[OPEN]), timeout=TIMEOUT)

    assert slot.state == OPEN
    assert Decimal(slot.position_size.value) == venue.positions[BTC].size == Decimal("0.01")
    assert [s.slot_id for s in listed.slots] == [0], "no other slot adopted the same position"
    assert list(venue.orders) == [command.client_order_id], "one order at the venue"
    keys = {request.idempotency_key for request in venue.requests_of(venue_service_pb2.PlaceOrderRequest)}
    assert keys == {command.client_order_id}, "every send carried the same key"
    assert not again.outcome.accepted


async def test_a_fill_replayed_after_a_restart_is_a_duplicate_and_changes_nothing(
    tmp_path: Path, venue: VenueDouble
) -> None:
    """[I10] The service restarts from its journal; the venue event of a fill applied before the
    restart, delivered again, is a DUPLICATE_EVENT and changes neither the slot nor the capital."""
    settings = quiet(tmp_path, venue, snapshot_every=2)
    async with running_service(settings) as kernel:
        await kernel.stub.SubmitIntent(
            kernel_service_pb2.SubmitIntentRequest(intent=enter("i-1", 0), wait=wait_done()), timeout=TIMEOUT
        )
        stream = watch_records(kernel.stub, 0)
        (*_, filled) = await read_records(
            stream,
            lambda r: (
                r.input.WhichOneof("payload") == "venue_event"
                and r.input.venue_event.kind == venue_event_pb2.VENUE_EVENT_KIND_FILL
            ),
        )
        stream.cancel()
        await settled(kernel.stub)
    async with running_service(settings) as kernel:
        before = await kernel.stub.GetAccount(kernel_service_pb2.GetAccountRequest(), timeout=TIMEOUT)
        slot_before = (await kernel.stub.GetSlot(kernel_service_pb2.GetSlotRequest(slot_id=0), timeout=TIMEOUT)).slot
        replayed = await kernel.stub.ApplyVenueEvents(
            kernel_service_pb2.ApplyVenueEventsRequest(events=[filled.input.venue_event]), timeout=TIMEOUT
        )
        after = await kernel.stub.GetAccount(kernel_service_pb2.GetAccountRequest(), timeout=TIMEOUT)
        slot_after = (await kernel.stub.GetSlot(kernel_service_pb2.GetSlotRequest(slot_id=0), timeout=TIMEOUT)).slot

    (outcome,) = replayed.outcomes
    assert (outcome.accepted, outcome.code) == (False, outcome_pb2.DIAGNOSTIC_CODE_DUPLICATE_EVENT)
    assert after.sequence == before.sequence
    assert after.account.capital == before.account.capital
    assert slot_after == slot_before
    assert slot_after.position_size.value == "0.01"


async def test_concurrent_clients_are_serialised_by_one_writer_into_a_contiguous_journal(
    tmp_path: Path, venue: VenueDouble
) -> None:
    """[N1] Many clients at once, on several channels: every accepted input gets its own
    sequence, the journal is contiguous, and its clean replay has the service's state hash."""
    settings = quiet(tmp_path, venue, snapshot_every=1_000_000)
    async with running_service(settings) as kernel:
        async with contextlib.AsyncExitStack() as stack:
            stubs: list[Stub] = [kernel.stub]
            for _ in range(3):
                channel = await stack.enter_async_context(grpc.aio.insecure_channel(f"127.0.0.1:{kernel.port}"))
                stubs.append(kernel_service_pb2_grpc.KernelServiceStub(channel))
            entries = [
                stubs[slot % len(stubs)].SubmitIntent(
                    kernel_service_pb2.SubmitIntentRequest(intent=enter(f"i-{slot}", slot)), timeout=TIMEOUT
                )
                for slot in range(10)
            ]
            prices = [stubs[i % len(stubs)].MarkPrice(mark(100 + i), timeout=TIMEOUT) for i in range(60)]
            entered, marked = await asyncio.wait_for(
                asyncio.gather(asyncio.gather(*entries), asyncio.gather(*prices)), TIMEOUT
            )
        outcomes = [answer.outcome for answer in entered] + [answer.outcome for answer in marked]
        assert all(outcome.accepted for outcome in outcomes)
        sequences = [outcome.sequence for outcome in outcomes]
        assert len(set(sequences)) == len(sequences), "no two inputs share a sequence"
        final = await status(kernel.stub)
    reference = await clean_replay(settings, upto=final.state_sequence)
    assert reference.state_hash() == final.state_hash
    assert reference.last_sequence == final.state_sequence


# ---------------------------------------------------------------------------------- the log and its consumers


async def test_a_log_consumer_that_stalls_or_vanishes_never_blocks_intents_and_loses_no_record(
    tmp_path: Path, venue: VenueDouble
) -> None:
    """[F8, K7, M12] A store sink reads WatchRecords. It stalls while the kernel takes hundreds of
    inputs: every RPC is still answered at once. It resumes: every record, in order, none twice.
    It vanishes and comes back from its acknowledged cursor: the rest, from there."""
    settings = quiet(tmp_path, venue, watch_buffer=1)
    async with running_service(settings) as kernel:
        stream = watch_records(kernel.stub, 0, consumer="store")
        (first,) = await read_records(stream, lambda _: True)
        for burst in range(6):  # the store reads nothing meanwhile
            answers = await marks(kernel.stub, [100 + burst * 50 + i for i in range(50)])
            assert all(answer.outcome.accepted for answer in answers)
        last = (await status(kernel.stub)).sequence
        rest = await read_records(stream, lambda record: record.sequence == last)
        assert [first.sequence, *(r.sequence for r in rest)] == list(range(1, last + 1))
        stream.cancel()  # the store goes away after writing (and acknowledging) everything up to ``last``
        acked = await kernel.stub.AckRecords(
            kernel_service_pb2.AckRecordsRequest(consumer="store", sequence=last), timeout=TIMEOUT
        )
        assert acked.acknowledged_sequence == last
        answers = await marks(kernel.stub, list(range(500, 520)))
        assert all(answer.outcome.accepted for answer in answers)
        newest = (await status(kernel.stub)).sequence
        resumed = watch_records(kernel.stub, acked.acknowledged_sequence, consumer="store")
        caught_up = await read_records(resumed, lambda record: record.sequence == newest)
        resumed.cancel()
    assert [record.sequence for record in caught_up] == list(range(last + 1, newest + 1))


async def test_records_not_yet_acknowledged_survive_compaction_and_compacted_ones_are_an_explicit_error(
    tmp_path: Path, venue: VenueDouble
) -> None:
    """[K7, M12] Snapshots compact the journal, but never past a registered consumer's
    acknowledgement: a sink that is down keeps every record it has not written. Once every
    consumer has acknowledged, old segments go, and asking for them is FAILED_PRECONDITION
    (JOURNAL_COMPACTED), never a silent gap."""
    settings = quiet(tmp_path, venue, segment_bytes=4096, snapshot_every=5)
    async with running_service(settings) as kernel:
        registered = watch_records(kernel.stub, 0, consumer="sink")
        await read_records(registered, lambda _: True)
        registered.cancel()  # the sink is down from here on
        for start in range(100, 200, 50):
            await marks(kernel.stub, list(range(start, start + 50)))
        down = await status(kernel.stub)
        assert down.snapshot_sequence > 0, "snapshots were taken meanwhile"
        assert down.journal_first_sequence == 1, "nothing the sink has not acknowledged was removed"
        reader = watch_records(kernel.stub, 0)
        everything = await read_records(reader, lambda r: r.sequence == down.sequence)
        reader.cancel()
        assert [r.sequence for r in everything] == list(range(1, down.sequence + 1))

        await kernel.stub.AckRecords(
            kernel_service_pb2.AckRecordsRequest(consumer="sink", sequence=down.sequence), timeout=TIMEOUT
        )
        await marks(kernel.stub, list(range(200, 220)))  # more snapshots: now the old segments may go
        # The writer answers a batch before it snapshots and compacts after it: wait for that.
        await settled(kernel.stub)
        compacted = await status(kernel.stub)
        assert compacted.journal_first_sequence > 1
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await read_records(watch_records(kernel.stub, 0), lambda _: True)
        await settled(kernel.stub)
    assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert (await error_details(raised.value))[1] == "JOURNAL_COMPACTED"


# ---------------------------------------------------------------------------------- outcomes


async def test_a_cancel_answer_holds_the_cancel_request_and_the_venue_result_is_its_own_record(
    tmp_path: Path, venue: VenueDouble
) -> None:
    """[F1, S3, S12] SubmitIntent(CANCEL) answers with what the CANCEL did (to ENTRY_CANCELLING,
    one CancelOrder); the venue's CANCELLED is a later record with its own outcome (to IDLE);
    and the transitions of the slot's records chain without a gap."""
    limit = helpers.enter("e-1", 0, size="0.002", limit_price="49000.0", time_in_force=types_pb2.TIME_IN_FORCE_GTC)
    answered = kernel_service_pb2.WaitCondition(
        any_of=[kernel_service_pb2.WAIT_FOR_VENUE_ANSWER], timeout=duration_pb2.Duration(seconds=5)
    )
    async with running_service(quiet(tmp_path, venue)) as kernel:
        resting = await kernel.stub.SubmitIntent(
            kernel_service_pb2.SubmitIntentRequest(intent=limit, wait=answered), timeout=TIMEOUT
        )
        assert resting.wait_satisfied
        assert resting.slot.state == slot_pb2.SLOT_STATE_ENTRY_WORKING
        cancel = intent_pb2.Intent(intent_id="c-1", action=intent_pb2.INTENT_ACTION_CANCEL, slot_id=0)
        answer = await kernel.stub.SubmitIntent(kernel_service_pb2.SubmitIntentRequest(intent=cancel), timeout=TIMEOUT)
        stream = watch_records(kernel.stub, 0)
        records = await read_records(
            stream,
            lambda r: (
                r.input.WhichOneof("payload") == "venue_event"
                and r.input.venue_event.kind == venue_event_pb2.VENUE_EVENT_KIND_CANCELLED
            ),
        )
        stream.cancel()

    outcome = answer.outcome
    assert outcome.accepted
    assert [(t.from_state, t.to_state) for t in outcome.transitions] == [
        (slot_pb2.SLOT_STATE_ENTRY_WORKING, slot_pb2.SLOT_STATE_ENTRY_CANCELLING)
    ]
    assert [c.WhichOneof("command") for c in outcome.commands] == ["cancel_order"]
    cancelled = records[-1]
    assert cancelled.sequence > outcome.sequence
    assert [(t.from_state, t.to_state) for t in cancelled.outcome.transitions] == [
        (slot_pb2.SLOT_STATE_ENTRY_CANCELLING, slot_pb2.SLOT_STATE_IDLE)
    ]
    chain = [t for r in records for t in r.outcome.transitions if t.slot_id == 0]
    assert chain[0].from_state == slot_pb2.SLOT_STATE_IDLE
    assert all(earlier.to_state == later.from_state for earlier, later in itertools.pairwise(chain))
    assert chain[-1].to_state == slot_pb2.SLOT_STATE_IDLE


async def test_venue_mark_prices_revalue_open_positions_through_the_service(tmp_path: Path, venue: VenueDouble) -> None:
    """[J4] Mark prices the VenueService streams reach the kernel without any caller: an open
    position's unrealized PnL and the account's equity follow them."""
    async with running_service(quiet(tmp_path, venue)) as kernel:
        traded = await kernel.stub.SubmitIntent(
            kernel_service_pb2.SubmitIntentRequest(intent=enter("i-1", 0), wait=wait_done()), timeout=TIMEOUT
        )
        entry = Decimal(traded.slot.entry_average_price.value)
        stream = watch_records(kernel.stub, traded.outcome.sequence)
        await venue.wait_for(lambda: bool(venue.requests_of(venue_service_pb2.StreamMarkPricesRequest)))
        venue.mark(BTC, entry + 1000)
        await read_records(stream, lambda r: r.input.WhichOneof("payload") == "mark_price")
        stream.cancel()
        slot = (await kernel.stub.GetSlot(kernel_service_pb2.GetSlotRequest(slot_id=0), timeout=TIMEOUT)).slot
        account = (await kernel.stub.GetAccount(kernel_service_pb2.GetAccountRequest(), timeout=TIMEOUT)).account
    assert Decimal(slot.mark_price.value) == entry + 1000
    assert Decimal(slot.unrealized_pnl.value) == Decimal("0.01") * 1000
    assert Decimal(account.unrealized_pnl.value) == Decimal(10)
