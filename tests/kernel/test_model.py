"""FSM model check: the real kernel, driven through the binding, against ``tests/kernel/model.py``.

A Hypothesis state machine sends valid inputs to a 3-slot kernel trading BTC-USDT (intents
a policy could send, venue events a venue could send about the kernel's own orders, marks,
timers, and repeats of all of them) and after every one asserts that

1. ``accepted`` is exactly ``code == DIAGNOSTIC_CODE_OK``;
2. the kernel's diagnostic code is the one the reference model predicts;
3. after an accepted input the post-state (``kernel.view``) matches the model exactly, as
   Decimals, and so do the commands, transitions, ledger entries and changed slots;
4. a rejected input changes nothing (state hash, sequence) and emits nothing;
5. the kernel's invariants hold, capital is conserved exactly, every position is in
   [0, entry fills], and a CLOSED slot never changes until a new ENTER.

A snapshot/restore rule swaps the kernel for ``Kernel.restore(kernel.snapshot())`` mid-run
and the run goes on with the restored kernel.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from typing import TypeAlias

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

import pink_kernel
from services.common.proto import (
    account_pb2,
    command_pb2,
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
from tests.kernel import model as m
from tests.kernel.helpers import (
    BASE_TIME_NS,
    BTC,
    ETH,
    SETTLEMENT_ASSET,
    dec,
    default_config,
    enter,
    instrument_update,
    kernel_input,
    mark_price,
    new_kernel,
    num,
    step,
    timestamp,
)

SECOND = 1_000_000_000
OK = outcome_pb2.DIAGNOSTIC_CODE_OK
SLOTS = 3
ACTIVE_SLOT_LIMIT = 2
INITIAL_CAPITAL = Decimal("10000")
PNL_SCALE = 10
STEP = Decimal("0.001")
INSTRUMENT = m.Instrument(BTC, quantity_step=STEP, price_tick=Decimal("0.1"), min_quantity=Decimal("0.001"))
# max_query_backoff of the config: a timer this much after the last input finds every deadline due.
MAX_QUERY_BACKOFF_S = 300

SIZES = [Decimal(v) for v in ("0.001", "0.002", "0.003", "0.006", "0.007", "0.01", "0.017")]
LEGS: list[tuple[Decimal, ...]] = [
    tuple(Decimal(r) for r in legs)
    for legs in (
        (),
        ("1",),
        ("0.5", "0.5"),
        ("0.3", "0.7"),
        ("0.25", "0.25", "0.5"),
        ("0.1", "0.9"),
        ("0.2", "0.2", "0.2", "0.2", "0.2"),
    )
]
PRICES = [Decimal(v) for v in ("49000", "49999.9", "50000", "50000.1", "50123.4", "51000")]
FEES = [Decimal(v) for v in ("0", "0.01", "0.0123", "-0.003", "0.2")]

slot_ids = st.integers(min_value=0, max_value=SLOTS - 1)
picks = st.integers(min_value=0, max_value=SLOTS - 1)
limit_prices = st.none() | st.sampled_from(PRICES)
sides = st.sampled_from([m.Side.LONG, m.Side.SHORT])
sizes = st.sampled_from(SIZES)
legs = st.sampled_from(LEGS)
purposes = st.sampled_from([None, m.Purpose.ENTRY, m.Purpose.EXIT])

# Codes the run must produce at least once, or the check is not exploring what it claims to.
EXPECTED_CODES = frozenset(m.Code)
CODES_SEEN: Counter[str] = Counter()

Replay: TypeAlias = Callable[[str, str], m.Result]


def model_config() -> snapshot_pb2.KernelConfig:
    config = default_config()
    config.slot_count = SLOTS
    config.initial_control.active_slot_limit = ACTIVE_SLOT_LIMIT
    config.initial_capital.CopyFrom(dec(INITIAL_CAPITAL))
    config.pnl_scale = PNL_SCALE
    config.max_query_backoff.seconds = MAX_QUERY_BACKOFF_S
    return config


def new_model() -> m.KernelModel:
    return m.KernelModel(
        slot_count=SLOTS,
        initial_capital=INITIAL_CAPITAL,
        instrument=INSTRUMENT,
        active_slot_limit=ACTIVE_SLOT_LIMIT,
        pnl_scale=PNL_SCALE,
    )


# ----------------------------------------------------------------------------- proto <-> model


def enum_name(name: str, prefix: str) -> str:
    """``SLOT_STATE_IDLE`` -> ``IDLE``."""
    assert name.startswith(prefix), (name, prefix)
    return name.removeprefix(prefix)


def code_name(code: outcome_pb2.DiagnosticCode.ValueType) -> str:
    return enum_name(outcome_pb2.DiagnosticCode.Name(code), "DIAGNOSTIC_CODE_")


def opt(value: types_pb2.Decimal | None) -> Decimal | None:
    return None if value is None else num(value)


def order_type_pb(order_type: m.OrderType) -> types_pb2.OrderType.ValueType:
    return types_pb2.OrderType.Value(f"ORDER_TYPE_{order_type.name}")


def side_pb(side: m.Side) -> types_pb2.Side.ValueType:
    return types_pb2.Side.Value(f"SIDE_{side.name}")


def event_pb(event: m.VenueEvent, time_ns: int) -> venue_event_pb2.VenueEvent:
    message = venue_event_pb2.VenueEvent(
        kind=venue_event_pb2.VenueEventKind.Value(f"VENUE_EVENT_KIND_{event.kind.name}"),
        client_order_id=event.client_order_id,
        venue_event_id=event.event_id,
        exchange_time=timestamp(time_ns),
        # The venue service's clock (venue_event.proto): the kernel judges without it.
        receive_time=timestamp(time_ns + 3_000_000),
    )
    if event.venue_order_id is not None:
        message.venue_order_id = event.venue_order_id
    if event.symbol is not None:
        message.symbol = event.symbol
    if event.quantity is not None:
        message.last_quantity.CopyFrom(dec(event.quantity))
    if event.price is not None:
        message.last_price.CopyFrom(dec(event.price))
    if event.cumulative is not None:
        message.cumulative_quantity.CopyFrom(dec(event.cumulative))
    if event.kind in m.FILL_KINDS:
        message.fee.CopyFrom(dec(event.fee))
        message.fee_asset = SETTLEMENT_ASSET
    if event.kind in {m.EventKind.ORDER_REJECTED, m.EventKind.CANCEL_REJECTED}:
        message.reason = "refused by the venue"
    if event.kind is m.EventKind.UNKNOWN:
        message.reason = "status 'SOMETHING_NEW'"
    return message


def model_slot(model: m.KernelModel, slot: m.Slot) -> dict[str, object]:
    """The slot fields the model predicts, named like ``pink.v1.Slot``."""
    order = slot.order
    return {
        "state": slot.state.name,
        "trade_id": slot.trade_id or "",
        "side": slot.side.name if slot.side else "UNSPECIFIED",
        "exit_leg_ratios": slot.exit_leg_ratios if slot.trade_id else (),
        "next_exit_leg": slot.next_exit_leg,
        "leg_filled_quantity": slot.leg_filled,
        "position_size": slot.position,
        "entry_filled_quantity": slot.entry_quantity,
        "entry_notional": slot.entry_notional,
        "cost_basis": slot.cost_basis,
        "exit_filled_quantity": slot.exit_quantity,
        "exit_notional": slot.exit_notional,
        "realized_pnl": slot.realized_pnl,
        "fees": slot.fees,
        "net_pnl": slot.net_pnl,
        "unrealized_pnl": model.unrealized(slot),
        "last_intent_id": slot.last_intent_id or "",
        "active_order": None
        if order is None
        else {
            "client_order_id": order.client_order_id,
            "venue_order_id": order.venue_order_id or "",
            "purpose": order.purpose.name,
            "side": order.side.name,
            "order_type": order.order_type.name,
            "quantity": order.quantity,
            "filled_quantity": order.filled,
            "status": order.status.name,
            "cancel_requested": order.cancel_requested,
            "reduce_only": order.purpose is m.Purpose.EXIT,
        },
    }


def kernel_slot(slot: slot_pb2.Slot) -> dict[str, object]:
    """The same fields read from the kernel's view."""
    order = slot.active_order if slot.HasField("active_order") else None
    return {
        "state": enum_name(slot_pb2.SlotState.Name(slot.state), "SLOT_STATE_"),
        "trade_id": slot.trade_id,
        "side": enum_name(types_pb2.Side.Name(slot.side), "SIDE_"),
        # "Empty means one leg of 1" (intent.proto): compare the meaning, not the spelling.
        "exit_leg_ratios": (tuple(num(r) for r in slot.exit_leg_ratios) or (Decimal(1),)) if slot.trade_id else (),
        "next_exit_leg": slot.next_exit_leg,
        "leg_filled_quantity": num(slot.leg_filled_quantity),
        "position_size": num(slot.position_size),
        "entry_filled_quantity": num(slot.entry_filled_quantity),
        "entry_notional": num(slot.entry_notional),
        "cost_basis": num(slot.cost_basis),
        "exit_filled_quantity": num(slot.exit_filled_quantity),
        "exit_notional": num(slot.exit_notional),
        "realized_pnl": num(slot.realized_pnl),
        "fees": num(slot.fees),
        "net_pnl": num(slot.net_pnl),
        "unrealized_pnl": num(slot.unrealized_pnl),
        "last_intent_id": slot.last_intent_id,
        "active_order": None
        if order is None
        else {
            "client_order_id": order.client_order_id,
            "venue_order_id": order.venue_order_id,
            "purpose": enum_name(types_pb2.OrderPurpose.Name(order.purpose), "ORDER_PURPOSE_"),
            "side": enum_name(types_pb2.OrderSide.Name(order.side), "ORDER_SIDE_"),
            "order_type": enum_name(types_pb2.OrderType.Name(order.order_type), "ORDER_TYPE_"),
            "quantity": num(order.quantity),
            "filled_quantity": num(order.filled_quantity),
            "status": enum_name(slot_pb2.OrderStatus.Name(order.status), "ORDER_STATUS_"),
            "cancel_requested": order.cancel_requested,
            "reduce_only": order.reduce_only,
        },
    }


