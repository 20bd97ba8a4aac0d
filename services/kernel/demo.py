"""In-process paper-trading demonstration of the PINK kernel (``make run``).

A demonstration, not the platform: the kernel is driven directly through the ``pink_kernel``
binding, and the venue is a tiny deterministic stand-in in this process that answers the
kernel's PlaceOrder / CancelOrder commands at a seeded random-walk price (taker fee 0.05%,
limited liquidity per price level). The real venue service and BingX simulator come later.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, TextIO, TypeAlias, TypeVar

from google.protobuf import duration_pb2

import pink_kernel
from services.common.proto import (
    command_pb2,
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

if TYPE_CHECKING:
    from google.protobuf.internal.enum_type_wrapper import _EnumTypeWrapper

KERNEL_ID = "demo"
SLOTS = 4
ASSET = "USDT"
INITIAL_CAPITAL = Decimal("10000")
MAX_LEVERAGE = Decimal("20")
BTC, ETH = "BTC-USDT", "ETH-USDT"
TAKER_FEE = Decimal("0.0005")
START_NS = 1_767_225_600 * 1_000_000_000  # 2026-01-01T00:00:00Z
INPUT_SPACING_NS = 250_000_000
OK = outcome_pb2.DIAGNOSTIC_CODE_OK
LONG, SHORT = types_pb2.SIDE_LONG, types_pb2.SIDE_SHORT
V = TypeVar("V", bound=int)
EventKind: TypeAlias = venue_event_pb2.VenueEventKind.ValueType
ACCEPTED, CANCELLED = venue_event_pb2.VENUE_EVENT_KIND_ORDER_ACCEPTED, venue_event_pb2.VENUE_EVENT_KIND_CANCELLED
PARTIAL_FILL, FILL = venue_event_pb2.VENUE_EVENT_KIND_PARTIAL_FILL, venue_event_pb2.VENUE_EVENT_KIND_FILL


class DemoError(Exception):
    """The demonstration did not go as the kernel's contract says it must."""


@dataclass(frozen=True)
class Market:
    symbol: str
    start: Decimal
    tick: Decimal
    quantity_step: Decimal
    max_move_ticks: int  # the random walk moves at most this many ticks per mark
    level_size: Decimal  # liquidity at each price level of the stand-in's book


MARKETS = (
    Market(BTC, Decimal("65000.0"), Decimal("0.1"), Decimal("0.001"), 1500, Decimal("0.015")),
    Market(ETH, Decimal("3500.00"), Decimal("0.01"), Decimal("0.01"), 800, Decimal("0.60")),
)


def dec(value: Decimal | str) -> types_pb2.Decimal:
    return types_pb2.Decimal(value=value if isinstance(value, str) else f"{value:f}")


def num(value: types_pb2.Decimal) -> Decimal:
    """A decimal the kernel always sets; an empty one breaks the contract, loudly."""
    if not value.value:
        raise DemoError("the kernel sent an empty decimal where the contract requires one")
    return Decimal(value.value)


def show(value: types_pb2.Decimal | Decimal) -> str:
    """A decimal exactly, without trailing zeros or exponent."""
    return f"{(value if isinstance(value, Decimal) else num(value)).normalize():f}"


def label(enum: _EnumTypeWrapper[V], value: V) -> str:
    """An enum value's name without the enum's prefix: label(SlotState, SLOT_STATE_IDLE) == "IDLE"."""
    prefix = "".join(f"_{c}" if c.isupper() and i else c for i, c in enumerate(enum.DESCRIPTOR.name)).upper()
    return enum.Name(value).removeprefix(prefix + "_")


def demo_config() -> snapshot_pb2.KernelConfig:
    control = control_pb2.ControlState(
        trading_enabled=True,
        max_leverage=dec(MAX_LEVERAGE),
        max_notional_per_slot=dec("50000"),
        active_slot_limit=SLOTS,
    )
    control.allowed_symbols.extend(m.symbol for m in MARKETS)
    seconds = duration_pb2.Duration
    return snapshot_pb2.KernelConfig(
        kernel_id=KERNEL_ID,
        slot_count=SLOTS,
        settlement_asset=ASSET,
        initial_capital=dec(INITIAL_CAPITAL),
        initial_control=control,
        hard_max_leverage=dec("125"),
        ack_timeout=seconds(seconds=5),
        fill_timeout=seconds(seconds=10),
        resting_check_interval=seconds(seconds=60),
        cancel_timeout=seconds(seconds=5),
        max_query_backoff=seconds(seconds=300),
        retired_order_memory=1024,
        pnl_scale=10,
    )


