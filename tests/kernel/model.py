"""An independent reference model of the kernel's slot FSM and money, for ``test_model.py``.

Written from the ``pink.v1`` contract (``protos/pink/v1/*.proto``), not from the Rust
code: plain Python, exact ``decimal.Decimal`` arithmetic, no protobuf. It covers one
instrument, MARKET/LIMIT entries and exits, exit legs, cancels and the venue events
that answer them (acks, rejects, fills, cancels, cancel rejects), duplicates, unknown
and finished orders, marks (valuation) and the account ledger. What it does not model
(deadline bookkeeping, reconcile, funding, control updates, fill gaps) the test never
generates, or checks only loosely.

The names of the enums below are the ``pink.v1`` enum value names without their
prefix (``SlotState.ENTRY_PENDING`` is ``SLOT_STATE_ENTRY_PENDING``), so the test can
translate by name.

Contract points the model relies on, by source:

* slot.proto: the states and what they accept; ``entry_filled_quantity`` is the "initial
  size" legs refer to; ``cost_basis`` is released pro rata by exits so the trade's total
  PnL is exact; ``leg_filled_quantity`` is the quantity exited towards the current leg (a
  cancelled leg that partly filled is finished by the next EXIT); IDLE means no trade
  (``trade_id`` empty when the entry ended with no fill); CLOSED is terminal for the trade.
* intent.proto: leg k size = ratio[k] x entry size rounded down to the quantity step, the
  last leg takes whatever remains; EXIT_RESIDUAL exits whatever remains; duplicates of
  the slot's last intent id are refused.
* outcome.proto: the diagnostic codes (SLOT_BUSY, NO_OPEN_POSITION, ENTRY_IN_PROGRESS,
  EXIT_IN_PROGRESS, LEG_BELOW_MIN_QUANTITY, NO_ACTIVE_*_ORDER, CANCEL_ALREADY_PENDING,
  DUPLICATE_EVENT, UNKNOWN_ORDER, STALE_EVENT, FILL_AFTER_TERMINAL, LATE_FILL,
  STATE_CONFLICT, ACTIVE_SLOT_LIMIT) and the anomaly kinds (OVERFILL: the excess is not
  booked).
* venue_event.proto: events are routed by client order id and deduplicated by
  ``venue_event_id`` for the whole life of the order; FILL means the venue reports the
  order FILLED; CANCELLED carries the cumulative filled quantity.
* account.proto: capital = initial + realized - fees + funding + adjustments; a fee
  ledger entry has amount = -fee; an exit fill books its gross PnL.
* snapshot.proto: ``pnl_scale`` decimal places for cost released by a partial exit (the
  contract does not name the rounding mode: the model uses round-half-even).

Where the contract is silent the model takes the plain reading, listed so a reviewer can
challenge it: a repeated intent id is answered DUPLICATE_INTENT before anything else;
SLOT_BUSY comes before ACTIVE_SLOT_LIMIT; an exit leg is capped at the open position; every
exit fill (EXIT_RESIDUAL's too) counts towards the current leg, and a leg advances when its
order fills completely; an ack for an order whose cancel is pending keeps the slot
CANCELLING; a cancel reject returns the slot to PENDING when the order was never
acknowledged, else to WORKING; the venue may cancel or expire an order nobody asked to
cancel; ORDER_MISMATCH is judged before duplicates; unrealized PnL is side x (mark x size
- cost basis); a late ack that teaches the venue order id is applied (outcome.proto,
ANOMALY_KIND_STALE_EVENT).
"""

from __future__ import annotations

import copy
import enum
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from decimal import (
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
    localcontext,
)

ZERO = Decimal(0)
ONE = Decimal(1)

# Every model computation is exact: an inexact result raises instead of rounding.
_EXACT = Context(prec=80, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, DivisionByZero, Overflow, Inexact])
# Only the pro-rata cost release divides; it rounds once, explicitly, to pnl_scale places.
_DIVIDE = Context(prec=80, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, DivisionByZero, Overflow])


@contextmanager
def _exact() -> Iterator[None]:
    with localcontext(_EXACT):
        yield


class ModelError(AssertionError):
    """The test drove the model into a situation it does not cover, or broke its invariants."""