def model_account(model: m.KernelModel) -> dict[str, object]:
    a = model.account
    return {
        "settlement_asset": SETTLEMENT_ASSET,
        "initial_capital": a.initial_capital,
        "capital": a.capital,
        "realized_pnl": a.realized_pnl,
        "fees": a.fees,
        "funding": a.funding,
        "adjustments": a.adjustments,
        "unrealized_pnl": model.account_unrealized(),
        "equity": model.equity(),
        "trades_closed": a.trades_closed,
        "active_slots": a.active_slots,
    }


def kernel_account(a: account_pb2.Account) -> dict[str, object]:
    return {
        "settlement_asset": a.settlement_asset,
        "initial_capital": num(a.initial_capital),
        "capital": num(a.capital),
        "realized_pnl": num(a.realized_pnl),
        "fees": num(a.fees),
        "funding": num(a.funding),
        "adjustments": num(a.adjustments),
        "unrealized_pnl": num(a.unrealized_pnl),
        "equity": num(a.equity),
        "trades_closed": a.trades_closed,
        "active_slots": a.active_slots,
    }


def without_valuation(slot: slot_pb2.Slot) -> slot_pb2.Slot:
    """The slot without the fields a mark price changes (a valuation, not state)."""
    state = slot_pb2.Slot()
    state.CopyFrom(slot)
    state.ClearField("mark_price")
    state.ClearField("unrealized_pnl")
    return state


