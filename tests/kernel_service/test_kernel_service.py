"""Contract tests of the KernelService: the real service (``serve``) on a loopback port, the
venue double behind it, real gRPC calls with deadlines."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import grpc
import pytest
from google.protobuf import duration_pb2
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2

from services.common.config import ConfigError
from services.common.errors import error_details
from services.common.proto import (
    control_pb2,
    intent_pb2,
    kernel_input_pb2,
    kernel_service_pb2,
    kernel_service_pb2_grpc,
    outcome_pb2,
    slot_pb2,
    types_pb2,
    venue_event_pb2,
    venue_service_pb2,
)
from services.kernel.config import KernelSettings
from services.kernel.server import SERVICE_NAME, serve
from tests.kernel_service.conftest import clean_replay, make_settings
from tests.kernel_service.venue_double import VenueDouble

pytestmark = pytest.mark.anyio
TIMEOUT = 10.0
OK = outcome_pb2.DIAGNOSTIC_CODE_OK


@dataclass
class Running:
    stub: kernel_service_pb2_grpc.KernelServiceAsyncStub
    channel: grpc.aio.Channel
    port: int


@contextlib.asynccontextmanager
async def running_service(settings: KernelSettings) -> AsyncIterator[Running]:
    """``serve(settings)`` in a task; stops it (like SIGTERM) on exit and checks it exited 0."""
    stop = asyncio.Event()
    ready: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(serve(settings, stop_event=stop, on_ready=ready.set_result))
    done, _ = await asyncio.wait({task, ready}, timeout=TIMEOUT, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        task.result()  # raises what made the service stop before it was ready
        pytest.fail("the service returned before it was ready")
    if not done:
        task.cancel()
        pytest.fail("the service did not become ready")
    port = ready.result()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            yield Running(kernel_service_pb2_grpc.KernelServiceStub(channel), channel, port)
        finally:
            stop.set()
            assert await asyncio.wait_for(task, TIMEOUT) == 0


def settings_for(tmp_path: Path, venue: VenueDouble, **overrides: object) -> KernelSettings:
    return make_settings(tmp_path, venue_address=venue.address, timer_seconds=0.2, **overrides)


def enter(intent_id: str, slot: int, *, size: str = "0.01", leverage: str = "5") -> intent_pb2.Intent:
    return intent_pb2.Intent(
        intent_id=intent_id,
        action=intent_pb2.INTENT_ACTION_ENTER,
        slot_id=slot,
        symbol="BTC-USDT",
        side=types_pb2.SIDE_LONG,
        order_type=types_pb2.ORDER_TYPE_MARKET,
        target_size=types_pb2.Decimal(value=size),
        leverage=types_pb2.Decimal(value=leverage),
        reference_price=types_pb2.Decimal(value="100"),
    )


def wait_done(seconds: int = 5) -> kernel_service_pb2.WaitCondition:
    return kernel_service_pb2.WaitCondition(
        any_of=[kernel_service_pb2.WAIT_FOR_ORDER_DONE], timeout=duration_pb2.Duration(seconds=seconds)
    )


async def test_health_reflection_and_market_trade(tmp_path: Path, venue: VenueDouble) -> None:
    async with running_service(settings_for(tmp_path, venue)) as kernel:
        assert await _health(kernel.channel) == health_pb2.HealthCheckResponse.SERVING, "after recovery"
        assert {SERVICE_NAME, "grpc.health.v1.Health"} <= await _reflected_services(kernel.channel)
        request = kernel_service_pb2.SubmitIntentRequest(intent=enter("i-1", 0), wait=wait_done())
        response = await kernel.stub.SubmitIntent(request, timeout=TIMEOUT)
        assert response.outcome.accepted
        assert response.wait_satisfied, "the venue double fills MARKET orders at once"
        assert response.slot.state == slot_pb2.SLOT_STATE_POSITION_OPEN
        (place,) = [c.place_order for c in response.outcome.commands if c.HasField("place_order")]
        placed = venue.requests_of(venue_service_pb2.PlaceOrderRequest)
        assert [p.idempotency_key for p in placed] == [place.client_order_id], "one order, keyed by its client id"
        account = await kernel.stub.GetAccount(kernel_service_pb2.GetAccountRequest(), timeout=TIMEOUT)
        assert Decimal(account.account.fees.value) > 0
        assert account.account.active_slots == 1


async def test_invalid_input_is_invalid_argument_naming_the_field(tmp_path: Path, venue: VenueDouble) -> None:
    async with running_service(settings_for(tmp_path, venue)) as kernel:
        before = await kernel.stub.GetAccount(kernel_service_pb2.GetAccountRequest(), timeout=TIMEOUT)
        bad = enter("i-bad", 0, leverage="2.5")
        bad.target_size.value = "NaN"
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await kernel.stub.SubmitIntent(kernel_service_pb2.SubmitIntentRequest(intent=bad), timeout=TIMEOUT)
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        violations, reason = await error_details(raised.value)
        assert {field for field, _ in violations} == {"intent.leverage", "intent.target_size"}
        assert reason == "INVALID_ARGUMENT"
        after = await kernel.stub.GetAccount(kernel_service_pb2.GetAccountRequest(), timeout=TIMEOUT)
        assert after.sequence == before.sequence, "a rejected input changes nothing"


async def test_kernel_decisions_are_ok_answers(tmp_path: Path, venue: VenueDouble) -> None:
    async with running_service(settings_for(tmp_path, venue)) as kernel:
        exit_idle = intent_pb2.Intent(
            intent_id="x-1", action=intent_pb2.INTENT_ACTION_EXIT, slot_id=3, order_type=types_pb2.ORDER_TYPE_MARKET
        )
        response = await kernel.stub.SubmitIntent(
            kernel_service_pb2.SubmitIntentRequest(intent=exit_idle), timeout=TIMEOUT
        )
        assert not response.outcome.accepted
        assert response.outcome.code == outcome_pb2.DIAGNOSTIC_CODE_NO_OPEN_POSITION
        assert response.slot.state == slot_pb2.SLOT_STATE_IDLE


async def test_kill_switch_through_update_control(tmp_path: Path, venue: VenueDouble) -> None:
    async with running_service(settings_for(tmp_path, venue)) as kernel:
        update = control_pb2.ControlUpdate(expected_version=1, trading_enabled=False, actor="ops", reason="test")
        response = await kernel.stub.UpdateControl(
            kernel_service_pb2.UpdateControlRequest(update=update), timeout=TIMEOUT
        )
        assert response.outcome.accepted
        assert (response.control.version, response.control.trading_enabled) == (2, False)
        refused = await kernel.stub.SubmitIntent(
            kernel_service_pb2.SubmitIntentRequest(intent=enter("i-1", 0)), timeout=TIMEOUT
        )
        assert refused.outcome.code == outcome_pb2.DIAGNOSTIC_CODE_TRADING_DISABLED
        control = await kernel.stub.GetControl(kernel_service_pb2.GetControlRequest(), timeout=TIMEOUT)
        assert not control.control.trading_enabled


async def test_reads_validate_their_arguments(tmp_path: Path, venue: VenueDouble) -> None:
    async with running_service(settings_for(tmp_path, venue, slot_count=4)) as kernel:
        slots = await kernel.stub.ListSlots(kernel_service_pb2.ListSlotsRequest(), timeout=TIMEOUT)
        assert [s.slot_id for s in slots.slots] == [0, 1, 2, 3]
        idle = await kernel.stub.ListSlots(
            kernel_service_pb2.ListSlotsRequest(states=[slot_pb2.SLOT_STATE_POSITION_OPEN]), timeout=TIMEOUT
        )
        assert not idle.slots
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await kernel.stub.GetSlot(kernel_service_pb2.GetSlotRequest(slot_id=4), timeout=TIMEOUT)
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert (await error_details(raised.value))[0][0][0] == "slot_id"
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await kernel.stub.ListSlots(
                kernel_service_pb2.ListSlotsRequest(states=[slot_pb2.SlotState.ValueType(42)]), timeout=TIMEOUT
            )
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_watch_records_from_the_journal_then_live(tmp_path: Path, venue: VenueDouble) -> None:
    async with running_service(settings_for(tmp_path, venue)) as kernel:
        await kernel.stub.SubmitIntent(
            kernel_service_pb2.SubmitIntentRequest(intent=enter("i-1", 0), wait=wait_done()), timeout=TIMEOUT
        )
        current = (await kernel.stub.GetAccount(kernel_service_pb2.GetAccountRequest(), timeout=TIMEOUT)).sequence
        stream = kernel.stub.WatchRecords(
            kernel_service_pb2.WatchRecordsRequest(after_sequence=0, consumer="test-sink"), timeout=TIMEOUT
        )
        seen: list[int] = []
        async for message in stream:
            seen.append(message.record.sequence)
            if message.record.sequence == current:
                break
        assert seen == list(range(1, current + 1)), "every record, in order, from the journal"
        mark = kernel_input_pb2.MarkPrice(symbol="BTC-USDT", price=types_pb2.Decimal(value="101"))
        answer = await kernel.stub.MarkPrice(kernel_service_pb2.MarkPriceRequest(mark_price=mark), timeout=TIMEOUT)
        live = await anext(aiter(stream))
        assert live.record.sequence >= answer.outcome.sequence > current
        stream.cancel()
        ack = await kernel.stub.AckRecords(
            kernel_service_pb2.AckRecordsRequest(consumer="test-sink", sequence=current), timeout=TIMEOUT
        )
        assert ack.acknowledged_sequence == current
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await kernel.stub.AckRecords(
                kernel_service_pb2.AckRecordsRequest(consumer="nobody", sequence=1), timeout=TIMEOUT
            )
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_watch_slots_starts_with_a_full_view(tmp_path: Path, venue: VenueDouble) -> None:
    async with running_service(settings_for(tmp_path, venue)) as kernel:
        stream = kernel.stub.WatchSlots(kernel_service_pb2.WatchSlotsRequest(slot_ids=[0]), timeout=TIMEOUT)
        first = await anext(aiter(stream))
        assert first.full
        assert [s.slot_id for s in first.view.slots] == [0]
        await kernel.stub.SubmitIntent(
            kernel_service_pb2.SubmitIntentRequest(intent=enter("i-1", 0), wait=wait_done()), timeout=TIMEOUT
        )
        states: list[slot_pb2.SlotState.ValueType] = []
        async for change in stream:
            assert not change.full
            states.extend(s.state for s in change.view.slots)
            if slot_pb2.SLOT_STATE_POSITION_OPEN in states:
                break
        assert states[0] == slot_pb2.SLOT_STATE_ENTRY_PENDING
        stream.cancel()


async def test_watch_slots_resumes_after_a_past_sequence(tmp_path: Path, venue: VenueDouble) -> None:
    async with running_service(settings_for(tmp_path, venue)) as kernel:
        started = (await kernel.stub.GetStatus(kernel_service_pb2.GetStatusRequest(), timeout=TIMEOUT)).sequence
        await kernel.stub.SubmitIntent(
            kernel_service_pb2.SubmitIntentRequest(intent=enter("i-1", 0), wait=wait_done()), timeout=TIMEOUT
        )
        stream = kernel.stub.WatchSlots(
            kernel_service_pb2.WatchSlotsRequest(slot_ids=[0], after_sequence=started), timeout=TIMEOUT
        )
        seen: list[tuple[int, slot_pb2.SlotState.ValueType]] = []
        async for change in stream:
            assert not change.full, "a resumed stream sends changes only"
            seen.extend((change.sequence, s.state) for s in change.view.slots)
            if seen[-1][1] == slot_pb2.SLOT_STATE_POSITION_OPEN:
                break
        stream.cancel()
        assert seen[0] == (started + 1, slot_pb2.SLOT_STATE_ENTRY_PENDING), "from the record right after"
        assert [sequence for sequence, _ in seen] == sorted({sequence for sequence, _ in seen})
        ahead = kernel.stub.WatchSlots(
            kernel_service_pb2.WatchSlotsRequest(after_sequence=seen[-1][0] + 1000), timeout=TIMEOUT
        )
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await anext(aiter(ahead))
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_restart_recovers_the_same_state(tmp_path: Path, venue: VenueDouble) -> None:
    settings = settings_for(tmp_path, venue, snapshot_every=3)
    async with running_service(settings) as kernel:
        for slot in range(3):
            await kernel.stub.SubmitIntent(
                kernel_service_pb2.SubmitIntentRequest(intent=enter(f"i-{slot}", slot), wait=wait_done()),
                timeout=TIMEOUT,
            )
        before = await kernel.stub.ListSlots(kernel_service_pb2.ListSlotsRequest(), timeout=TIMEOUT)
        account_before = await kernel.stub.GetAccount(kernel_service_pb2.GetAccountRequest(), timeout=TIMEOUT)
    async with running_service(settings) as kernel:
        after = await kernel.stub.ListSlots(kernel_service_pb2.ListSlotsRequest(), timeout=TIMEOUT)
        account_after = await kernel.stub.GetAccount(kernel_service_pb2.GetAccountRequest(), timeout=TIMEOUT)
        assert [s.trade_id for s in after.slots] == [s.trade_id for s in before.slots]
        assert [s.position_size.value for s in after.slots] == [s.position_size.value for s in before.slots]
        assert account_after.account.capital == account_before.account.capital
        assert account_after.sequence >= account_before.sequence, "restart adds reconcile records, never loses any"
        again = await kernel.stub.SubmitIntent(
            kernel_service_pb2.SubmitIntentRequest(intent=enter("i-9", 5), wait=wait_done()), timeout=TIMEOUT
        )
        trade_ids = {s.trade_id for s in before.slots if s.trade_id}
        assert again.slot.trade_id not in trade_ids, "id counters survive the restart"


async def test_status_reports_the_state_hash_of_a_clean_replay(tmp_path: Path, venue: VenueDouble) -> None:
    settings = settings_for(tmp_path, venue, snapshot_every=5, kernel_id="pinktest")
    async with running_service(settings) as kernel:
        for slot in range(3):
            await kernel.stub.SubmitIntent(
                kernel_service_pb2.SubmitIntentRequest(intent=enter(f"i-{slot}", slot), wait=wait_done()),
                timeout=TIMEOUT,
            )
        status = await kernel.stub.GetStatus(kernel_service_pb2.GetStatusRequest(), timeout=TIMEOUT)
    assert status.serving
    assert (status.kernel_id, status.version) == ("pinktest", "0.1.0")
    assert status.state_sequence == status.sequence >= 9, "3 intents, each accepted, filled and answered"
    assert status.journal_first_sequence == 1
    assert 5 <= status.snapshot_sequence <= status.sequence
    reference = await clean_replay(settings, upto=status.state_sequence)
    assert status.state_hash == reference.state_hash()
    assert len(status.state_hash) == 64


async def test_other_kernel_parameters_are_refused_for_an_existing_journal(tmp_path: Path, venue: VenueDouble) -> None:
    async with running_service(settings_for(tmp_path, venue)):
        pass
    with pytest.raises(ConfigError, match="slot_count"):
        async with running_service(settings_for(tmp_path, venue, slot_count=3)):
            pass


async def test_apply_venue_events_stops_at_the_first_invalid_event(tmp_path: Path, venue: VenueDouble) -> None:
    async with running_service(settings_for(tmp_path, venue)) as kernel:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await kernel.stub.ApplyVenueEvents(kernel_service_pb2.ApplyVenueEventsRequest(), timeout=TIMEOUT)
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        unknown = kernel_service_pb2.ApplyVenueEventsRequest()
        event = unknown.events.add()
        event.kind = venue_event_pb2.VENUE_EVENT_KIND_ORDER_ACCEPTED
        event.client_order_id = "pk-999"
        event.venue_event_id = "e-1"
        event.exchange_time.FromNanoseconds(1_767_225_600_000_000_000)
        response = await kernel.stub.ApplyVenueEvents(unknown, timeout=TIMEOUT)
        assert response.outcomes[0].code == outcome_pb2.DIAGNOSTIC_CODE_UNKNOWN_ORDER
        assert response.outcomes[0].anomalies[0].reconcile_needed
        bad = kernel_service_pb2.ApplyVenueEventsRequest()
        bad.events.add().CopyFrom(event)
        bad.events.add().kind = venue_event_pb2.VenueEventKind.ValueType(99)
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await kernel.stub.ApplyVenueEvents(bad, timeout=TIMEOUT)
        violations, _ = await error_details(raised.value)
        assert any(field.startswith("events[1].") for field, _ in violations)


async def _health(channel: grpc.aio.Channel) -> int:
    check = channel.unary_unary(
        "/grpc.health.v1.Health/Check",
        request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
        response_deserializer=health_pb2.HealthCheckResponse.FromString,
    )
    response = await check(health_pb2.HealthCheckRequest(service=""), timeout=TIMEOUT)
    return int(response.status)


async def _reflected_services(channel: grpc.aio.Channel) -> set[str]:
    info = channel.stream_stream(
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )
    call = info(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=TIMEOUT)
    response = await anext(aiter(call))
    call.cancel()
    return {service.name for service in response.list_services_response.service}
