"""Typed builders of pink.v1 messages for driving the kernel binding in tests."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import TypeAlias

from google.protobuf import duration_pb2, timestamp_pb2

import pink_kernel
from services.common.proto import (
    control_pb2,
    intent_pb2,
    kernel_input_pb2,
    outcome_pb2,
    slot_pb2,
    snapshot_pb2,
    types_pb2,
    venue_event_pb2,
    view_pb2,
)
from services.kernel.core import Payload

SETTLEMENT_ASSET = "USDT"
BTC = "BTC-USDT"
ETH = "ETH-USDT"
# 2026-01-01T00:00:00Z: the default time of the first input.
BASE_TIME_NS = 1_767_225_600 * 1_000_000_000

Number: TypeAlias = str | int | Decimal


def dec(value: Number) -> types_pb2.Decimal:
    """A pink.v1.Decimal holding exactly ``value`` (strings are passed through unchanged)."""
    return types_pb2.Decimal(value=value if isinstance(value, str) else str(value))


def num(value: types_pb2.Decimal) -> Decimal:
    """The exact value of a pink.v1.Decimal."""
    return Decimal(value.value)


def timestamp(ns: int) -> timestamp_pb2.Timestamp:
    seconds, nanos = divmod(ns, 1_000_000_000)
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)


def seconds(value: int) -> duration_pb2.Duration:
    return duration_pb2.Duration(seconds=value)


def default_control() -> control_pb2.ControlState:
    return control_pb2.ControlState(
        trading_enabled=True,
        reduce_only=False,
        max_leverage=dec("20"),
        max_notional_per_slot=dec("1000000"),
        active_slot_limit=10,
        allowed_symbols=[BTC, ETH],
    )


def default_config() -> snapshot_pb2.KernelConfig:
    """Kernel "pk": 10 slots, 10000 USDT, trading enabled, BTC-USDT and ETH-USDT allowed."""
    return snapshot_pb2.KernelConfig(
        kernel_id="pk",
        slot_count=10,
        settlement_asset=SETTLEMENT_ASSET,
        initial_capital=dec("10000"),
        initial_control=default_control(),
        hard_max_leverage=dec("125"),
        ack_timeout=seconds(5),
        fill_timeout=seconds(10),
        resting_check_interval=seconds(60),
        cancel_timeout=seconds(5),
        max_query_backoff=seconds(300),
        retired_order_memory=1024,
        pnl_scale=10,
    )


def new_kernel(config: snapshot_pb2.KernelConfig | None = None) -> pink_kernel.Kernel:
    return pink_kernel.Kernel((config or default_config()).SerializeToString())


def kernel_input(payload: Payload, *, time_ns: int = BASE_TIME_NS, sequence: int = 0) -> kernel_input_pb2.KernelInput:
    """A KernelInput carrying ``payload`` at ``time_ns`` (sequence 0: the kernel assigns the next one)."""
    message = kernel_input_pb2.KernelInput(sequence=sequence, time=timestamp(time_ns))
    if isinstance(payload, intent_pb2.Intent):
        message.intent.CopyFrom(payload)
    elif isinstance(payload, venue_event_pb2.VenueEvent):
        message.venue_event.CopyFrom(payload)
    elif isinstance(payload, kernel_input_pb2.MarkPrice):
        message.mark_price.CopyFrom(payload)
    elif isinstance(payload, control_pb2.ControlUpdate):
        message.control_update.CopyFrom(payload)
    elif isinstance(payload, kernel_input_pb2.Reconcile):
        message.reconcile.CopyFrom(payload)
    elif isinstance(payload, kernel_input_pb2.Timer):
        message.timer.CopyFrom(payload)
    elif isinstance(payload, kernel_input_pb2.InstrumentUpdate):
        message.instrument_update.CopyFrom(payload)
    else:
        message.funding_payment.CopyFrom(payload)
    return message


def instrument(symbol: str, *, step: Number, tick: Number, minimum: Number) -> kernel_input_pb2.Instrument:
    return kernel_input_pb2.Instrument(
        symbol=symbol, quantity_step=dec(step), price_tick=dec(tick), min_quantity=dec(minimum)
    )


def instrument_update() -> kernel_input_pb2.InstrumentUpdate:
    """BTC-USDT (step 0.001, tick 0.1, min 0.001) and ETH-USDT (step 0.01, tick 0.01, min 0.01)."""
    return kernel_input_pb2.InstrumentUpdate(
        instruments=[
            instrument(BTC, step="0.001", tick="0.1", minimum="0.001"),
            instrument(ETH, step="0.01", tick="0.01", minimum="0.01"),
        ]
    )


def mark_price(symbol: str, price: Number) -> kernel_input_pb2.MarkPrice:
    return kernel_input_pb2.MarkPrice(symbol=symbol, price=dec(price))


def enter(
    intent_id: str,
    slot: int,
    *,
    symbol: str = BTC,
    side: types_pb2.Side.ValueType = types_pb2.SIDE_LONG,
    size: Number,
    leverage: Number = "10",
    reference_price: Number | None = None,
    limit_price: Number | None = None,
    time_in_force: types_pb2.TimeInForce.ValueType = types_pb2.TIME_IN_FORCE_UNSPECIFIED,
    exit_leg_ratios: Iterable[Number] = (),
) -> intent_pb2.Intent:
    """An ENTER intent: MARKET unless ``limit_price`` is given."""
    intent = intent_pb2.Intent(
        intent_id=intent_id,
        action=intent_pb2.INTENT_ACTION_ENTER,
        slot_id=slot,
        symbol=symbol,
        side=side,
        order_type=types_pb2.ORDER_TYPE_MARKET if limit_price is None else types_pb2.ORDER_TYPE_LIMIT,
        target_size=dec(size),
        leverage=dec(leverage),
        time_in_force=time_in_force,
        exit_leg_ratios=[dec(r) for r in exit_leg_ratios],
    )
    if reference_price is not None:
        intent.reference_price.CopyFrom(dec(reference_price))
    if limit_price is not None:
        intent.limit_price.CopyFrom(dec(limit_price))
    return intent


def exit_intent(intent_id: str, slot: int, *, residual: bool = False) -> intent_pb2.Intent:
    """A MARKET EXIT (or EXIT_RESIDUAL) intent."""
    return intent_pb2.Intent(
        intent_id=intent_id,
        action=intent_pb2.INTENT_ACTION_EXIT_RESIDUAL if residual else intent_pb2.INTENT_ACTION_EXIT,
        slot_id=slot,
        order_type=types_pb2.ORDER_TYPE_MARKET,
    )


def accepted(client_order_id: str, event_id: str, *, venue_order_id: str, time_ns: int) -> venue_event_pb2.VenueEvent:
    """The venue acknowledged an order."""
    return venue_event_pb2.VenueEvent(
        kind=venue_event_pb2.VENUE_EVENT_KIND_ORDER_ACCEPTED,
        client_order_id=client_order_id,
        venue_order_id=venue_order_id,
        venue_event_id=event_id,
        exchange_time=timestamp(time_ns),
    )


def fill(
    client_order_id: str,
    event_id: str,
    *,
    quantity: Number,
    price: Number,
    cumulative: Number,
    fee: Number | None = None,
    time_ns: int,
    partial: bool = False,
) -> venue_event_pb2.VenueEvent:
    """An execution of ``quantity`` at ``price`` (FILL, or PARTIAL_FILL); a fee is paid in USDT."""
    event = venue_event_pb2.VenueEvent(
        kind=venue_event_pb2.VENUE_EVENT_KIND_PARTIAL_FILL if partial else venue_event_pb2.VENUE_EVENT_KIND_FILL,
        client_order_id=client_order_id,
        venue_event_id=event_id,
        last_quantity=dec(quantity),
        last_price=dec(price),
        cumulative_quantity=dec(cumulative),
        exchange_time=timestamp(time_ns),
    )
    if fee is not None:
        event.fee.CopyFrom(dec(fee))
        event.fee_asset = SETTLEMENT_ASSET
    return event


def step(kernel: pink_kernel.Kernel, message: kernel_input_pb2.KernelInput) -> outcome_pb2.Outcome:
    """Serialize, step, parse."""
    return outcome_pb2.Outcome.FromString(kernel.step(message.SerializeToString()))


def send(kernel: pink_kernel.Kernel, payload: Payload, *, time_ns: int = BASE_TIME_NS) -> outcome_pb2.Outcome:
    return step(kernel, kernel_input(payload, time_ns=time_ns))


def post_state(kernel: pink_kernel.Kernel, outcome: outcome_pb2.Outcome) -> view_pb2.KernelView:
    """The post-state of what ``outcome`` says changed (read right after the step)."""
    view = kernel.view(list(outcome.changed_slots), account=outcome.account_changed, control=outcome.control_changed)
    return view_pb2.KernelView.FromString(view)


def placed_order_id(outcome: outcome_pb2.Outcome) -> str:
    """The client order id of the one PlaceOrder command of an outcome."""
    places = [c.place_order for c in outcome.commands if c.WhichOneof("command") == "place_order"]
    if len(places) != 1:
        msg = f"expected exactly one PlaceOrder command, got {list(outcome.commands)}"
        raise AssertionError(msg)
    return places[0].client_order_id


def slot_state_name(state: slot_pb2.SlotState.ValueType) -> str:
    return slot_pb2.SlotState.Name(state)