def instruments() -> kernel_input_pb2.KernelInput:
    update = kernel_input_pb2.InstrumentUpdate()
    for m in MARKETS:
        step = dec(m.quantity_step)
        update.instruments.add(symbol=m.symbol, quantity_step=step, price_tick=dec(m.tick), min_quantity=step)
    return kernel_input_pb2.KernelInput(instrument_update=update)


def enter(
    intent_id: str,
    slot: int,
    *,
    symbol: str,
    side: types_pb2.Side.ValueType,
    size: str,
    leverage: str,
    limit_price: Decimal | None = None,
    exit_legs: Sequence[str] = (),
) -> kernel_input_pb2.KernelInput:
    """An ENTER intent: MARKET, or LIMIT GTC when ``limit_price`` is given."""
    market = limit_price is None
    intent = intent_pb2.Intent(
        intent_id=intent_id,
        action=intent_pb2.INTENT_ACTION_ENTER,
        slot_id=slot,
        symbol=symbol,
        side=side,
        order_type=types_pb2.ORDER_TYPE_MARKET if market else types_pb2.ORDER_TYPE_LIMIT,
        time_in_force=types_pb2.TIME_IN_FORCE_UNSPECIFIED if market else types_pb2.TIME_IN_FORCE_GTC,
        target_size=dec(size),
        leverage=dec(leverage),
        exit_leg_ratios=[dec(ratio) for ratio in exit_legs],
    )
    if limit_price is not None:
        intent.limit_price.CopyFrom(dec(limit_price))
    return kernel_input_pb2.KernelInput(intent=intent)


def order_intent(intent_id: str, slot: int, action: intent_pb2.IntentAction.ValueType) -> kernel_input_pb2.KernelInput:
    """A MARKET EXIT / EXIT_RESIDUAL, or a CANCEL of the slot's working order."""
    kind = (
        types_pb2.ORDER_TYPE_UNSPECIFIED if action == intent_pb2.INTENT_ACTION_CANCEL else types_pb2.ORDER_TYPE_MARKET
    )
    return kernel_input_pb2.KernelInput(
        intent=intent_pb2.Intent(intent_id=intent_id, action=action, slot_id=slot, order_type=kind)
    )


def describe(message: kernel_input_pb2.KernelInput) -> str:
    """One short human label of an input."""
    payload = message.WhichOneof("payload")
    if payload == "intent":
        it = message.intent
        text = f"{label(intent_pb2.IntentAction, it.action)} s{it.slot_id}"
        if it.action == intent_pb2.INTENT_ACTION_ENTER:
            size = it.target_size.value + (f" @ {it.limit_price.value}" if it.HasField("limit_price") else "")
            text += f" {label(types_pb2.Side, it.side)} {it.symbol} {label(types_pb2.OrderType, it.order_type)} {size}"
            text += f" x{it.leverage.value}"
    elif payload == "venue_event":
        ev = message.venue_event
        text = f"venue {label(venue_event_pb2.VenueEventKind, ev.kind)} {ev.client_order_id}"
        if ev.HasField("last_quantity"):
            text += f" {ev.last_quantity.value} @ {ev.last_price.value} fee {show(ev.fee)}"
        elif ev.HasField("cumulative_quantity"):
            text += f" cum {ev.cumulative_quantity.value}"
    elif payload == "mark_price":
        text = f"mark {message.mark_price.symbol} {message.mark_price.price.value}"
    elif payload == "control_update":
        text = f"control trading_enabled={str(message.control_update.trading_enabled).lower()}"
    else:
        text = f"{payload} " + ", ".join(i.symbol for i in message.instrument_update.instruments)
    return text