def full_view(kernel: pink_kernel.Kernel) -> view_pb2.KernelView:
    return view_pb2.KernelView.FromString(kernel.view(list(range(SLOTS)), account=True))


def commands_of(outcome: outcome_pb2.Outcome, kind: str) -> list[command_pb2.Command]:
    return [c for c in outcome.commands if c.WhichOneof("command") == kind]


# ----------------------------------------------------------------------------- the machine


class KernelModelMachine(RuleBasedStateMachine):
    """Random valid inputs to a kernel and the reference model in lockstep."""

    def __init__(self) -> None:
        super().__init__()
        self.kernel = new_kernel(model_config())
        self.model = new_model()
        self.now_ns = BASE_TIME_NS
        self.counter = 0
        self.last_event: tuple[m.VenueEvent, venue_event_pb2.VenueEvent] | None = None
        # The last accepted intent of each slot, and how to ask the model about it again.
        self.last_intents: dict[int, tuple[intent_pb2.Intent, Replay]] = {}
        for payload in (instrument_update(), mark_price(BTC, "50000")):
            outcome = step(self.kernel, kernel_input(payload, time_ns=self.now_ns))
            assert outcome.accepted, outcome.message
        self.model.mark_price(Decimal("50000"))

    def _next(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}-{self.counter}"

    # ------------------------------------------------------------------ stepping and checking

    def _step(self, payload: Payload, *, advance_s: int = 1) -> tuple[outcome_pb2.Outcome, view_pb2.KernelView]:
        """Steps ``payload`` ``advance_s`` after the last input; checks what holds for every outcome."""
        self.now_ns += advance_s * SECOND
        before_view = full_view(self.kernel)
        before_hash = self.kernel.state_hash()
        before_sequence = self.kernel.last_sequence
        outcome = step(self.kernel, kernel_input(payload, time_ns=self.now_ns))
        name = code_name(outcome.code)
        CODES_SEEN[name] += 1
        if currently_in_test_context():
            event(f"code {name}")
        assert outcome.accepted == (outcome.code == OK), outcome
        if outcome.accepted:
            assert outcome.sequence == before_sequence + 1
            assert self.kernel.last_sequence == before_sequence + 1
        else:
            assert outcome.sequence == before_sequence
            assert self.kernel.last_sequence == before_sequence
            assert self.kernel.state_hash() == before_hash, f"rejected {name} changed the state"
            assert not outcome.commands
            assert not outcome.transitions
            assert not outcome.ledger_entries
            assert not outcome.changed_slots
        return outcome, before_view

    def _check(
        self,
        outcome: outcome_pb2.Outcome,
        result: m.Result,
        before: m.KernelModel,
        before_view: view_pb2.KernelView,
        *,
        entered_slot: int | None = None,
    ) -> None:
        """Compares an outcome with the model's prediction ``result`` (``before``: the model before)."""
        assert code_name(outcome.code) == result.code.name, (
            f"kernel {code_name(outcome.code)} ({outcome.message}), model {result.code.name}"
        )
        anomalies = {enum_name(outcome_pb2.AnomalyKind.Name(a.kind), "ANOMALY_KIND_") for a in outcome.anomalies}
        assert {a.name for a in result.anomalies} <= anomalies, (result.anomalies, anomalies)
        if not outcome.accepted:
            return
        self._check_commands(outcome, result)
        self._check_ledger(outcome, result, before)
        self._check_transitions(outcome, before)
        model_changed = {i for i in range(SLOTS) if before.slots[i] != self.model.slots[i]}
        assert set(outcome.changed_slots) == model_changed, (list(outcome.changed_slots), model_changed)
        if before.account != self.model.account:
            assert outcome.account_changed
        # Terminal slots are immutable until a new ENTER starts a new trade on them.
        after_view = full_view(self.kernel)
        for old, new in zip(before_view.slots, after_view.slots, strict=True):
            if old.state == slot_pb2.SLOT_STATE_CLOSED and old.slot_id != entered_slot:
                assert without_valuation(new) == without_valuation(old), f"CLOSED slot {old.slot_id} changed"
        # The post-state of what the outcome says changed.
        post = view_pb2.KernelView.FromString(
            self.kernel.view(list(outcome.changed_slots), account=outcome.account_changed)
        )
        for slot in post.slots:
            assert kernel_slot(slot) == model_slot(self.model, self.model.slots[slot.slot_id])
        if outcome.account_changed:
            assert kernel_account(post.account) == model_account(self.model)

    def _check_commands(self, outcome: outcome_pb2.Outcome, result: m.Result) -> None:
        places = commands_of(outcome, "place_order")
        if result.placement is None:
            assert not places
        else:
            (command,) = places
            place = command.place_order
            expected = result.placement
            assert command.idempotency_key == place.client_order_id == expected.client_order_id
            assert place.symbol == BTC
            assert enum_name(types_pb2.OrderPurpose.Name(place.purpose), "ORDER_PURPOSE_") == expected.purpose.name
            assert enum_name(types_pb2.OrderSide.Name(place.side), "ORDER_SIDE_") == expected.side.name
            assert place.position_side == side_pb(expected.position_side)
            assert place.order_type == order_type_pb(expected.order_type)
            assert num(place.quantity) == expected.quantity
            assert opt(place.limit_price if place.HasField("limit_price") else None) == expected.limit_price
            assert place.reduce_only == expected.reduce_only
            slot = self.model.slots[command.slot_id]
            assert slot.order is not None
            assert slot.order.client_order_id == place.client_order_id
            assert command.trade_id == slot.trade_id
        others = [
            (c.WhichOneof("command"), c.cancel_order.client_order_id or c.query_order.client_order_id)
            for c in outcome.commands
            if c.WhichOneof("command") != "place_order"
        ]
        expected_others = [
            ("cancel_order" if kind is m.CommandKind.CANCEL else "query_order", cid) for kind, cid in result.commands
        ]
        assert others == expected_others
        reasons = [c.query_order.reason for c in commands_of(outcome, "query_order")]
        expected_reasons = [
            command_pb2.QUERY_REASON_UNKNOWN_STATUS
            if kind is m.CommandKind.QUERY_UNKNOWN_STATUS
            else command_pb2.QUERY_REASON_CANCEL_REJECTED
            for kind, _ in result.commands
            if kind is not m.CommandKind.CANCEL
        ]
        assert reasons == expected_reasons

    def _check_ledger(self, outcome: outcome_pb2.Outcome, result: m.Result, before: m.KernelModel) -> None:
        entries = list(outcome.ledger_entries)
        capital = before.account.capital
        for entry in entries:
            assert num(entry.capital_before) == capital
            capital = num(entry.capital_before) + num(entry.amount)
            assert num(entry.capital_after) == capital
            assert entry.input_sequence == outcome.sequence
        assert capital == self.model.account.capital
        booked = [
            (enum_name(account_pb2.LedgerEntryKind.Name(e.kind), "LEDGER_ENTRY_KIND_"), num(e.amount))
            for e in entries
            if num(e.amount) != 0
        ]
        assert booked == [(kind.name, amount) for kind, amount in result.ledger]

    def _check_transitions(self, outcome: outcome_pb2.Outcome, before: m.KernelModel) -> None:
        for slot_id in range(SLOTS):
            chain = [t for t in outcome.transitions if t.slot_id == slot_id]
            old = before.slots[slot_id].state.name
            new = self.model.slots[slot_id].state.name
            if not chain:
                assert old == new, f"slot {slot_id}: {old} -> {new} without a transition"
                continue
            state = old
            for transition in chain:
                assert enum_name(slot_pb2.SlotState.Name(transition.from_state), "SLOT_STATE_") == state
                state = enum_name(slot_pb2.SlotState.Name(transition.to_state), "SLOT_STATE_")
                assert transition.input_sequence == outcome.sequence
            assert state == new

    def _intent(
        self, message: intent_pb2.Intent, replay: Replay, *, entered_slot: int | None = None
    ) -> outcome_pb2.Outcome:
        """Steps an intent; ``replay(trade_id, client_order_id)`` asks the model about it."""
        before = self.model.copy()
        outcome, before_view = self._step(message)
        places = commands_of(outcome, "place_order")
        trade_id, cid = (places[0].trade_id, places[0].place_order.client_order_id) if len(places) == 1 else ("", "")
        result = replay(trade_id, cid)
        self._check(outcome, result, before, before_view, entered_slot=entered_slot if outcome.accepted else None)
        if outcome.accepted:
            self.last_intents[message.slot_id] = (message, replay)
        return outcome

    def _venue(self, venue_event: m.VenueEvent, message: venue_event_pb2.VenueEvent | None = None) -> None:
        """Steps a venue event (``message``: its exact bytes-to-be, for a redelivery)."""
        message = message or event_pb(venue_event, self.now_ns + SECOND)
        before = self.model.copy()
        outcome, before_view = self._step(message)
        result = self.model.venue_event(venue_event)
        self.last_event = (venue_event, message)
        self._check(outcome, result, before, before_view)

    def _live(self, pick: int, *, prefer: Callable[[m.Order], bool] | None = None) -> m.Order:
        """A live order; one that fits ``prefer`` when there is one."""
        orders = [s.order for s in self.model.live_slots() if s.order is not None]
        preferred = [o for o in orders if prefer is not None and prefer(o)]
        candidates = preferred or orders
        return candidates[pick % len(candidates)]

    def has_live_order(self) -> bool:
        return bool(self.model.live_slots())

    def has_trade(self) -> bool:
        return any(s.state is not m.SlotState.IDLE for s in self.model.slots)

    # ------------------------------------------------------------------ intents

    def _enter(self, slot: int, side: m.Side, size: Decimal, limit: Decimal | None, legs: tuple[Decimal, ...]) -> None:
        order_type = m.OrderType.MARKET if limit is None else m.OrderType.LIMIT
        message = enter(
            self._next("in"),
            slot,
            side=side_pb(side),
            size=size,
            leverage="10",
            limit_price=limit,
            time_in_force=types_pb2.TIME_IN_FORCE_UNSPECIFIED if limit is None else types_pb2.TIME_IN_FORCE_GTC,
            exit_leg_ratios=legs,
        )
        intent_id = message.intent_id

        def replay(trade_id: str, cid: str) -> m.Result:
            return self.model.enter(
                slot,
                intent_id,
                side=side,
                order_type=order_type,
                size=size,
                limit_price=limit,
                exit_leg_ratios=legs,
                trade_id=trade_id,
                client_order_id=cid,
            )

        self._intent(message, replay, entered_slot=slot)

    def _exit(self, slot: int, residual: bool, limit: Decimal | None) -> None:
        order_type = m.OrderType.MARKET if limit is None else m.OrderType.LIMIT
        message = intent_pb2.Intent(
            intent_id=self._next("out"),
            action=intent_pb2.INTENT_ACTION_EXIT_RESIDUAL if residual else intent_pb2.INTENT_ACTION_EXIT,
            slot_id=slot,
            order_type=order_type_pb(order_type),
        )
        if limit is not None:
            message.limit_price.CopyFrom(dec(limit))
            message.time_in_force = types_pb2.TIME_IN_FORCE_GTC
        intent_id = message.intent_id

        def replay(_trade_id: str, cid: str) -> m.Result:
            return self.model.exit(
                slot, intent_id, residual=residual, order_type=order_type, limit_price=limit, client_order_id=cid
            )

        self._intent(message, replay)

    def _cancel(self, slot: int, purpose: m.Purpose | None) -> None:
        message = intent_pb2.Intent(
            intent_id=self._next("cx"),
            action=intent_pb2.INTENT_ACTION_CANCEL,
            slot_id=slot,
            cancel_purpose=types_pb2.OrderPurpose.Value(f"ORDER_PURPOSE_{purpose.name if purpose else 'UNSPECIFIED'}"),
        )
        intent_id = message.intent_id

        def replay(_trade_id: str, _cid: str) -> m.Result:
            return self.model.cancel(slot, intent_id, purpose=purpose)

        self._intent(message, replay)

    def _slots_where(self, fits: Callable[[m.Slot], bool]) -> list[int]:
        return [s.slot_id for s in self.model.slots if fits(s)]

    @rule(slot=slot_ids, side=sides, size=sizes, limit=limit_prices, legs=legs)
    def enter(self, slot: int, side: m.Side, size: Decimal, limit: Decimal | None, legs: tuple[Decimal, ...]) -> None:
        """ENTER on any slot (busy ones too)."""
        self._enter(slot, side, size, limit, legs)

    @precondition(
        lambda self: (
            self.model.account.active_slots < ACTIVE_SLOT_LIMIT
            and any(s.state in m.FREE_STATES for s in self.model.slots)
        )
    )
    @rule(pick=picks, side=sides, size=sizes, limit=limit_prices, legs=legs)
    def enter_free_slot(
        self, pick: int, side: m.Side, size: Decimal, limit: Decimal | None, legs: tuple[Decimal, ...]
    ) -> None:
        free = self._slots_where(lambda s: s.state in m.FREE_STATES)
        self._enter(free[pick % len(free)], side, size, limit, legs)

    @precondition(lambda self: self.has_trade())
    @rule(slot=slot_ids, residual=st.booleans(), limit=limit_prices)
    def exit(self, slot: int, residual: bool, limit: Decimal | None) -> None:
        """EXIT or EXIT_RESIDUAL on any slot."""
        self._exit(slot, residual, limit)

    @precondition(lambda self: any(s.state is m.SlotState.POSITION_OPEN for s in self.model.slots))
    @rule(pick=picks, residual=st.sampled_from([False, False, True]), limit=limit_prices)
    def exit_open_position(self, pick: int, residual: bool, limit: Decimal | None) -> None:
        open_slots = self._slots_where(lambda s: s.state is m.SlotState.POSITION_OPEN)
        self._exit(open_slots[pick % len(open_slots)], residual, limit)

    @precondition(lambda self: self.has_trade())
    @rule(slot=slot_ids, purpose=purposes)
    def cancel(self, slot: int, purpose: m.Purpose | None) -> None:
        """CANCEL on any slot, of either purpose."""
        self._cancel(slot, purpose)

    @precondition(has_live_order)
    @rule(pick=picks, purpose=purposes)
    def cancel_working_order(self, pick: int, purpose: m.Purpose | None) -> None:
        order = self._live(pick)
        self._cancel(self.model.live[order.client_order_id], purpose)

    @precondition(lambda self: bool(self.last_intents))
    @rule(pick=picks)
    def duplicate_intent(self, pick: int) -> None:
        """The slot's last applied intent, sent again."""
        slots = sorted(self.last_intents)
        message, replay = self.last_intents[slots[pick % len(slots)]]
        self._intent(message, replay)

    # ------------------------------------------------------------------ venue events

    @precondition(has_live_order)
    @rule(pick=picks, with_venue_id=st.booleans())
    def venue_ack(self, pick: int, with_venue_id: bool) -> None:
        order = self._live(pick)
        venue_id = f"v-{order.client_order_id}" if with_venue_id else None
        self._venue(m.VenueEvent(m.EventKind.ORDER_ACCEPTED, order.client_order_id, self._next("e"), venue_id))

    @precondition(has_live_order)
    @rule(
        pick=picks,
        aim=st.booleans(),
        kind=st.sampled_from([m.EventKind.ORDER_REJECTED, m.EventKind.CANCELLED, m.EventKind.EXPIRED]),
    )
    def venue_ends_order(self, pick: int, aim: bool, kind: m.EventKind) -> None:
        """ORDER_REJECTED, or CANCELLED / EXPIRED with cumulative = the fills applied."""
        if kind is m.EventKind.ORDER_REJECTED:
            # A reject after a fill contradicts the order (STATE_CONFLICT): aim for those too.
            order = self._live(pick, prefer=(lambda o: o.filled > 0) if aim else None)
        else:
            order = self._live(pick, prefer=(lambda o: o.cancel_requested) if aim else None)
        cumulative = None if kind is m.EventKind.ORDER_REJECTED else order.filled
        self._venue(m.VenueEvent(kind, order.client_order_id, self._next("e"), cumulative=cumulative))

    @precondition(has_live_order)
    @rule(
        pick=picks,
        units=st.integers(min_value=1, max_value=4),
        price=st.sampled_from(PRICES),
        fee=st.sampled_from(FEES),
    )
    def partial_fill(self, pick: int, units: int, price: Decimal, fee: Decimal) -> None:
        """A PARTIAL_FILL of at most the remaining quantity."""
        order = self._live(pick)
        quantity = min(units * STEP, order.remaining)
        self._venue(
            m.VenueEvent(
                m.EventKind.PARTIAL_FILL,
                order.client_order_id,
                self._next("e"),
                quantity=quantity,
                price=price,
                cumulative=order.filled + quantity,
                fee=fee,
            )
        )

    @precondition(has_live_order)
    @rule(
        pick=picks,
        price=st.sampled_from(PRICES),
        fee=st.sampled_from(FEES),
        extra=st.sampled_from([0, 0, 0, 1, 3]),
    )
    def full_fill(self, pick: int, price: Decimal, fee: Decimal, extra: int) -> None:
        """A FILL of the remaining quantity, or beyond it (an overfill: the excess is not booked)."""
        order = self._live(pick)
        quantity = order.remaining + extra * STEP
        self._venue(
            m.VenueEvent(
                m.EventKind.FILL,
                order.client_order_id,
                self._next("e"),
                quantity=quantity,
                price=price,
                cumulative=order.filled + quantity,
                fee=fee,
            )
        )

    @precondition(has_live_order)
    @rule(pick=picks, aim=st.booleans())
    def cancel_rejected(self, pick: int, aim: bool) -> None:
        """CANCEL_REJECTED: stale without a cancel pending, else back to working and a QueryOrder."""
        order = self._live(pick, prefer=(lambda o: o.cancel_requested) if aim else None)
        self._venue(m.VenueEvent(m.EventKind.CANCEL_REJECTED, order.client_order_id, self._next("e")))

    @precondition(has_live_order)
    @rule(pick=picks)
    def unknown_status(self, pick: int) -> None:
        """UNKNOWN: a status the venue service does not know; nothing changes, the order is queried."""
        order = self._live(pick)
        self._venue(m.VenueEvent(m.EventKind.UNKNOWN, order.client_order_id, self._next("e")))

    @precondition(has_live_order)
    @rule(pick=picks, kind=st.sampled_from(list(m.EventKind)), wrong_symbol=st.booleans())
    def mismatched_event(self, pick: int, kind: m.EventKind, wrong_symbol: bool) -> None:
        """An event for a live order naming another symbol, or another venue order id than the order's."""
        order = self._live(pick, prefer=lambda o: o.venue_order_id is not None)
        event = self._any_event(kind, order.client_order_id)
        if wrong_symbol or order.venue_order_id is None:
            event = dataclasses.replace(event, symbol=ETH)
        else:
            event = dataclasses.replace(event, venue_order_id=self._next("v-other"))
        self._venue(event)

    @precondition(lambda self: self.last_event is not None)
    @rule()
    def duplicate_event(self) -> None:
        """The last venue event, delivered again."""
        assert self.last_event is not None
        self._venue(*self.last_event)

    @precondition(lambda self: bool(self.model.retired))
    @rule(pick=st.integers(min_value=0, max_value=50), kind=st.sampled_from(list(m.EventKind)), unknown=st.booleans())
    def stray_event(self, pick: int, kind: m.EventKind, unknown: bool) -> None:
        """An event about an order that is over (stale, late fill, fill after terminal) or was never issued."""
        if unknown:
            self._venue(self._any_event(kind, self._next("pk")))
        else:
            finished = list(self.model.retired)
            self._venue(self._any_event(kind, finished[pick % len(finished)]))

    def _any_event(self, kind: m.EventKind, cid: str) -> m.VenueEvent:
        event_id = self._next("e")
        if kind in m.FILL_KINDS:
            return m.VenueEvent(kind, cid, event_id, quantity=STEP, price=Decimal("50000"), cumulative=STEP)
        if kind in {m.EventKind.CANCELLED, m.EventKind.EXPIRED}:
            return m.VenueEvent(kind, cid, event_id, cumulative=Decimal(0))
        return m.VenueEvent(kind, cid, event_id)

    # ------------------------------------------------------------------ marks, time, snapshots

    @precondition(lambda self: self.has_trade())
    @rule(price=st.sampled_from(PRICES))
    def mark(self, price: Decimal) -> None:
        """A new mark price: slots and account are revalued, nothing else changes."""
        before = self.model.copy()
        outcome, before_view = self._step(mark_price(BTC, price))
        result = self.model.mark_price(price)
        assert outcome.revalued_symbol == BTC
        assert outcome.account_changed
        self._check(outcome, result, before, before_view)

    @precondition(has_live_order)
    @rule(advance_s=st.sampled_from([1, 6, 11, 61, MAX_QUERY_BACKOFF_S + 1]))
    def timer(self, advance_s: int) -> None:
        """Time passes: overdue orders are queried; nothing the model tracks changes."""
        outcome, _ = self._step(kernel_input_pb2.Timer(), advance_s=advance_s)
        assert outcome.accepted, outcome.message
        assert not outcome.transitions
        assert not outcome.ledger_entries
        queried: set[tuple[int, str]] = set()
        for command in outcome.commands:
            assert command.WhichOneof("command") == "query_order"
            assert command.query_order.reason == command_pb2.QUERY_REASON_DEADLINE
            queried.add((command.slot_id, command.query_order.client_order_id))
        waiting = {(s.slot_id, s.order.client_order_id) for s in self.model.live_slots() if s.order is not None}
        assert queried <= waiting
        if advance_s > MAX_QUERY_BACKOFF_S:
            # Every waiting state has a deadline, at most max_query_backoff away: no stuck slot.
            assert queried == waiting
        post = full_view(self.kernel)
        for slot in post.slots:
            assert kernel_slot(slot) == model_slot(self.model, self.model.slots[slot.slot_id])

    @rule()
    def snapshot_and_restore(self) -> None:
        """Continue with ``Kernel.restore(kernel.snapshot())``: indistinguishable from the original."""
        snapshot = self.kernel.snapshot()
        restored = pink_kernel.Kernel.restore(snapshot)
        assert restored.state_hash() == self.kernel.state_hash()
        assert restored.last_sequence == self.kernel.last_sequence
        assert restored.snapshot() == snapshot
        restored.check_invariants()
        self.kernel = restored

    # ------------------------------------------------------------------ after every step

    @invariant()
    def kernel_matches_model(self) -> None:
        self.kernel.check_invariants()
        self.model.check()
        view = full_view(self.kernel)
        assert view.sequence == self.kernel.last_sequence
        assert [s.slot_id for s in view.slots] == list(range(SLOTS))
        for slot in view.slots:
            assert kernel_slot(slot) == model_slot(self.model, self.model.slots[slot.slot_id])
            position = num(slot.position_size)
            assert Decimal(0) <= position <= num(slot.entry_filled_quantity)
        assert kernel_account(view.account) == model_account(self.model)
        a = view.account
        assert num(a.capital) == (
            num(a.initial_capital) + num(a.realized_pnl) - num(a.fees) + num(a.funding) + num(a.adjustments)
        )


