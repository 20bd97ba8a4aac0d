"""Bad input for every field kind of every RPC that takes input, against the real service.

Each case is one RPC with one wrong field: a missing message, a string too long or with
characters outside its charset, a decimal that is not a number / not finite / negative /
above its cap, an unknown or unspecified enum value, an integer out of range, a repeated field
with a wrong element or a wrong sum, a missing timestamp, a negative duration. Every one must
answer INVALID_ARGUMENT with a google.rpc.BadRequest naming that field, and change nothing: the
log's sequence and the kernel's state hash are the same before and after the whole matrix.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

import grpc
import pytest
from google.protobuf import duration_pb2

from services.common.errors import error_details
from services.common.proto import (
    control_pb2,
    intent_pb2,
    kernel_input_pb2,
    kernel_service_pb2,
    kernel_service_pb2_grpc,
    types_pb2,
    venue_event_pb2,
)
from tests.common.messages import set_fields
from tests.kernel_service.test_kernel_service import TIMEOUT, enter, running_service, settings_for
from tests.kernel_service.venue_double import VenueDouble

pytestmark = pytest.mark.anyio

Stub: TypeAlias = "kernel_service_pb2_grpc.KernelServiceAsyncStub"
#: 2026-01-01T00:00:00Z: a valid exchange time for events and marks.
EXCHANGE_NS = 1_767_225_600_000_000_000


def _d(value: str) -> types_pb2.Decimal:
    return types_pb2.Decimal(value=value)


def _intent(**changes: object) -> intent_pb2.Intent:
    intent = enter("i-bad", 0)
    for name, value in changes.items():
        field = getattr(intent, name)
        if isinstance(value, types_pb2.Decimal):
            field.CopyFrom(value)
        elif isinstance(value, list):
            del field[:]
            field.extend(value)
        else:
            setattr(intent, name, value)
    return intent


def _fill(**changes: object) -> venue_event_pb2.VenueEvent:
    event = venue_event_pb2.VenueEvent(
        kind=venue_event_pb2.VENUE_EVENT_KIND_FILL,
        client_order_id="pk-1",
        venue_event_id="fill-1",
        symbol="BTC-USDT",
        last_quantity=_d("0.01"),
        cumulative_quantity=_d("0.01"),
        last_price=_d("100"),
        average_price=_d("100"),
        fee=_d("0.01"),
        fee_asset="USDT",
    )
    event.exchange_time.FromNanoseconds(EXCHANGE_NS)
    for name, value in changes.items():
        if isinstance(value, types_pb2.Decimal):
            getattr(event, name).CopyFrom(value)
        elif value is None and name == "exchange_time":
            event.ClearField("exchange_time")
        else:
            setattr(event, name, value)
    return event


def _mark(price: str, *, symbol: str = "BTC-USDT") -> kernel_input_pb2.MarkPrice:
    mark = kernel_input_pb2.MarkPrice(symbol=symbol, price=_d(price))
    mark.exchange_time.FromNanoseconds(EXCHANGE_NS)
    return mark


def _update(**changes: object) -> control_pb2.ControlUpdate:
    update = control_pb2.ControlUpdate(expected_version=1, actor="ops", reason="bad input test")
    return set_fields(update, **changes)


def _reconcile(**changes: object) -> kernel_input_pb2.Reconcile:
    reconcile = kernel_input_pb2.Reconcile(reconcile_id="r-bad", wallet_balance=_d("10000"))
    return set_fields(reconcile, **changes)


def _wait(seconds: int, *kinds: kernel_service_pb2.WaitFor.ValueType) -> kernel_service_pb2.WaitCondition:
    return kernel_service_pb2.WaitCondition(
        any_of=list(kinds) or [kernel_service_pb2.WAIT_FOR_ORDER_DONE],
        timeout=duration_pb2.Duration(seconds=seconds),
    )


@dataclass(frozen=True)
class Case:
    name: str
    #: The field the BadRequest must name (exactly, as a client sees it).
    field: str
    call: Callable[[Stub], Awaitable[object]]


def _submit(
    intent: intent_pb2.Intent | None, wait: kernel_service_pb2.WaitCondition | None = None
) -> Callable[[Stub], Awaitable[object]]:
    request = kernel_service_pb2.SubmitIntentRequest(intent=intent, wait=wait)
    return lambda stub: stub.SubmitIntent(request, timeout=TIMEOUT)


def _events(*events: venue_event_pb2.VenueEvent) -> Callable[[Stub], Awaitable[object]]:
    request = kernel_service_pb2.ApplyVenueEventsRequest(events=list(events))
    return lambda stub: stub.ApplyVenueEvents(request, timeout=TIMEOUT)


def _marked(mark: kernel_input_pb2.MarkPrice | None) -> Callable[[Stub], Awaitable[object]]:
    request = kernel_service_pb2.MarkPriceRequest(mark_price=mark)
    return lambda stub: stub.MarkPrice(request, timeout=TIMEOUT)


def _control(update: control_pb2.ControlUpdate | None) -> Callable[[Stub], Awaitable[object]]:
    request = kernel_service_pb2.UpdateControlRequest(update=update)
    return lambda stub: stub.UpdateControl(request, timeout=TIMEOUT)


def _reconciled(reconcile: kernel_input_pb2.Reconcile | None) -> Callable[[Stub], Awaitable[object]]:
    request = kernel_service_pb2.ReconcileRequest(reconcile=reconcile)
    return lambda stub: stub.Reconcile(request, timeout=TIMEOUT)


async def _first_of_stream(call: AsyncIterable[object]) -> object:
    async for message in call:
        return message
    return None


def _watch_records(consumer: str) -> Callable[[Stub], Awaitable[object]]:
    request = kernel_service_pb2.WatchRecordsRequest(consumer=consumer)
    return lambda stub: _first_of_stream(stub.WatchRecords(request, timeout=TIMEOUT))


def _watch_slots(*slot_ids: int) -> Callable[[Stub], Awaitable[object]]:
    request = kernel_service_pb2.WatchSlotsRequest(slot_ids=list(slot_ids))
    return lambda stub: _first_of_stream(stub.WatchSlots(request, timeout=TIMEOUT))


LONG = "x" * 1000
CASES = [
    # SubmitIntent: message, strings, decimals, enums, integers, repeated, wait condition
    Case("intent missing", "intent", _submit(None)),
    Case("intent id empty", "intent.intent_id", _submit(_intent(intent_id=""))),
    Case("intent id too long", "intent.intent_id", _submit(_intent(intent_id=LONG))),
    Case("intent id charset", "intent.intent_id", _submit(_intent(intent_id="id with spaces\n"))),
    Case("symbol charset", "intent.symbol", _submit(_intent(symbol="BTC/USDT;drop"))),
    Case("size not a number", "intent.target_size", _submit(_intent(target_size=_d("abc")))),
    Case("size NaN", "intent.target_size", _submit(_intent(target_size=_d("NaN")))),
    Case("size infinite", "intent.target_size", _submit(_intent(target_size=_d("Infinity")))),
    Case("size negative", "intent.target_size", _submit(_intent(target_size=_d("-0.01")))),
    Case("size zero", "intent.target_size", _submit(_intent(target_size=_d("0")))),
    Case("size above cap", "intent.target_size", _submit(_intent(target_size=_d("1e30")))),
    Case("leverage above cap", "intent.leverage", _submit(_intent(leverage=_d("100000")))),
    Case("reference price zero", "intent.reference_price", _submit(_intent(reference_price=_d("0")))),
    Case("action unspecified", "intent.action", _submit(_intent(action=intent_pb2.INTENT_ACTION_UNSPECIFIED))),
    Case("side unknown", "intent.side", _submit(_intent(side=types_pb2.Side.ValueType(99)))),
    Case("order type unknown", "intent.order_type", _submit(_intent(order_type=types_pb2.OrderType.ValueType(77)))),
    Case("exit leg ratio above 1", "intent.exit_leg_ratios[0]", _submit(_intent(exit_leg_ratios=[_d("1.5")]))),
    Case("exit leg ratios sum", "intent.exit_leg_ratios", _submit(_intent(exit_leg_ratios=[_d("0.5"), _d("0.6")]))),
    Case("wait timeout negative", "wait.timeout", _submit(enter("i-w1", 0), _wait(-1))),
    Case(
        "wait kind unknown",
        "wait.any_of",
        _submit(enter("i-w2", 0), _wait(5, kernel_service_pb2.WaitFor.ValueType(42))),
    ),
    # ApplyVenueEvents: list, timestamp, decimals, enum, strings
    Case("events empty", "events", _events()),
    Case("event time missing", "events[0].exchange_time", _events(_fill(exchange_time=None))),
    Case("event fee not a number", "events[0].fee", _events(_fill(fee=_d("1,5")))),
    Case("event fill price zero", "events[0].last_price", _events(_fill(last_price=_d("0")))),
    Case("event kind unknown", "events[0].kind", _events(_fill(kind=venue_event_pb2.VenueEventKind.ValueType(99)))),
    Case("event id too long", "events[0].venue_event_id", _events(_fill(venue_event_id=LONG))),
    # MarkPrice
    Case("mark missing", "mark_price", _marked(None)),
    Case("mark price negative", "mark_price.price", _marked(_mark("-1"))),
    Case("mark symbol empty", "mark_price.symbol", _marked(_mark("100", symbol=""))),
    # UpdateControl
    Case("update missing", "update", _control(None)),
    Case("update leverage negative", "update.max_leverage", _control(_update(max_leverage=_d("-2")))),
    Case(
        "update notional not a number", "update.max_notional_per_slot", _control(_update(max_notional_per_slot=_d("x")))
    ),
    Case(
        "update symbol charset",
        "update.allowed_symbols.symbols[0]",
        _control(_update(allowed_symbols=control_pb2.SymbolList(symbols=["BTC USDT"]))),
    ),
    Case("update actor empty", "update.actor", _control(_update(actor=""))),
    # Reconcile
    Case("reconcile missing", "reconcile", _reconciled(None)),
    Case("reconcile id empty", "reconcile.reconcile_id", _reconciled(_reconcile(reconcile_id=""))),
    Case("reconcile balance not a number", "reconcile.wallet_balance", _reconciled(_reconcile(wallet_balance=_d("?")))),
    # Reads and streams
    Case(
        "get slot out of range",
        "slot_id",
        lambda stub: stub.GetSlot(kernel_service_pb2.GetSlotRequest(slot_id=99), timeout=TIMEOUT),
    ),
    Case(
        "list slots unknown state",
        "states",
        lambda stub: stub.ListSlots(kernel_service_pb2.ListSlotsRequest(states=[42]), timeout=TIMEOUT),  # type: ignore[list-item]
    ),
    Case("watch records consumer charset", "consumer", _watch_records("bad consumer!")),
    Case("watch slots unknown slot", "slot_ids", _watch_slots(0, 99)),
    Case(
        "ack records unknown consumer",
        "consumer",
        lambda stub: stub.AckRecords(
            kernel_service_pb2.AckRecordsRequest(consumer="nobody", sequence=1), timeout=TIMEOUT
        ),
    ),
]


async def test_every_field_kind_is_refused_by_name_and_changes_nothing(tmp_path: Path, venue: VenueDouble) -> None:
    async with running_service(settings_for(tmp_path, venue)) as kernel:
        before = await kernel.stub.GetStatus(kernel_service_pb2.GetStatusRequest(), timeout=TIMEOUT)
        wrong: list[str] = []
        for case in CASES:
            try:
                await case.call(kernel.stub)
            except grpc.aio.AioRpcError as error:
                violations, _ = await error_details(error)
                fields = sorted({field for field, _ in violations})
                if error.code() != grpc.StatusCode.INVALID_ARGUMENT or case.field not in fields:
                    wrong.append(f"{case.name}: {error.code().name} naming {fields} ({error.details()})")
            else:
                wrong.append(f"{case.name}: accepted")
        after = await kernel.stub.GetStatus(kernel_service_pb2.GetStatusRequest(), timeout=TIMEOUT)
        assert not wrong, "bad input not refused as INVALID_ARGUMENT naming its field:\n" + "\n".join(wrong)
        assert (after.sequence, after.state_hash) == (before.sequence, before.state_hash), "bad input changed state"