def describe_command(command: command_pb2.Command) -> str:
    if command.WhichOneof("command") != "place_order":
        return f"{command.WhichOneof('command')} {command.idempotency_key}"
    place = command.place_order
    side, kind = label(types_pb2.OrderSide, place.side), label(types_pb2.OrderType, place.order_type)
    purpose = label(types_pb2.OrderPurpose, place.purpose).lower() + (" reduce-only" if place.reduce_only else "")
    return f"place_order {place.client_order_id} {side} {kind} {place.quantity.value} {place.symbol} {purpose}"


@dataclass
class VenueOrder:
    place: command_pb2.PlaceOrder
    venue_order_id: str
    filled: Decimal = Decimal(0)


class PaperVenue:
    """Deterministic venue stand-in: a seeded random-walk price per symbol and a book with
    ``level_size`` liquidity per price level. MARKET orders sweep levels until filled;
    a marketable LIMIT order takes the first level and rests for the remainder."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)  # noqa: S311 - a reproducible price path, not cryptography
        self.prices = {m.symbol: m.start for m in MARKETS}
        self._markets = {m.symbol: m for m in MARKETS}
        self._orders: dict[str, VenueOrder] = {}
        self._events = 0

    def advance(self) -> list[kernel_input_pb2.KernelInput]:
        """Move every price one random-walk step; the new mark prices."""
        for m in MARKETS:
            move = self._rng.randint(-m.max_move_ticks, m.max_move_ticks) * m.tick
            self.prices[m.symbol] = max(self.prices[m.symbol] + move, m.tick)
        marks = (kernel_input_pb2.MarkPrice(symbol=s, price=dec(p)) for s, p in self.prices.items())
        return [kernel_input_pb2.KernelInput(mark_price=mark) for mark in marks]

    def filled(self, client_order_id: str) -> Decimal:
        return self._orders[client_order_id].filled

    def execute(self, command: command_pb2.Command, time_ns: int) -> list[venue_event_pb2.VenueEvent]:
        """The venue's answers to one kernel command."""
        kind = command.WhichOneof("command")
        if kind == "place_order":
            return self._place(command.place_order, time_ns)
        if kind == "cancel_order":
            order = self._orders[command.cancel_order.client_order_id]
            return [self._event(order, CANCELLED, time_ns)]
        raise DemoError(f"the demo venue does not answer {kind} commands")

    def _place(self, place: command_pb2.PlaceOrder, time_ns: int) -> list[venue_event_pb2.VenueEvent]:
        order = VenueOrder(place, venue_order_id=f"v{len(self._orders) + 1}")
        self._orders[place.client_order_id] = order
        events = [self._event(order, ACCEPTED, time_ns)]
        market, buy = self._markets[place.symbol], place.side == types_pb2.ORDER_SIDE_BUY
        price, quantity = self.prices[place.symbol], num(place.quantity)
        if place.order_type == types_pb2.ORDER_TYPE_LIMIT:
            limit = num(place.limit_price)
            if (limit >= price) if buy else (limit <= price):
                events.append(self._fill(order, min(market.level_size, quantity), price, time_ns))
            return events
        while order.filled < quantity:  # MARKET: sweep the book, one tick worse per level
            events.append(self._fill(order, min(market.level_size, quantity - order.filled), price, time_ns))
            price += market.tick if buy else -market.tick
        return events

    def _fill(self, order: VenueOrder, quantity: Decimal, price: Decimal, time_ns: int) -> venue_event_pb2.VenueEvent:
        """One execution of ``quantity`` at ``price``, paying the taker fee."""
        order.filled += quantity
        done = order.filled == num(order.place.quantity)
        event = self._event(order, FILL if done else PARTIAL_FILL, time_ns)
        event.last_quantity.CopyFrom(dec(quantity))
        event.last_price.CopyFrom(dec(price))
        event.fee.CopyFrom(dec(price * quantity * TAKER_FEE))
        event.fee_asset = ASSET
        return event

    def _event(self, order: VenueOrder, kind: EventKind, time_ns: int) -> venue_event_pb2.VenueEvent:
        self._events += 1
        event = venue_event_pb2.VenueEvent(
            kind=kind,
            client_order_id=order.place.client_order_id,
            venue_order_id=order.venue_order_id,
            venue_event_id=f"e{self._events}",
            symbol=order.place.symbol,
        )
        event.exchange_time.FromNanoseconds(time_ns)
        if kind != ACCEPTED:  # fills and CANCELLED report the order's cumulative quantity
            event.cumulative_quantity.CopyFrom(dec(order.filled))
        return event