KernelModelMachine.TestCase.settings = settings(
    max_examples=120,
    stateful_step_count=80,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def test_the_kernel_follows_the_reference_model() -> None:
    """Runs the machine (settings above) and checks the run reached every code the model predicts."""
    CODES_SEEN.clear()
    run_state_machine_as_test(KernelModelMachine, settings=KernelModelMachine.TestCase.settings)
    missing = {code.name for code in EXPECTED_CODES} - set(CODES_SEEN)
    assert not missing, f"the model check never produced {sorted(missing)}; seen {dict(CODES_SEEN)}"


def test_partial_exits_release_cost_exactly_half_even() -> None:
    """A hand-computed trade through the same machine: cost released by partial exits.

    0.003 long filled 0.001 @ 49000 + 0.002 @ 50000 (cost 149), legs 0.5/0.5. Leg 0 is
    floor(0.0015) = 0.001: it releases 149 / 3 = 49.66666666666... -> 49.6666666667. Leg 1
    (the last) is the remaining 0.002; its first 0.001 releases 99.3333333333 / 2 =
    49.66666666665, a tie at pnl_scale 10 that round-half-even settles at 49.6666666666.
    The close releases the rest, so the trade's PnL is exactly 3 x 51 - 149 = 4.
    """
    machine = KernelModelMachine()
    zero_fee = Decimal(0)

    def view() -> slot_pb2.Slot:
        machine.kernel_matches_model()
        return full_view(machine.kernel).slots[0]

    machine.enter_free_slot(
        pick=0, side=m.Side.LONG, size=Decimal("0.003"), limit=None, legs=(Decimal("0.5"), Decimal("0.5"))
    )
    machine.partial_fill(pick=0, units=1, price=Decimal("49000"), fee=zero_fee)
    machine.full_fill(pick=0, price=Decimal("50000"), fee=zero_fee, extra=0)
    assert (num(view().position_size), num(view().cost_basis)) == (Decimal("0.003"), Decimal("149"))

    machine.exit_open_position(pick=0, residual=False, limit=None)
    assert num(view().active_order.quantity) == Decimal("0.001")
    machine.full_fill(pick=0, price=Decimal("51000"), fee=zero_fee, extra=0)
    slot = view()
    assert (num(slot.cost_basis), num(slot.realized_pnl)) == (Decimal("99.3333333333"), Decimal("1.3333333333"))

    machine.exit_open_position(pick=0, residual=False, limit=None)
    assert num(view().active_order.quantity) == Decimal("0.002")
    machine.partial_fill(pick=0, units=1, price=Decimal("51000"), fee=zero_fee)
    slot = view()
    assert (num(slot.cost_basis), num(slot.realized_pnl)) == (Decimal("49.6666666667"), Decimal("2.6666666667"))

    machine.full_fill(pick=0, price=Decimal("51000"), fee=Decimal("0.2"), extra=0)
    slot = view()
    assert slot.state == slot_pb2.SLOT_STATE_CLOSED
    assert (num(slot.cost_basis), num(slot.realized_pnl), num(slot.net_pnl)) == (
        Decimal(0),
        Decimal(4),
        Decimal("3.8"),
    )
    assert num(full_view(machine.kernel).account.capital) == INITIAL_CAPITAL + Decimal("3.8")


def test_a_late_ack_is_stale_unless_it_teaches_the_venue_order_id() -> None:
    """outcome.proto (ANOMALY_KIND_STALE_EVENT): an ack after a fill teaches nothing new and is
    a STALE_EVENT, unless it carries a venue order id the kernel did not know, which is recorded."""
    kernel = new_kernel(model_config())
    for payload in (instrument_update(), mark_price(BTC, "50000")):
        assert step(kernel, kernel_input(payload)).accepted
    entry = step(kernel, kernel_input(enter("i-1", 0, size="0.002")))
    (command,) = entry.commands
    cid = command.place_order.client_order_id
    partial = m.VenueEvent(m.EventKind.PARTIAL_FILL, cid, "e-1", quantity=STEP, price=Decimal("50000"), cumulative=STEP)
    assert step(kernel, kernel_input(event_pb(partial, BASE_TIME_NS))).accepted
    before = kernel.state_hash()

    stale_ack = m.VenueEvent(m.EventKind.ORDER_ACCEPTED, cid, "e-2")
    outcome = step(kernel, kernel_input(event_pb(stale_ack, BASE_TIME_NS)))
    assert code_name(outcome.code) == "STALE_EVENT", outcome
    assert kernel.state_hash() == before

    teaching_ack = m.VenueEvent(m.EventKind.ORDER_ACCEPTED, cid, "e-3", venue_order_id="v-1")
    outcome = step(kernel, kernel_input(event_pb(teaching_ack, BASE_TIME_NS)))
    assert outcome.accepted, outcome
    assert not outcome.transitions
    assert full_view(kernel).slots[0].active_order.venue_order_id == "v-1"


@pytest.mark.parametrize("purpose", [m.Purpose.ENTRY, m.Purpose.EXIT])
def test_a_cancel_that_overtakes_a_fill_leaves_a_consistent_kernel(purpose: m.Purpose) -> None:
    """A cancel/fill race (ACCEPTANCE.md "venue faults"): the venue reports CANCELLED with one more
    fill than the kernel has seen, then the missing fill arrives.

    venue_event.proto / slot.proto: the cumulative quantity above the fills seen is a gap
    (FILL_GAP, answered by QueryOrder); the order resolves once every reported fill is in.
    """
    kernel = new_kernel(model_config())
    clock = BASE_TIME_NS

    def send(payload: Payload) -> outcome_pb2.Outcome:
        nonlocal clock
        clock += SECOND
        outcome = step(kernel, kernel_input(payload, time_ns=clock))
        assert outcome.accepted, outcome.message
        return outcome

    def venue(event: m.VenueEvent) -> outcome_pb2.Outcome:
        return send(event_pb(event, clock))

    send(instrument_update())
    send(mark_price(BTC, "50000"))
    (place,) = commands_of(send(enter("i-1", 0, size="0.002")), "place_order")
    cid = place.place_order.client_order_id
    position = Decimal(0)
    if purpose is m.Purpose.EXIT:
        venue(
            m.VenueEvent(
                m.EventKind.FILL,
                cid,
                "e-1",
                quantity=Decimal("0.002"),
                price=Decimal("50000"),
                cumulative=Decimal("0.002"),
            )
        )
        exit_message = intent_pb2.Intent(
            intent_id="o-1", action=intent_pb2.INTENT_ACTION_EXIT, slot_id=0, order_type=types_pb2.ORDER_TYPE_MARKET
        )
        (place,) = commands_of(send(exit_message), "place_order")
        cid = place.place_order.client_order_id
        position = Decimal("0.002")
    venue(m.VenueEvent(m.EventKind.ORDER_ACCEPTED, cid, "e-2", venue_order_id="v-2"))
    send(intent_pb2.Intent(intent_id="c-1", action=intent_pb2.INTENT_ACTION_CANCEL, slot_id=0))

    # The venue cancelled the order after filling 0.001 the kernel has not seen yet.
    outcome = venue(m.VenueEvent(m.EventKind.CANCELLED, cid, "e-3", cumulative=Decimal("0.001")))
    assert "FILL_GAP" in {outcome_pb2.AnomalyKind.Name(a.kind).removeprefix("ANOMALY_KIND_") for a in outcome.anomalies}
    queries = commands_of(outcome, "query_order")
    assert [q.query_order.reason for q in queries] == [command_pb2.QUERY_REASON_FILL_GAP]
    kernel.check_invariants()
    restored = pink_kernel.Kernel.restore(kernel.snapshot())
    assert restored.state_hash() == kernel.state_hash()

    # The missing fill arrives: the order is complete and the slot settles.
    venue(m.VenueEvent(m.EventKind.PARTIAL_FILL, cid, "e-4", quantity=STEP, price=Decimal("50000"), cumulative=STEP))
    kernel.check_invariants()
    slot = full_view(kernel).slots[0]
    assert slot.state == slot_pb2.SLOT_STATE_POSITION_OPEN
    expected = STEP if purpose is m.Purpose.ENTRY else position - STEP
    assert num(slot.position_size) == expected
    assert not slot.HasField("active_order")