class SlotState(enum.Enum):
    IDLE = enum.auto()
    ENTRY_PENDING = enum.auto()
    ENTRY_WORKING = enum.auto()
    ENTRY_CANCELLING = enum.auto()
    POSITION_OPEN = enum.auto()
    EXIT_PENDING = enum.auto()
    EXIT_WORKING = enum.auto()
    EXIT_CANCELLING = enum.auto()
    CLOSED = enum.auto()


FREE_STATES = frozenset({SlotState.IDLE, SlotState.CLOSED})
ENTRY_STATES = frozenset({SlotState.ENTRY_PENDING, SlotState.ENTRY_WORKING, SlotState.ENTRY_CANCELLING})
EXIT_STATES = frozenset({SlotState.EXIT_PENDING, SlotState.EXIT_WORKING, SlotState.EXIT_CANCELLING})
WAITING_STATES = ENTRY_STATES | EXIT_STATES


class Side(enum.Enum):
    LONG = enum.auto()
    SHORT = enum.auto()


class OrderSide(enum.Enum):
    BUY = enum.auto()
    SELL = enum.auto()


class Purpose(enum.Enum):
    ENTRY = enum.auto()
    EXIT = enum.auto()


class OrderType(enum.Enum):
    MARKET = enum.auto()
    LIMIT = enum.auto()


class OrderStatus(enum.Enum):
    PENDING_NEW = enum.auto()
    ACCEPTED = enum.auto()
    PARTIALLY_FILLED = enum.auto()
    FILLED = enum.auto()
    CANCELLED = enum.auto()
    REJECTED = enum.auto()
    EXPIRED = enum.auto()


class EventKind(enum.Enum):
    ORDER_ACCEPTED = enum.auto()
    ORDER_REJECTED = enum.auto()
    PARTIAL_FILL = enum.auto()
    FILL = enum.auto()
    CANCELLED = enum.auto()
    CANCEL_REJECTED = enum.auto()
    EXPIRED = enum.auto()
    # venue_event.proto: a status the venue service does not know.
    UNKNOWN = enum.auto()


FILL_KINDS = frozenset({EventKind.PARTIAL_FILL, EventKind.FILL})


class Code(enum.Enum):
    OK = enum.auto()
    SLOT_BUSY = enum.auto()
    DUPLICATE_INTENT = enum.auto()
    ACTIVE_SLOT_LIMIT = enum.auto()
    NO_OPEN_POSITION = enum.auto()
    ENTRY_IN_PROGRESS = enum.auto()
    EXIT_IN_PROGRESS = enum.auto()
    LEG_BELOW_MIN_QUANTITY = enum.auto()
    NO_ACTIVE_ORDER = enum.auto()
    NO_ACTIVE_ENTRY_ORDER = enum.auto()
    NO_ACTIVE_EXIT_ORDER = enum.auto()
    CANCEL_ALREADY_PENDING = enum.auto()
    DUPLICATE_EVENT = enum.auto()
    UNKNOWN_ORDER = enum.auto()
    STALE_EVENT = enum.auto()
    FILL_AFTER_TERMINAL = enum.auto()
    LATE_FILL = enum.auto()
    STATE_CONFLICT = enum.auto()
    ORDER_MISMATCH = enum.auto()


class LedgerKind(enum.Enum):
    REALIZED_PNL = enum.auto()
    FEE = enum.auto()


class Anomaly(enum.Enum):
    DUPLICATE_EVENT = enum.auto()
    UNKNOWN_ORDER = enum.auto()
    LATE_FILL = enum.auto()
    FILL_AFTER_TERMINAL = enum.auto()
    OVERFILL = enum.auto()
    STALE_EVENT = enum.auto()
    STATE_CONFLICT = enum.auto()
    ORDER_MISMATCH = enum.auto()
    UNKNOWN_STATUS = enum.auto()


class CommandKind(enum.Enum):
    PLACE = enum.auto()
    CANCEL = enum.auto()
    # QueryOrder after a cancel reject (QUERY_REASON_CANCEL_REJECTED).
    QUERY = enum.auto()
    # QueryOrder after an UNKNOWN status (QUERY_REASON_UNKNOWN_STATUS).
    QUERY_UNKNOWN_STATUS = enum.auto()