class Demo:
    """Drives the kernel one input at a time, printing a line per input; the venue stand-in
    answers every command the kernel emits."""

    def __init__(self, seed: int, out: TextIO) -> None:
        self.kernel = pink_kernel.Kernel(demo_config().SerializeToString())
        self.venue = PaperVenue(seed)
        self._time_ns = START_NS
        self._out = out

    def say(self, text: str = "") -> None:
        self._out.write(text + "\n")

    def submit(
        self, message: kernel_input_pb2.KernelInput, expect: outcome_pb2.DiagnosticCode.ValueType = OK
    ) -> outcome_pb2.Outcome:
        self._time_ns += INPUT_SPACING_NS
        message.time.FromNanoseconds(self._time_ns)
        outcome = outcome_pb2.Outcome.FromString(self.kernel.step(message.SerializeToString()))
        code = label(outcome_pb2.DiagnosticCode, outcome.code)
        states = (
            f"s{t.slot_id} {label(slot_pb2.SlotState, t.from_state)}->{label(slot_pb2.SlotState, t.to_state)}"
            for t in outcome.transitions
        )
        sequence = f"{outcome.sequence:>4}" if outcome.accepted else "   -"
        self.say(f"{sequence}  {describe(message):<58} {code:<20} {', '.join(states)}".rstrip())
        if not outcome.accepted:
            details = [outcome.message, *(f"{v.field}: {v.description}" for v in outcome.violations)]
            self.say(f"        diagnostic: {'; '.join(details)}")
        if outcome.code != expect:
            raise DemoError(f"{describe(message)}: expected {label(outcome_pb2.DiagnosticCode, expect)}, got {code}")
        for command in outcome.commands:
            self.say(f"        => {describe_command(command)}")
            for event in self.venue.execute(command, self._time_ns):
                self.submit(kernel_input_pb2.KernelInput(venue_event=event))
        return outcome

    def mark(self) -> None:
        for mark in self.venue.advance():
            self.submit(mark)

    def view(self) -> view_pb2.KernelView:
        return view_pb2.KernelView.FromString(self.kernel.view(range(SLOTS), account=True, control=True))


def run_scenarios(demo: Demo) -> None:
    demo.say(f"{'seq':>4}  {'input':<58} {'code':<20} transitions")
    demo.submit(instruments())
    demo.mark()

    demo.say("-- (a) MARKET long BTC-USDT with two exit legs [0.5, 0.5]")
    demo.submit(enter("a-enter", 0, symbol=BTC, side=LONG, size="0.020", leverage="10", exit_legs=["0.5", "0.5"]))
    demo.mark()
    demo.submit(order_intent("a-exit-1", 0, intent_pb2.INTENT_ACTION_EXIT))
    demo.mark()
    demo.submit(order_intent("a-exit-2", 0, intent_pb2.INTENT_ACTION_EXIT))

    demo.say("-- (b) LIMIT short ETH-USDT: partly filled, cancelled, the filled part exited with EXIT_RESIDUAL")
    limit = demo.venue.prices[ETH] - Decimal("0.05")  # marketable: takes the first book level, rests for the rest
    entry = demo.submit(enter("b-enter", 1, symbol=ETH, side=SHORT, size="1.50", leverage="5", limit_price=limit))
    demo.mark()
    demo.submit(order_intent("b-cancel", 1, intent_pb2.INTENT_ACTION_CANCEL))
    position = num(demo.view().slots[1].position_size)
    filled = demo.venue.filled(entry.commands[0].place_order.client_order_id)
    if position != filled:
        raise DemoError(f"slot 1 position {position} is not the filled part {filled} of the cancelled entry")
    demo.say(f"        slot 1 position {show(position)} = the filled part of the 1.50 entry")
    demo.mark()
    demo.submit(order_intent("b-exit", 1, intent_pb2.INTENT_ACTION_EXIT_RESIDUAL))

    demo.say(f"-- (c) ENTER above the leverage limit ({MAX_LEVERAGE}) is rejected and changes nothing")
    too_high = enter("c-enter", 2, symbol=BTC, side=LONG, size="0.010", leverage="50")
    demo.submit(too_high, expect=outcome_pb2.DIAGNOSTIC_CODE_LEVERAGE_ABOVE_LIMIT)

    demo.say("-- (d) kill switch: the operator disables trading, ENTER is refused")
    kill = control_pb2.ControlUpdate(trading_enabled=False, actor="operator", reason="demo kill switch")
    demo.submit(kernel_input_pb2.KernelInput(control_update=kill))
    refused = enter("d-enter", 3, symbol=ETH, side=LONG, size="0.50", leverage="3")
    demo.submit(refused, expect=outcome_pb2.DIAGNOSTIC_CODE_TRADING_DISABLED)


def report(demo: Demo) -> list[str]:
    """Print the slot and account tables and the checks; the failed checks."""
    view = demo.view()
    demo.say()
    head = f"{'position':>8} {'entry avg':>11} {'realized':>12} {'fees':>11} {'unrealized':>11}"
    demo.say(f"{'slot':>4}  {'state':<9} {'trade':<8} {'symbol':<9} {'side':<5} {head}")
    for s in view.slots:
        side = label(types_pb2.Side, s.side) if s.side else ""
        average = show(s.entry_average_price) if s.HasField("entry_average_price") else "-"
        figures = f"{show(s.position_size):>8} {average:>11} {show(s.realized_pnl):>12}"
        figures += f" {show(s.fees):>11} {show(s.unrealized_pnl):>11}"
        demo.say(
            f"{s.slot_id:>4}  {label(slot_pb2.SlotState, s.state):<9} {s.trade_id:<8} {s.symbol:<9} {side:<5} {figures}"
        )
    a = view.account
    capital, initial, realized, fees = num(a.capital), num(a.initial_capital), num(a.realized_pnl), num(a.fees)
    funding, adjustments, unrealized, equity = num(a.funding), num(a.adjustments), num(a.unrealized_pnl), num(a.equity)
    demo.say()
    demo.say(f"{'capital':>14} {'realized':>12} {'fees':>11} {'unrealized':>11} {'equity':>14}  ({a.settlement_asset})")
    demo.say(f"{show(capital):>14} {show(realized):>12} {show(fees):>11} {show(unrealized):>11} {show(equity):>14}")
    demo.say(f"trades closed: {a.trades_closed}   trading enabled: {str(view.control.trading_enabled).lower()}")
    failures = []
    expected = initial + realized - fees + funding + adjustments
    if capital != expected:
        failures.append(f"conservation broken: capital {capital} != initial + realized - fees ... = {expected}")
    if equity != capital + unrealized:
        failures.append(f"equity {equity} != capital {capital} + unrealized {unrealized}")
    demo.say(
        f"conservation: capital == initial + realized - fees: {show(capital)} == {show(initial)} + ({show(realized)})"
        f" - {show(fees)}{'' if funding == adjustments == 0 else ' + funding + adjustments'}"
        f"  {'OK' if capital == expected else 'FAILED'}"
    )
    try:
        demo.kernel.check_invariants()
    except pink_kernel.KernelError as error:
        failures.append(f"kernel invariant broken: {error}")
        demo.say("kernel.check_invariants(): FAILED")
    else:
        demo.say(f"kernel.check_invariants(): OK   state hash {demo.kernel.state_hash()[:16]}")
    return failures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="PINK kernel demo: in-process paper trading (a demonstration).")
    parser.add_argument("--seed", type=int, default=2026, help="seed of the synthetic price path (default 2026)")
    args = parser.parse_args(argv)
    demo = Demo(args.seed, sys.stdout)
    demo.say(f"PINK kernel demo: in-process paper trading against a deterministic venue stand-in (seed {args.seed})")
    symbols = ", ".join(m.symbol for m in MARKETS)
    demo.say(f"kernel {KERNEL_ID!r}: {SLOTS} slots, {INITIAL_CAPITAL} {ASSET}, max leverage {MAX_LEVERAGE}, {symbols}")
    try:
        run_scenarios(demo)
    except (DemoError, pink_kernel.KernelError) as error:
        sys.stderr.write(f"demo failed: {error}\n")
        return 1
    failures = report(demo)
    for failure in failures:
        sys.stderr.write(f"check failed: {failure}\n")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