@dataclass(frozen=True)
class Instrument:
    symbol: str
    quantity_step: Decimal
    price_tick: Decimal
    min_quantity: Decimal

    def floor(self, value: Decimal) -> Decimal:
        """The largest multiple of the quantity step that is <= ``value`` (value >= 0)."""
        with _exact():
            return (value // self.quantity_step) * self.quantity_step


@dataclass(frozen=True)
class VenueEvent:
    """What the venue reports about one order (the model's view of ``pink.v1.VenueEvent``)."""

    kind: EventKind
    client_order_id: str
    event_id: str
    venue_order_id: str | None = None
    symbol: str | None = None
    quantity: Decimal | None = None
    price: Decimal | None = None
    cumulative: Decimal | None = None
    fee: Decimal = ZERO


@dataclass(frozen=True)
class Placement:
    """A PlaceOrder the kernel must emit."""

    client_order_id: str
    purpose: Purpose
    side: OrderSide
    position_side: Side
    order_type: OrderType
    quantity: Decimal
    limit_price: Decimal | None
    reduce_only: bool


@dataclass(frozen=True)
class Result:
    """The model's prediction for one input."""

    code: Code
    placement: Placement | None = None
    # Commands about existing orders: (kind, client order id).
    commands: tuple[tuple[CommandKind, str], ...] = ()
    # Non-zero ledger entries in order: (kind, signed amount applied to capital).
    ledger: tuple[tuple[LedgerKind, Decimal], ...] = ()
    anomalies: frozenset[Anomaly] = frozenset()

    @property
    def accepted(self) -> bool:
        return self.code is Code.OK


@dataclass
class Order:
    client_order_id: str
    purpose: Purpose
    side: OrderSide
    order_type: OrderType
    quantity: Decimal
    # The exit leg the order works; None for entries and EXIT_RESIDUAL.
    exit_leg: int | None
    filled: Decimal = ZERO
    status: OrderStatus = OrderStatus.PENDING_NEW
    cancel_requested: bool = False
    venue_order_id: str | None = None
    seen_event_ids: set[str] = field(default_factory=set)

    @property
    def remaining(self) -> Decimal:
        with _exact():
            return self.quantity - self.filled


@dataclass(frozen=True)
class RetiredOrder:
    client_order_id: str
    slot_id: int
    trade_id: str | None
    seen_event_ids: frozenset[str]


@dataclass
class Slot:
    slot_id: int
    state: SlotState = SlotState.IDLE
    trade_id: str | None = None
    side: Side | None = None
    exit_leg_ratios: tuple[Decimal, ...] = ()
    next_exit_leg: int = 0
    leg_filled: Decimal = ZERO
    position: Decimal = ZERO
    entry_quantity: Decimal = ZERO
    entry_notional: Decimal = ZERO
    cost_basis: Decimal = ZERO
    exit_quantity: Decimal = ZERO
    exit_notional: Decimal = ZERO
    realized_pnl: Decimal = ZERO
    fees: Decimal = ZERO
    order: Order | None = None
    last_intent_id: str | None = None

    @property
    def net_pnl(self) -> Decimal:
        with _exact():
            return self.realized_pnl - self.fees

    def clear_trade(self) -> None:
        """Back to "no trade": everything but the slot id and the last intent id."""
        fresh = Slot(self.slot_id, last_intent_id=self.last_intent_id)
        for item in fields(self):
            setattr(self, item.name, getattr(fresh, item.name))


@dataclass
class Account:
    initial_capital: Decimal
    capital: Decimal
    realized_pnl: Decimal = ZERO
    fees: Decimal = ZERO
    funding: Decimal = ZERO
    adjustments: Decimal = ZERO
    trades_closed: int = 0
    active_slots: int = 0


class KernelModel:
    """The reference model: one instrument, ``slot_count`` slots, one account."""

    def __init__(
        self,
        *,
        slot_count: int,
        initial_capital: Decimal,
        instrument: Instrument,
        active_slot_limit: int,
        pnl_scale: int,
    ) -> None:
        self.instrument = instrument
        self.active_slot_limit = active_slot_limit
        self.pnl_quantum = Decimal(1).scaleb(-pnl_scale)
        self.slots = [Slot(i) for i in range(slot_count)]
        self.account = Account(initial_capital=initial_capital, capital=initial_capital)
        self.mark: Decimal | None = None
        # Every client order id ever issued: live (slot id) or retired.
        self.live: dict[str, int] = {}
        self.retired: dict[str, RetiredOrder] = {}
        self.trade_ids: set[str] = set()

    # ------------------------------------------------------------------ reads

    def copy(self) -> KernelModel:
        return copy.deepcopy(self)

    def known_order(self, client_order_id: str) -> bool:
        return client_order_id in self.live or client_order_id in self.retired

    def live_slots(self) -> list[Slot]:
        return [s for s in self.slots if s.order is not None]

    def unrealized(self, slot: Slot) -> Decimal:
        """Valuation of the open position at the last mark: side x (mark x size - cost basis)."""
        if self.mark is None or slot.position == ZERO:
            return ZERO
        with _exact():
            value = self.mark * slot.position - slot.cost_basis
            return -value if slot.side is Side.SHORT else value

    def account_unrealized(self) -> Decimal:
        with _exact():
            return sum((self.unrealized(s) for s in self.slots), ZERO)

    def equity(self) -> Decimal:
        with _exact():
            return self.account.capital + self.account_unrealized()

    def check(self) -> None:
        """The model's own invariants (the ones ACCEPTANCE.md names)."""
        a = self.account
        with _exact():
            expected = a.initial_capital + a.realized_pnl - a.fees + a.funding + a.adjustments
            if a.capital != expected:
                raise ModelError(f"model capital {a.capital} != {expected}")
            if a.active_slots != sum(1 for s in self.slots if s.state not in FREE_STATES):
                raise ModelError("model active slot count is off")
            for s in self.slots:
                if not ZERO <= s.position <= s.entry_quantity:
                    raise ModelError(f"slot {s.slot_id}: position {s.position} outside [0, {s.entry_quantity}]")
                if s.position != s.entry_quantity - s.exit_quantity:
                    raise ModelError(f"slot {s.slot_id}: position != entry - exit")
                if (s.order is not None) != (s.state in WAITING_STATES):
                    raise ModelError(f"slot {s.slot_id}: {s.state} with order {s.order}")
                if s.state is SlotState.POSITION_OPEN and s.position <= ZERO:
                    raise ModelError(f"slot {s.slot_id}: POSITION_OPEN without position")
                if s.state in FREE_STATES and s.position != ZERO:
                    raise ModelError(f"slot {s.slot_id}: {s.state} with position")

    # ------------------------------------------------------------------ intents

    def _intent_guard(self, slot: Slot, intent_id: str) -> Code | None:
        if slot.last_intent_id == intent_id:
            return Code.DUPLICATE_INTENT
        return None

    def enter(
        self,
        slot_id: int,
        intent_id: str,
        *,
        side: Side,
        order_type: OrderType,
        size: Decimal,
        limit_price: Decimal | None,
        exit_leg_ratios: tuple[Decimal, ...],
        trade_id: str,
        client_order_id: str,
    ) -> Result:
        """ENTER (a valid one): ``trade_id`` and ``client_order_id`` are the ids the kernel assigned."""
        slot = self.slots[slot_id]
        refused = self._intent_guard(slot, intent_id)
        if refused is not None:
            return Result(refused)
        if slot.state not in FREE_STATES:
            return Result(Code.SLOT_BUSY)
        if self.account.active_slots >= self.active_slot_limit:
            return Result(Code.ACTIVE_SLOT_LIMIT)
        if trade_id in self.trade_ids or self.known_order(client_order_id):
            raise ModelError(f"the kernel reused an id: trade {trade_id}, order {client_order_id}")
        slot.clear_trade()
        slot.trade_id = trade_id
        self.trade_ids.add(trade_id)
        slot.side = side
        slot.exit_leg_ratios = exit_leg_ratios or (ONE,)
        slot.last_intent_id = intent_id
        order_side = OrderSide.BUY if side is Side.LONG else OrderSide.SELL
        slot.order = Order(client_order_id, Purpose.ENTRY, order_side, order_type, size, exit_leg=None)
        self.live[client_order_id] = slot_id
        self._move(slot, SlotState.ENTRY_PENDING)
        placement = Placement(
            client_order_id, Purpose.ENTRY, order_side, side, order_type, size, limit_price, reduce_only=False
        )
        return Result(Code.OK, placement=placement)

    def exit_quantity(self, slot: Slot, *, residual: bool) -> Decimal | None:
        """Size of the next exit order of an open position, or None when the leg is below the minimum."""
        last_leg = slot.next_exit_leg + 1 >= len(slot.exit_leg_ratios)
        if residual or last_leg:
            return slot.position
        with _exact():
            target = self.instrument.floor(slot.exit_leg_ratios[slot.next_exit_leg] * slot.entry_quantity)
            quantity = min(target - slot.leg_filled, slot.position)
        if quantity <= ZERO or quantity < self.instrument.min_quantity:
            return None
        return quantity

    def exit(
        self,
        slot_id: int,
        intent_id: str,
        *,
        residual: bool,
        order_type: OrderType,
        limit_price: Decimal | None,
        client_order_id: str,
    ) -> Result:
        """EXIT or EXIT_RESIDUAL: ``client_order_id`` is the id the kernel assigned."""
        slot = self.slots[slot_id]
        refused = self._intent_guard(slot, intent_id)
        if refused is not None:
            return Result(refused)
        if slot.state in FREE_STATES:
            return Result(Code.NO_OPEN_POSITION)
        if slot.state in ENTRY_STATES:
            return Result(Code.ENTRY_IN_PROGRESS)
        if slot.state in EXIT_STATES:
            return Result(Code.EXIT_IN_PROGRESS)
        quantity = self.exit_quantity(slot, residual=residual)
        if quantity is None:
            return Result(Code.LEG_BELOW_MIN_QUANTITY)
        if self.known_order(client_order_id):
            raise ModelError(f"the kernel reused order id {client_order_id}")
        if slot.side is None:
            raise ModelError(f"slot {slot_id}: open position without a side")
        order_side = OrderSide.SELL if slot.side is Side.LONG else OrderSide.BUY
        leg = None if residual else slot.next_exit_leg
        slot.order = Order(client_order_id, Purpose.EXIT, order_side, order_type, quantity, exit_leg=leg)
        slot.last_intent_id = intent_id
        self.live[client_order_id] = slot_id
        self._move(slot, SlotState.EXIT_PENDING)
        placement = Placement(
            client_order_id, Purpose.EXIT, order_side, slot.side, order_type, quantity, limit_price, reduce_only=True
        )
        return Result(Code.OK, placement=placement)

    def cancel(self, slot_id: int, intent_id: str, *, purpose: Purpose | None) -> Result:
        """CANCEL of the slot's working order (``purpose`` None: whatever its purpose)."""
        slot = self.slots[slot_id]
        refused = self._intent_guard(slot, intent_id)
        if refused is not None:
            return Result(refused)
        order = slot.order
        missing = {
            None: Code.NO_ACTIVE_ORDER,
            Purpose.ENTRY: Code.NO_ACTIVE_ENTRY_ORDER,
            Purpose.EXIT: Code.NO_ACTIVE_EXIT_ORDER,
        }[purpose]
        if order is None or (purpose is not None and order.purpose is not purpose):
            return Result(missing)
        if order.cancel_requested:
            return Result(Code.CANCEL_ALREADY_PENDING)
        order.cancel_requested = True
        slot.last_intent_id = intent_id
        self._move(slot, SlotState.ENTRY_CANCELLING if order.purpose is Purpose.ENTRY else SlotState.EXIT_CANCELLING)
        return Result(Code.OK, commands=((CommandKind.CANCEL, order.client_order_id),))

    # ------------------------------------------------------------------ venue events

    def venue_event(self, event: VenueEvent) -> Result:
        with _exact():
            if event.client_order_id in self.retired:
                return self._retired_event(self.retired[event.client_order_id], event)
            slot_id = self.live.get(event.client_order_id)
            if slot_id is None:
                return Result(Code.UNKNOWN_ORDER, anomalies=frozenset({Anomaly.UNKNOWN_ORDER}))
            slot = self.slots[slot_id]
            order = slot.order
            if order is None or order.client_order_id != event.client_order_id:
                raise ModelError(f"model index points {event.client_order_id} at slot {slot_id} without it")
            # venue_event.proto: the symbol must match the order when set; an event naming
            # another venue order id than the order's contradicts it.
            wrong_symbol = event.symbol is not None and event.symbol != self.instrument.symbol
            wrong_venue_id = order.venue_order_id is not None and event.venue_order_id not in {
                None,
                order.venue_order_id,
            }
            if wrong_symbol or wrong_venue_id:
                return Result(Code.ORDER_MISMATCH, anomalies=frozenset({Anomaly.ORDER_MISMATCH}))
            if event.event_id in order.seen_event_ids:
                return Result(Code.DUPLICATE_EVENT, anomalies=frozenset({Anomaly.DUPLICATE_EVENT}))
            handlers: dict[EventKind, Callable[[Slot, Order, VenueEvent], Result]] = {
                EventKind.ORDER_ACCEPTED: self._accepted,
                EventKind.ORDER_REJECTED: self._rejected,
                EventKind.PARTIAL_FILL: self._fill,
                EventKind.FILL: self._fill,
                EventKind.CANCELLED: self._cancelled,
                EventKind.EXPIRED: self._cancelled,
                EventKind.CANCEL_REJECTED: self._cancel_rejected,
                EventKind.UNKNOWN: self._unknown_status,
            }
            return handlers[event.kind](slot, order, event)

    def _retired_event(self, retired: RetiredOrder, event: VenueEvent) -> Result:
        if event.event_id in retired.seen_event_ids:
            return Result(Code.DUPLICATE_EVENT, anomalies=frozenset({Anomaly.DUPLICATE_EVENT}))
        if event.kind in FILL_KINDS:
            slot = self.slots[retired.slot_id]
            trade_live = slot.trade_id == retired.trade_id and slot.state not in FREE_STATES
            if trade_live:
                return Result(Code.FILL_AFTER_TERMINAL, anomalies=frozenset({Anomaly.FILL_AFTER_TERMINAL}))
            return Result(Code.LATE_FILL, anomalies=frozenset({Anomaly.LATE_FILL}))
        return Result(Code.STALE_EVENT, anomalies=frozenset({Anomaly.STALE_EVENT}))

    def _note(self, order: Order, event: VenueEvent) -> None:
        order.seen_event_ids.add(event.event_id)
        if order.venue_order_id is None and event.venue_order_id is not None:
            order.venue_order_id = event.venue_order_id

    def _accepted(self, slot: Slot, order: Order, event: VenueEvent) -> Result:
        if order.status is not OrderStatus.PENDING_NEW:
            # outcome.proto (ANOMALY_KIND_STALE_EVENT): a late ack teaches nothing and is
            # STALE_EVENT, unless it carries a venue order id the order does not have yet,
            # which is recorded.
            if order.venue_order_id is None and event.venue_order_id is not None:
                self._note(order, event)
                return Result(Code.OK)
            return Result(Code.STALE_EVENT, anomalies=frozenset({Anomaly.STALE_EVENT}))
        self._note(order, event)
        order.status = OrderStatus.ACCEPTED
        if slot.state is SlotState.ENTRY_PENDING:
            self._move(slot, SlotState.ENTRY_WORKING)
        elif slot.state is SlotState.EXIT_PENDING:
            self._move(slot, SlotState.EXIT_WORKING)
        return Result(Code.OK)

    def _rejected(self, slot: Slot, order: Order, event: VenueEvent) -> Result:
        if order.filled > ZERO or order.status not in {OrderStatus.PENDING_NEW, OrderStatus.ACCEPTED}:
            return Result(Code.STATE_CONFLICT, anomalies=frozenset({Anomaly.STATE_CONFLICT}))
        self._note(order, event)
        order.status = OrderStatus.REJECTED
        self._finish(slot, order)
        return Result(Code.OK)

    def _fill(self, slot: Slot, order: Order, event: VenueEvent) -> Result:
        if event.quantity is None or event.price is None:
            raise ModelError("a fill needs a quantity and a price")
        applied = min(event.quantity, order.remaining)
        notional = applied * event.price
        ledger: list[tuple[LedgerKind, Decimal]] = []
        self._note(order, event)
        order.filled += applied
        if order.purpose is Purpose.ENTRY:
            slot.position += applied
            slot.entry_quantity += applied
            slot.entry_notional += notional
            slot.cost_basis += notional
        else:
            # Cost released pro rata to the quantity exited; all of it when the position closes.
            if applied >= slot.position:
                released = slot.cost_basis
            else:
                with localcontext(_DIVIDE):
                    released = (slot.cost_basis * applied / slot.position).quantize(self.pnl_quantum)
            gross = released - notional if slot.side is Side.SHORT else notional - released
            slot.position -= applied
            slot.cost_basis -= released
            slot.exit_quantity += applied
            slot.exit_notional += notional
            slot.realized_pnl += gross
            slot.leg_filled += applied
            self.account.realized_pnl += gross
            self.account.capital += gross
            ledger.append((LedgerKind.REALIZED_PNL, gross))
        slot.fees += event.fee
        self.account.fees += event.fee
        self.account.capital -= event.fee
        ledger.append((LedgerKind.FEE, -event.fee))
        anomalies = frozenset({Anomaly.OVERFILL}) if event.quantity > applied else frozenset()
        nonzero = tuple((kind, amount) for kind, amount in ledger if amount != ZERO)
        # FILL: the venue reports the order FILLED, so it is over once its fills are in
        # (the test never reports cumulative quantities beyond the fills it sends).
        if order.filled >= order.quantity or event.kind is EventKind.FILL:
            order.status = OrderStatus.FILLED
            self._finish(slot, order)
            return Result(Code.OK, ledger=nonzero, anomalies=anomalies)
        order.status = OrderStatus.PARTIALLY_FILLED
        if slot.state is SlotState.ENTRY_PENDING:
            self._move(slot, SlotState.ENTRY_WORKING)
        elif slot.state is SlotState.EXIT_PENDING:
            self._move(slot, SlotState.EXIT_WORKING)
        return Result(Code.OK, ledger=nonzero, anomalies=anomalies)

    def _cancelled(self, slot: Slot, order: Order, event: VenueEvent) -> Result:
        """CANCELLED or EXPIRED: over at the venue with ``cumulative`` filled."""
        if event.cumulative != order.filled:
            raise ModelError("the model covers CANCELLED/EXPIRED with cumulative == filled only")
        self._note(order, event)
        order.status = OrderStatus.CANCELLED if event.kind is EventKind.CANCELLED else OrderStatus.EXPIRED
        order.cancel_requested = False
        self._finish(slot, order)
        return Result(Code.OK)

    def _cancel_rejected(self, slot: Slot, order: Order, event: VenueEvent) -> Result:
        if not order.cancel_requested:
            return Result(Code.STALE_EVENT, anomalies=frozenset({Anomaly.STALE_EVENT}))
        self._note(order, event)
        order.cancel_requested = False
        pending = order.status is OrderStatus.PENDING_NEW
        if order.purpose is Purpose.ENTRY:
            self._move(slot, SlotState.ENTRY_PENDING if pending else SlotState.ENTRY_WORKING)
        else:
            self._move(slot, SlotState.EXIT_PENDING if pending else SlotState.EXIT_WORKING)
        # Is the order still working or already done? Ask the venue.
        return Result(Code.OK, commands=((CommandKind.QUERY, order.client_order_id),))

    def _unknown_status(self, slot: Slot, order: Order, event: VenueEvent) -> Result:
        """venue_event.proto (VENUE_EVENT_KIND_UNKNOWN): nothing is assumed about the order.

        The event id is remembered (a repeat is a duplicate) and nothing else changes: not the
        slot's state, not the order's status, fills or venue id. An anomaly and a QueryOrder.
        """
        del slot
        order.seen_event_ids.add(event.event_id)
        return Result(
            Code.OK,
            commands=((CommandKind.QUERY_UNKNOWN_STATUS, order.client_order_id),),
            anomalies=frozenset({Anomaly.UNKNOWN_STATUS}),
        )

    def _finish(self, slot: Slot, order: Order) -> None:
        """The order is over at the venue and all its fills are in: retire it, settle the slot."""
        del self.live[order.client_order_id]
        self.retired[order.client_order_id] = RetiredOrder(
            order.client_order_id, slot.slot_id, slot.trade_id, frozenset(order.seen_event_ids)
        )
        slot.order = None
        if order.purpose is Purpose.EXIT and order.exit_leg == slot.next_exit_leg and order.filled >= order.quantity:
            # The leg is done: the next EXIT works the next leg.
            slot.next_exit_leg += 1
            slot.leg_filled = ZERO
        if slot.position > ZERO:
            self._move(slot, SlotState.POSITION_OPEN)
        elif order.purpose is Purpose.ENTRY:
            # The entry ended with no fill: the trade never existed.
            self._move(slot, SlotState.IDLE)
            slot.clear_trade()
        else:
            self._move(slot, SlotState.CLOSED)
            self.account.trades_closed += 1

    # ------------------------------------------------------------------ other inputs

    def mark_price(self, price: Decimal) -> Result:
        self.mark = price
        return Result(Code.OK)

    def _move(self, slot: Slot, to: SlotState) -> None:
        was_active = slot.state not in FREE_STATES
        slot.state = to
        is_active = to not in FREE_STATES
        self.account.active_slots += int(is_active) - int(was_active)
