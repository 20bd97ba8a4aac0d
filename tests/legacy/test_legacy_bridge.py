"""Legacy flaws of the Python <-> Rust boundary, pinned through the ``pink_kernel`` binding.

The legacy bridge (``rust_backend.py``) passed JSON through ctypes to a global library
handle, read slots back one attribute at a time, let Python write any slot field, and
assembled outcomes from several calls. Each test below proves one of those hazards cannot
come back; its docstring names the flaw ids (``../shared/legacy/flaw-ids.tsv``) in brackets,
and ``tests/legacy/flaw_map.tsv`` points here. The last section guards the repository
against the legacy import-time and build hazards.
"""

from __future__ import annotations

import ast
import gc
import importlib.machinery
import json
import re
import shutil
import subprocess
import sys
import threading
import tomllib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import pytest
from google.protobuf import message, unknown_fields

import pink_kernel
from services.common.proto import (
    account_pb2,
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
from services.kernel.core import Payload
from tests.kernel.helpers import (
    BASE_TIME_NS,
    BTC,
    accepted,
    dec,
    default_config,
    enter,
    exit_intent,
    fill,
    instrument_update,
    kernel_input,
    mark_price,
    new_kernel,
    num,
    placed_order_id,
    timestamp,
)

ROOT = Path(__file__).resolve().parents[2]
SECOND = 1_000_000_000
OK = outcome_pb2.DIAGNOSTIC_CODE_OK
INVALID = outcome_pb2.DIAGNOSTIC_CODE_INVALID_INPUT
ALL_SLOTS = list(range(default_config().slot_count))


# ----------------------------------------------------------------------------- helpers


class Tape:
    """Drives one kernel with a clock that moves forward by 1 ms per input."""

    def __init__(self, kernel: pink_kernel.Kernel | None = None) -> None:
        self.kernel = kernel if kernel is not None else new_kernel()
        self.now = BASE_TIME_NS

    def send(self, payload: Payload, *, wait_s: int = 0) -> outcome_pb2.Outcome:
        self.now += 1_000_000 + wait_s * SECOND
        raw = self.kernel.step(kernel_input(payload, time_ns=self.now).SerializeToString())
        return outcome_pb2.Outcome.FromString(raw)

    def ok(self, payload: Payload, *, wait_s: int = 0) -> outcome_pb2.Outcome:
        outcome = self.send(payload, wait_s=wait_s)
        assert outcome.accepted, f"{outcome_pb2.DiagnosticCode.Name(outcome.code)}: {outcome.message}"
        return outcome

    def view(self, slots: list[int] | None = None) -> view_pb2.KernelView:
        raw = self.kernel.view(ALL_SLOTS if slots is None else slots, account=True, control=True)
        return view_pb2.KernelView.FromString(raw)

    def slot(self, slot_id: int) -> slot_pb2.Slot:
        (slot,) = self.view([slot_id]).slots
        return slot

    def ready(self) -> None:
        """Instruments and a BTC mark at 50000."""
        self.ok(instrument_update())
        self.ok(mark_price(BTC, "50000"))

    def fill(
        self, cid: str, event_id: str, quantity: str, price: str, cumulative: str, *, fee: str = "0", last: bool = True
    ) -> outcome_pb2.Outcome:
        event = fill(
            cid,
            event_id,
            quantity=quantity,
            price=price,
            cumulative=cumulative,
            fee=fee,
            time_ns=self.now,
            partial=not last,
        )
        return self.ok(event)

    def open(self, slot: int, size: str, *, tag: str, price: str = "50000") -> str:
        """A filled MARKET long of ``size`` BTC on ``slot``; returns the entry order id."""
        cid = placed_order_id(self.ok(enter(f"{tag}-in", slot, size=size, leverage="5")))
        self.ok(accepted(cid, f"{tag}-ack", venue_order_id=f"{tag}-v", time_ns=self.now))
        self.fill(cid, f"{tag}-fill", size, price, size)
        return cid


def cancel_intent(
    intent_id: str, slot: int, purpose: types_pb2.OrderPurpose.ValueType = types_pb2.ORDER_PURPOSE_UNSPECIFIED
) -> intent_pb2.Intent:
    return intent_pb2.Intent(
        intent_id=intent_id, action=intent_pb2.INTENT_ACTION_CANCEL, slot_id=slot, cancel_purpose=purpose
    )


def cancelled(cid: str, event_id: str, *, cumulative: str, time_ns: int) -> venue_event_pb2.VenueEvent:
    return venue_event_pb2.VenueEvent(
        kind=venue_event_pb2.VENUE_EVENT_KIND_CANCELLED,
        client_order_id=cid,
        venue_event_id=event_id,
        cumulative_quantity=dec(cumulative),
        exchange_time=timestamp(time_ns),
    )


def fields(outcome: outcome_pb2.Outcome) -> list[str]:
    return [v.field for v in outcome.violations]


def unknown_field_count(msg: message.Message) -> int:
    """Unknown fields in ``msg`` and every sub-message it holds."""
    total = len(unknown_fields.UnknownFieldSet(msg))
    for field, value in msg.ListFields():
        if field.message_type is None:
            continue
        if field.message_type.GetOptions().map_entry:
            values = list(value.values()) if field.message_type.fields_by_name["value"].message_type else []
        elif field.is_repeated:
            values = list(value)
        else:
            values = [value]
        total += sum(unknown_field_count(v) for v in values if isinstance(v, message.Message))
    return total


# ----------------------------------------------------------------------------- exact numbers


def test_decimals_cross_the_boundary_exactly() -> None:
    """[E5, I3] money crosses the boundary as decimal text, never as a float.

    0.1 + 0.2 style values survive bytes in and out exactly, 200 fees add up to exactly
    20 (floats give 19.999999999999964), and a mark price never rewrites the entry price.
    """
    tape = Tape()
    tape.ready()
    cid = placed_order_id(
        tape.ok(enter("i-1", 0, size="0.3", limit_price="0.7", time_in_force=types_pb2.TIME_IN_FORCE_GTC, leverage="1"))
    )
    tape.fill(cid, "e-1", "0.1", "0.7", "0.1", fee="0.1", last=False)
    tape.fill(cid, "e-2", "0.2", "0.1", "0.3", fee="0.2")
    slot = tape.slot(0)
    assert (slot.cost_basis.value, slot.fees.value) == ("0.09", "0.3")  # float: 0.06999999999999999 + 0.02
    assert num(slot.entry_average_price) == Decimal("0.3")
    tape.ok(mark_price(BTC, "0.4"))
    marked = tape.slot(0)
    assert marked.cost_basis == slot.cost_basis, "a mark never touches the entry side"
    assert marked.entry_average_price == slot.entry_average_price
    assert num(marked.unrealized_pnl) == Decimal("0.03")  # 0.3 x 0.4 - 0.09
    exit_id = placed_order_id(tape.ok(exit_intent("i-2", 0)))
    out = tape.fill(exit_id, "e-3", "0.3", "0.4", "0.3", fee="0.1")
    assert [e.amount.value for e in out.ledger_entries] == ["0.03", "-0.1"]
    assert tape.view().account.capital.value == "9999.63"  # 10000 - 0.3 + 0.03 - 0.1

    long_run = Tape()
    long_run.ready()
    for n in range(100):
        tag = f"t{n}"
        entry = placed_order_id(long_run.ok(enter(f"{tag}-in", 0, size="0.001", leverage="1")))
        long_run.fill(entry, f"{tag}-a", "0.001", "50000", "0.001", fee="0.1")
        leave = placed_order_id(long_run.ok(exit_intent(f"{tag}-out", 0)))
        long_run.fill(leave, f"{tag}-b", "0.001", "50000", "0.001", fee="0.1")
    account = long_run.view().account
    assert num(account.fees) == Decimal(20)
    assert num(account.capital) == Decimal(9980)
    assert sum(0.1 for _ in range(200)) != 20.0, "the float path this design removes"


# ----------------------------------------------------------------------------- lifetime


def test_each_kernel_owns_its_state_and_is_freed_with_its_python_object() -> None:
    """[E6, F20, G30, O10, K6, F25, G28] no global library handle, no __del__, no close().

    Every Kernel owns its Rust value; two kernels never share state; the object holds no
    Python references (so it is never part of a reference cycle and is freed the moment
    its last reference goes); thousands of kernels can come and go while another trades.
    """
    first = Tape()
    second = Tape()
    fresh_hash = second.kernel.state_hash()
    first.ready()
    first.open(0, "0.01", tag="a")
    assert second.kernel.state_hash() == fresh_hash, "stepping one kernel never touches another"
    assert second.kernel.last_sequence == 0

    for kernel in (first.kernel, second.kernel):
        assert gc.get_referents(kernel) == []
        assert not gc.is_tracked(kernel), "holds no Python objects: never in a cycle"
    for lifecycle_hook in ("__del__", "close", "destroy", "handle"):
        assert not hasattr(pink_kernel.Kernel, lifecycle_hook)

    snapshot = first.kernel.snapshot()
    expected = first.kernel.state_hash()
    second.ready()
    for n in range(2000):
        twin = pink_kernel.Kernel.restore(snapshot)
        assert twin.state_hash() == expected
        del twin
        if n % 100 == 0:
            second.ok(mark_price(BTC, str(50000 + n)))
    assert first.kernel.state_hash() == expected
    first.kernel.check_invariants()
    second.kernel.check_invariants()
    assert second.kernel.last_sequence == 2 + 20


def test_kernels_built_concurrently_are_independent() -> None:
    """[H11, E6] there is no lazily initialised global: kernels built on eight threads at
    once are all valid, independent, and reach identical states from identical inputs."""

    def build_and_trade(_: int) -> str:
        tape = Tape()
        tape.ready()
        tape.open(0, "0.01", tag="x")
        assert tape.kernel.last_sequence == 5, "no other thread's inputs reached this kernel"
        return tape.kernel.state_hash()

    with ThreadPoolExecutor(max_workers=8) as pool:
        hashes = set(pool.map(build_and_trade, range(16)))
    assert len(hashes) == 1, "same inputs, same state, whatever the thread"
    assert hashes != {new_kernel().state_hash()}


def test_dropping_a_reference_while_another_thread_steps_is_safe() -> None:
    """[H12] no destructor can free a kernel that another thread is using: the Rust value
    lives exactly as long as a Python reference does, with no __del__ and no handle."""
    tape = Tape()
    tape.ready()
    holder: list[pink_kernel.Kernel] = [tape.kernel]
    started = threading.Event()
    outcomes: list[bool] = []

    def worker(kernel: pink_kernel.Kernel) -> None:
        started.set()
        for n in range(300):
            raw = kernel.step(kernel_input(mark_price(BTC, str(50000 + n)), time_ns=BASE_TIME_NS).SerializeToString())
            outcomes.append(outcome_pb2.Outcome.FromString(raw).accepted)
        kernel.check_invariants()

    thread = threading.Thread(target=worker, args=(holder[0],))
    thread.start()
    started.wait()
    holder.clear()
    del tape
    gc.collect()
    thread.join()
    assert outcomes == [True] * 300


# ----------------------------------------------------------------------------- one call, one answer


def test_one_step_returns_every_output_in_one_outcome() -> None:
    """[F4, S3, S12, F1] one step call returns every fact the input caused, and only those.

    A fill beyond the order quantity yields its transition, its fee, its anomaly and the
    changed slot in one Outcome; a kill switch yields both transitions and both cancels.
    """
    tape = Tape()
    tape.ready()
    cid = placed_order_id(tape.ok(enter("i-1", 2, size="0.01", leverage="5")))
    over = fill(cid, "e-1", quantity="0.015", price="50000", cumulative="0.015", fee="0.3", time_ns=tape.now)
    outcome = tape.ok(over)  # one kernel.step call
    assert [(t.from_state, t.to_state, t.cause) for t in outcome.transitions] == [
        (slot_pb2.SLOT_STATE_ENTRY_PENDING, slot_pb2.SLOT_STATE_POSITION_OPEN, outcome_pb2.TRANSITION_CAUSE_FILL)
    ]
    assert [(e.kind, e.amount.value) for e in outcome.ledger_entries] == [(account_pb2.LEDGER_ENTRY_KIND_FEE, "-0.3")]
    assert [(a.kind, a.reconcile_needed) for a in outcome.anomalies] == [(outcome_pb2.ANOMALY_KIND_OVERFILL, True)]
    assert list(outcome.changed_slots) == [2]
    assert outcome.account_changed
    assert num(tape.slot(2).position_size) == Decimal("0.01")

    first = placed_order_id(
        tape.ok(enter("i-2", 0, size="0.01", limit_price="49000", time_in_force=types_pb2.TIME_IN_FORCE_GTC))
    )
    second = placed_order_id(
        tape.ok(enter("i-3", 1, size="0.01", limit_price="49000", time_in_force=types_pb2.TIME_IN_FORCE_GTC))
    )
    tape.ok(accepted(second, "e-2", venue_order_id="v-2", time_ns=tape.now))
    outcome = tape.ok(control_pb2.ControlUpdate(trading_enabled=False, actor="ops", reason="kill"))
    assert [(t.slot_id, t.to_state, t.cause) for t in outcome.transitions] == [
        (0, slot_pb2.SLOT_STATE_ENTRY_CANCELLING, outcome_pb2.TRANSITION_CAUSE_KILL_SWITCH),
        (1, slot_pb2.SLOT_STATE_ENTRY_CANCELLING, outcome_pb2.TRANSITION_CAUSE_KILL_SWITCH),
    ]
    cancels = [(c.cancel_order.client_order_id, c.cancel_order.venue_order_id) for c in outcome.commands]
    assert cancels == [(first, ""), (second, "v-2")]
    assert outcome.control_changed
    assert list(outcome.changed_slots) == [0, 1]
    assert not tape.view().control.trading_enabled


def test_outcome_names_only_changed_slots_and_views_are_detached_copies() -> None:
    """[E19, F5, F7, F9, K5, K23, O8] no per-slot or per-attribute FFI round trips.

    An outcome names exactly the slots it changed; one view call returns them as plain
    protobuf bytes; reading fields of the parsed view never calls the kernel again (it is
    a copy: later steps do not change it).
    """
    tape = Tape()
    tape.ready()
    for slot in (0, 3, 7):
        tape.open(slot, "0.01", tag=f"s{slot}")
    outcome = tape.ok(exit_intent("x-3", 3))
    assert list(outcome.changed_slots) == [3]
    raw = tape.kernel.view(list(outcome.changed_slots))
    assert isinstance(raw, bytes)
    (pending,) = view_pb2.KernelView.FromString(raw).slots
    assert (pending.slot_id, pending.state) == (3, slot_pb2.SLOT_STATE_EXIT_PENDING)
    exit_id = placed_order_id(outcome)
    closed = tape.fill(exit_id, "x-3-fill", "0.01", "50100", "0.01")
    assert list(closed.changed_slots) == [3]
    assert pending.state == slot_pb2.SLOT_STATE_EXIT_PENDING, "a parsed view is a copy, not a live proxy"
    assert tape.slot(3).state == slot_pb2.SLOT_STATE_CLOSED
    assert [s.state for s in tape.view([0, 7]).slots] == [slot_pb2.SLOT_STATE_POSITION_OPEN] * 2


def test_the_kernel_has_no_setters_and_a_view_cannot_write_back() -> None:
    """[I17, O11, I16] nothing outside the kernel can write its state.

    The only ways in are validated inputs; the object exposes no attribute setter, a view
    edited in Python changes nothing, and slot bytes fed back are not an input.
    """
    tape = Tape()
    tape.ready()
    tape.open(0, "0.01", tag="a")
    public = {name for name in dir(pink_kernel.Kernel) if not name.startswith("_")}
    assert public == {
        "check_invariants",
        "last_sequence",
        "post_state",
        "replay",
        "replay_frames",
        "restore",
        "snapshot",
        "state_hash",
        "step",
        "view",
    }
    for name in ("last_sequence", "step", "slots", "realized_pnl"):
        with pytest.raises(AttributeError):
            setattr(tape.kernel, name, 1)
    before = tape.kernel.state_hash()
    edited = tape.view([0])
    edited.slots[0].realized_pnl.value = "-9999999"
    edited.slots[0].state = slot_pb2.SLOT_STATE_IDLE
    edited.account.capital.value = "1"
    with pytest.raises(pink_kernel.DecodeError):
        tape.kernel.step(edited.slots[0].SerializeToString())
    assert tape.kernel.state_hash() == before
    assert tape.slot(0).state == slot_pb2.SLOT_STATE_POSITION_OPEN


def test_unknown_input_fields_are_ignored_and_outputs_match_the_python_schema() -> None:
    """[F14, F30, K16, J15] one schema for both languages, generated from the same .proto files.

    Unknown fields in an input are ignored by the protobuf contract (the outcome is byte for
    byte the one without them); every output the Rust kernel writes parses in Python with no
    unknown field and re-serializes to the same bytes, so no hand-written converter can drift.
    """
    plain, extended = Tape(), Tape()
    for tape in (plain, extended):
        tape.ready()
    message_bytes = kernel_input(enter("i-1", 0, size="0.01"), time_ns=BASE_TIME_NS + SECOND).SerializeToString()
    unknown = bytes([0x98, 0x06, 0x01]) + bytes([0xA2, 0x06, 0x03]) + b"abc"  # fields 99 (varint) and 100 (bytes)
    assert plain.kernel.step(message_bytes) == extended.kernel.step(message_bytes + unknown)
    assert plain.kernel.state_hash() == extended.kernel.state_hash()

    tape = Tape()
    tape.ready()
    cid = tape.open(0, "0.01", tag="a")
    exit_id = placed_order_id(tape.ok(exit_intent("i-2", 0)))
    outputs: list[tuple[type[message.Message], bytes]] = [
        (
            outcome_pb2.Outcome,
            tape.kernel.step(kernel_input(mark_price(BTC, "50100"), time_ns=tape.now).SerializeToString()),
        ),
        (view_pb2.KernelView, tape.kernel.view(ALL_SLOTS, account=True, control=True)),
        (snapshot_pb2.KernelSnapshot, tape.kernel.snapshot()),
    ]
    late = fill(cid, "late", quantity="0.01", price="1", cumulative="0.02", time_ns=tape.now)
    outputs.append((outcome_pb2.Outcome, tape.kernel.step(kernel_input(late, time_ns=tape.now).SerializeToString())))
    tape.fill(exit_id, "x", "0.01", "50100", "0.01", fee="0.2")
    outputs.append((snapshot_pb2.KernelSnapshot, tape.kernel.snapshot()))
    for cls, raw in outputs:
        parsed = cls.FromString(raw)
        assert unknown_field_count(parsed) == 0, f"{cls.__name__}: the Rust and Python schemas differ"
        assert parsed.SerializeToString(deterministic=True) == raw


# ----------------------------------------------------------------------------- hostile input


def test_nul_bytes_and_control_characters_are_field_violations() -> None:
    """[G2] a NUL byte anywhere is a named field violation: never a panic, never a C string.

    Each hostile input is refused with INVALID_INPUT naming its field, changes nothing, and
    the kernel goes on working (it is not poisoned).
    """
    tape = Tape()
    tape.ready()
    cid = placed_order_id(tape.ok(enter("i-1", 0, size="0.01")))
    labelled = enter("i-2", 1, size="0.01")
    labelled.labels["note"] = "a\x00b"
    cases: list[tuple[Payload, str]] = [
        (enter("i\x00d", 1, size="0.01"), "intent.intent_id"),
        (enter("i-3", 1, symbol="BTC\x00-USDT", size="0.01"), "intent.symbol"),
        (labelled, 'intent.labels["note"]'),
        (accepted(cid, "e\x001", venue_order_id="v-1", time_ns=tape.now), "venue_event.venue_event_id"),
        (accepted(cid, "e-1", venue_order_id="v\x001", time_ns=tape.now), "venue_event.venue_order_id"),
        (control_pb2.ControlUpdate(actor="ops\x00", reason="x"), "control_update.actor"),
        (control_pb2.ControlUpdate(actor="ops", reason="bell\x07"), "control_update.reason"),
        (mark_price("BTC-USDT\x00", "50000"), "mark_price.symbol"),
    ]
    for payload, field in cases:
        before = tape.kernel.state_hash()
        outcome = tape.send(payload)
        assert outcome.code == INVALID, field
        assert field in fields(outcome), f"{field} not named in {fields(outcome)}"
        assert tape.kernel.state_hash() == before
    tape.ok(accepted(cid, "e-1", venue_order_id="v-1", time_ns=tape.now))
    tape.kernel.check_invariants()
    assert "poisoned" not in repr(tape.kernel)


def test_unknown_enum_values_are_reported_not_crashing() -> None:
    """[H6] an enum value this build does not know is a named violation in Rust and a plain
    number in Python: no enum-from-string crash on either side."""
    tape = Tape()
    tape.ready()
    cid = placed_order_id(tape.ok(enter("i-1", 0, size="0.01")))
    bad_action = enter("i-2", 1, size="0.01")
    bad_action.action = intent_pb2.IntentAction.ValueType(99)
    bad_side = enter("i-3", 1, size="0.01")
    bad_side.side = types_pb2.Side.ValueType(7)
    bad_type = enter("i-4", 1, size="0.01")
    bad_type.order_type = types_pb2.OrderType.ValueType(5)
    bad_purpose = cancel_intent("i-5", 0, types_pb2.OrderPurpose.ValueType(9))
    bad_kind = accepted(cid, "e-1", venue_order_id="v-1", time_ns=tape.now)
    bad_kind.kind = venue_event_pb2.VenueEventKind.ValueType(42)
    cases: list[tuple[Payload, str]] = [
        (bad_action, "intent.action"),
        (bad_side, "intent.side"),
        (bad_type, "intent.order_type"),
        (bad_purpose, "intent.cancel_purpose"),
        (bad_kind, "venue_event.kind"),
    ]
    for payload, field in cases:
        before = tape.kernel.state_hash()
        outcome = tape.send(payload)
        assert (outcome.code, field in fields(outcome)) == (INVALID, True), (field, fields(outcome))
        assert tape.kernel.state_hash() == before
    future = outcome_pb2.Outcome(code=outcome_pb2.DiagnosticCode.ValueType(999))
    future.transitions.add(from_state=slot_pb2.SlotState.ValueType(77))
    parsed = outcome_pb2.Outcome.FromString(future.SerializeToString())
    assert (parsed.code, parsed.transitions[0].from_state) == (999, 77)


def test_accepted_exactly_when_the_code_is_ok() -> None:
    """[L1] ``accepted`` and ``code`` can never contradict each other, whatever the input."""
    tape = Tape()
    payloads: list[Payload] = [
        enter("i-1", 0, size="0.01"),  # no instrument yet
        instrument_update(),
        enter("i-2", 0, size="0.01"),  # no reference price
        mark_price(BTC, "50000"),
        enter("i-3", 0, size="0.01"),
        enter("i-3", 0, size="0.01"),  # duplicate intent
        enter("i-4", 0, size="0.01"),  # slot busy
        enter("i-5", 42, size="0.01"),  # no such slot
        enter("i-6", 1, size="0.0001"),  # below the step
        exit_intent("i-7", 2),  # nothing to exit
        cancel_intent("i-8", 3),  # nothing to cancel
        accepted("nobody", "e-1", venue_order_id="v-9", time_ns=BASE_TIME_NS),  # unknown order
        kernel_input_pb2.Timer(),
    ]
    codes = set()
    for payload in payloads:
        outcome = tape.send(payload)
        assert outcome.accepted == (outcome.code == OK), outcome
        assert outcome.code != outcome_pb2.DIAGNOSTIC_CODE_UNSPECIFIED
        if not outcome.accepted:
            assert not outcome.transitions
            assert not outcome.commands
            assert not outcome.ledger_entries
        codes.add(outcome.code)
    assert len(codes) >= 8, sorted(outcome_pb2.DiagnosticCode.Name(c) for c in codes)


def test_a_bad_snapshot_error_names_the_problem() -> None:
    """[J9] a refused snapshot raises KernelError naming each bad field, never a bare null;
    snapshots and views always come back as bytes."""
    tape = Tape()
    tape.ready()
    tape.open(0, "0.01", tag="a")
    good = snapshot_pb2.KernelSnapshot.FromString(tape.kernel.snapshot())

    def corrupt(edit: Callable[[snapshot_pb2.KernelSnapshot], None]) -> pink_kernel.KernelError:
        copy = snapshot_pb2.KernelSnapshot()
        copy.CopyFrom(good)
        edit(copy)
        with pytest.raises(pink_kernel.KernelError) as raised:
            pink_kernel.Kernel.restore(copy.SerializeToString())
        return raised.value

    def bad_state(m: snapshot_pb2.KernelSnapshot) -> None:
        m.slots[1].state = slot_pb2.SlotState.ValueType(77)

    def bad_slot_id(m: snapshot_pb2.KernelSnapshot) -> None:
        m.slots[0].slot_id = 5

    def bad_decimal(m: snapshot_pb2.KernelSnapshot) -> None:
        m.account.capital.value = "abc"

    def bad_kernel_id(m: snapshot_pb2.KernelSnapshot) -> None:
        m.config.kernel_id = "BAD!"

    for edit, field in [
        (bad_state, "slots[1].state"),
        (bad_slot_id, "slots[0].slot_id"),
        (bad_decimal, "account.capital"),
        (bad_kernel_id, "config.kernel_id"),
    ]:
        error = corrupt(edit)
        assert field in [f for f, _ in error.violations], error.violations
        assert f"{field}: " in str(error)
        assert all(description for _, description in error.violations)

    def broken_conservation(m: snapshot_pb2.KernelSnapshot) -> None:
        m.account.capital.value = "12345"

    assert "capital" in str(corrupt(broken_conservation))
    assert isinstance(tape.kernel.snapshot(), bytes)
    assert view_pb2.KernelView.FromString(tape.kernel.view([0, 99])).slots[0].slot_id == 0


# ----------------------------------------------------------------------------- whole flows


def check_step(tape: Tape, payload: Payload, *, wait_s: int = 0) -> outcome_pb2.Outcome:
    """Steps ``payload`` and checks the outcome against independent reads of the state.

    The transitions must start from each slot's state before the step, chain, carry their
    cause, input sequence and order id, and end in the state a fresh view reports; the
    changed slots must be exactly the slots whose version moved; a rejection changes nothing.
    """
    before = {s.slot_id: s for s in tape.view().slots}
    outcome = tape.send(payload, wait_s=wait_s)
    after = {s.slot_id: s for s in tape.view().slots}
    assert outcome.accepted == (outcome.code == OK)
    if not outcome.accepted:
        assert after == before
        return outcome
    states = {slot_id: slot.state for slot_id, slot in before.items()}
    for tr in outcome.transitions:
        assert tr.from_state == states[tr.slot_id], tr
        assert tr.cause != outcome_pb2.TRANSITION_CAUSE_UNSPECIFIED
        assert tr.input_sequence == outcome.sequence
        if tr.cause != outcome_pb2.TRANSITION_CAUSE_RECONCILE:
            assert tr.client_order_id, tr
        states[tr.slot_id] = tr.to_state
    assert states == {slot_id: slot.state for slot_id, slot in after.items()}
    for slot_id, slot in after.items():
        last = [tr for tr in outcome.transitions if tr.slot_id == slot_id][-1:]
        if last:
            assert last[0].slot_version == slot.version
    moved = [slot_id for slot_id in after if after[slot_id].version != before[slot_id].version]
    assert sorted(outcome.changed_slots) == moved
    return outcome


def test_limit_entry_rests_fills_partially_and_cancels_through_the_binding() -> None:
    """[I6, S1, S2, M4, M3, M11, F1, F2] a LIMIT entry through the whole kernel path.

    The PlaceOrder carries LIMIT, the price and the time in force as contract fields; the
    order rests, fills partly, is cancelled (the outcome says CANCELLING, not done), and the
    venue's CANCELLED leaves exactly the filled size open. A second LIMIT entry cancelled
    with no fill returns its slot to IDLE. ENTER itself never books anything.
    """
    tape = Tape()
    tape.ok(instrument_update())
    limit = enter(
        "i-1",
        0,
        size="1",
        limit_price="49000.5",
        time_in_force=types_pb2.TIME_IN_FORCE_GTC,
        exit_leg_ratios=["0.5"] * 2,
    )
    outcome = check_step(tape, limit)
    assert not outcome.ledger_entries
    place = outcome.commands[0].place_order
    assert (place.order_type, place.limit_price.value, place.time_in_force) == (
        types_pb2.ORDER_TYPE_LIMIT,
        "49000.5",
        types_pb2.TIME_IN_FORCE_GTC,
    )
    assert (place.quantity.value, place.purpose, place.reduce_only) == ("1", types_pb2.ORDER_PURPOSE_ENTRY, False)
    cid = place.client_order_id
    check_step(tape, accepted(cid, "e-1", venue_order_id="v-1", time_ns=tape.now))
    partial = fill(
        cid, "e-2", quantity="0.25", price="49000.5", cumulative="0.25", fee="0.1", partial=True, time_ns=tape.now
    )
    assert not check_step(tape, partial).transitions, "a partial fill of a resting order keeps it working"
    outcome = check_step(tape, cancel_intent("i-2", 0, types_pb2.ORDER_PURPOSE_ENTRY))
    assert [(t.from_state, t.to_state) for t in outcome.transitions] == [
        (slot_pb2.SLOT_STATE_ENTRY_WORKING, slot_pb2.SLOT_STATE_ENTRY_CANCELLING)
    ]
    cancel = outcome.commands[0].cancel_order
    assert (cancel.client_order_id, cancel.venue_order_id, cancel.symbol) == (cid, "v-1", BTC)
    assert tape.slot(0).state == slot_pb2.SLOT_STATE_ENTRY_CANCELLING, "accepted means requested, and says so"
    outcome = check_step(tape, cancelled(cid, "e-3", cumulative="0.25", time_ns=tape.now))
    assert outcome.transitions[0].to_state == slot_pb2.SLOT_STATE_POSITION_OPEN
    assert num(tape.slot(0).position_size) == Decimal("0.25")
    leg = check_step(tape, exit_intent("i-3", 0)).commands[0].place_order
    assert (leg.quantity.value, leg.side, leg.reduce_only) == ("0.125", types_pb2.ORDER_SIDE_SELL, True)

    other = check_step(
        tape, enter("i-4", 1, size="0.5", limit_price="48000", time_in_force=types_pb2.TIME_IN_FORCE_GTC)
    )
    other_id = placed_order_id(other)
    check_step(tape, cancel_intent("i-5", 1))
    outcome = check_step(tape, cancelled(other_id, "e-4", cumulative="0", time_ns=tape.now))
    assert outcome.transitions[0].to_state == slot_pb2.SLOT_STATE_IDLE
    idle = tape.slot(1)
    assert (idle.trade_id, idle.HasField("active_order"), num(idle.position_size)) == ("", False, Decimal(0))


def test_outcome_transitions_agree_with_the_post_state() -> None:
    """[M7, F6, S3] outcomes checked against independent reads, over a multi-slot session.

    The facts in an outcome (transitions with cause, sequence and order id, changed slots)
    are produced by the step; the view is read separately afterwards. They must agree at
    every step: a transition recorded without the state moving (or the reverse) fails.
    """
    tape = Tape()
    check_step(tape, instrument_update())
    check_step(tape, mark_price(BTC, "50000"))
    first = placed_order_id(check_step(tape, enter("i-1", 0, size="0.02", exit_leg_ratios=["0.5", "0.5"])))
    second = placed_order_id(check_step(tape, enter("i-2", 1, side=types_pb2.SIDE_SHORT, size="0.01")))
    check_step(tape, accepted(first, "e-1", venue_order_id="v-1", time_ns=tape.now))
    check_step(tape, fill(second, "e-2", quantity="0.01", price="50010", cumulative="0.01", time_ns=tape.now))
    check_step(tape, fill(first, "e-3", quantity="0.02", price="49990", cumulative="0.02", time_ns=tape.now))
    leg = placed_order_id(check_step(tape, exit_intent("i-3", 0)))
    check_step(tape, exit_intent("i-3", 0))  # duplicate: rejected, nothing moves
    check_step(
        tape,
        venue_event_pb2.VenueEvent(
            kind=venue_event_pb2.VENUE_EVENT_KIND_ORDER_REJECTED,
            client_order_id=leg,
            venue_event_id="e-4",
            reason="insufficient margin",
            exchange_time=timestamp(tape.now),
        ),
    )
    leg = placed_order_id(check_step(tape, exit_intent("i-4", 0)))
    check_step(tape, fill(leg, "e-5", quantity="0.01", price="50500", cumulative="0.01", time_ns=tape.now))
    check_step(tape, kernel_input_pb2.Timer(), wait_s=120)
    rest = placed_order_id(check_step(tape, exit_intent("i-5", 0, residual=True)))
    check_step(tape, fill(rest, "e-6", quantity="0.01", price="50600", cumulative="0.01", time_ns=tape.now))
    check_step(tape, control_pb2.ControlUpdate(reduce_only=True, actor="ops"))
    check_step(tape, enter("i-6", 0, size="0.01"))  # reduce-only: refused
    reconcile = kernel_input_pb2.Reconcile(reconcile_id="r-1", wallet_balance=dec("10000"))
    reconcile.slots.add(slot_id=1, position_size=dec("0"))
    outcome = check_step(tape, reconcile)
    assert [t.cause for t in outcome.transitions] == [outcome_pb2.TRANSITION_CAUSE_RECONCILE]
    assert [s.state for s in tape.view([0, 1]).slots] == [slot_pb2.SLOT_STATE_CLOSED] * 2


def test_position_size_and_order_progress_are_distinct_fields() -> None:
    """[H14] "remaining" is never ambiguous: the slot's open position and its order's
    quantity and filled quantity are separate, named fields."""
    tape = Tape()
    tape.ready()
    cid = placed_order_id(
        tape.ok(enter("i-1", 0, size="1", limit_price="49000", time_in_force=types_pb2.TIME_IN_FORCE_GTC))
    )
    tape.fill(cid, "e-1", "0.4", "49000", "0.4", last=False)
    slot = tape.slot(0)
    order = slot.active_order
    assert (num(slot.position_size), num(order.quantity), num(order.filled_quantity)) == (
        Decimal("0.4"),
        Decimal("1"),
        Decimal("0.4"),
    )
    tape.fill(cid, "e-2", "0.6", "49000", "1")
    exit_id = placed_order_id(tape.ok(exit_intent("i-2", 0)))
    tape.fill(exit_id, "e-3", "0.3", "49500", "0.3", last=False)
    slot = tape.slot(0)
    order = slot.active_order
    assert (num(slot.position_size), num(order.quantity), num(order.filled_quantity)) == (
        Decimal("0.7"),
        Decimal("1"),
        Decimal("0.3"),
    )
    assert (num(slot.entry_filled_quantity), num(slot.exit_filled_quantity)) == (Decimal(1), Decimal("0.3"))


def test_a_failed_event_changes_nothing_and_the_deadline_still_queries() -> None:
    """[F15, F16, E12, L3] a refused event leaves the slot exactly as it was, with a deadline.

    A fill with a zero, negative or missing price is refused by name (never booked as a
    100% loss, never zero PnL); the slot keeps waiting and the timer queries the venue, so a
    failure in the middle of a flow can never strand the slot.
    """
    tape = Tape()
    tape.ready()
    cid = placed_order_id(tape.ok(enter("i-1", 0, size="0.01")))
    tape.ok(accepted(cid, "e-1", venue_order_id="v-1", time_ns=tape.now))
    before = (tape.kernel.state_hash(), tape.view().account.capital.value)
    for price in ("0", "-50000", None):
        event = fill(cid, "e-2", quantity="0.01", price=price or "1", cumulative="0.01", time_ns=tape.now)
        if price is None:
            event.ClearField("last_price")
        else:
            event.last_price.value = price
        outcome = tape.send(event)
        assert (outcome.code, fields(outcome)) == (INVALID, ["venue_event.last_price"])
        assert (tape.kernel.state_hash(), tape.view().account.capital.value) == before
    slot = tape.slot(0)
    assert slot.state == slot_pb2.SLOT_STATE_ENTRY_WORKING
    assert slot.HasField("deadline")
    queries = tape.ok(kernel_input_pb2.Timer(), wait_s=11).commands
    assert [(q.query_order.client_order_id, q.query_order.reason) for q in queries] == [
        (cid, command_pb2.QUERY_REASON_DEADLINE)
    ]
    tape.fill(cid, "e-2", "0.01", "50000", "0.01")
    assert tape.slot(0).state == slot_pb2.SLOT_STATE_POSITION_OPEN


def test_capital_changes_only_through_ledger_entries() -> None:
    """[F2, E18, S5] capital moves only by ledger entries, each with capital before and after.

    ENTER books nothing (no transient settlement state to reset); every fill books its fee,
    every exit fill its PnL at once (partial exits included); funding and a reconcile
    balance adjustment are ledger entries too; the entries chain exactly across steps.
    """
    tape = Tape()
    tape.ready()
    capital = num(tape.view().account.capital)
    ledger_sequence = 0

    def step(payload: Payload) -> outcome_pb2.Outcome:
        nonlocal capital, ledger_sequence
        outcome = tape.ok(payload)
        for entry in outcome.ledger_entries:
            ledger_sequence += 1
            assert entry.ledger_sequence == ledger_sequence
            assert num(entry.capital_before) == capital
            assert num(entry.capital_after) == capital + num(entry.amount)
            capital = num(entry.capital_after)
        assert num(tape.view().account.capital) == capital, "capital changed without a ledger entry"
        return outcome

    entry = placed_order_id(step(enter("i-1", 0, size="0.02", exit_leg_ratios=["0.5", "0.5"])))
    assert not step(accepted(entry, "e-1", venue_order_id="v-1", time_ns=tape.now)).ledger_entries
    kinds = [
        e.kind
        for e in step(
            fill(entry, "e-2", quantity="0.02", price="50000", cumulative="0.02", fee="0.4", time_ns=tape.now)
        ).ledger_entries
    ]
    assert kinds == [account_pb2.LEDGER_ENTRY_KIND_FEE]
    leg = placed_order_id(step(exit_intent("i-2", 0)))
    partial = fill(
        leg, "e-3", quantity="0.004", price="51000", cumulative="0.004", fee="0.05", partial=True, time_ns=tape.now
    )
    booked = step(partial).ledger_entries
    assert [(e.kind, e.amount.value) for e in booked] == [
        (account_pb2.LEDGER_ENTRY_KIND_REALIZED_PNL, "4"),
        (account_pb2.LEDGER_ENTRY_KIND_FEE, "-0.05"),
    ], "settled at once, not at close"
    step(fill(leg, "e-4", quantity="0.006", price="49000", cumulative="0.01", fee="0.05", time_ns=tape.now))
    funding = kernel_input_pb2.FundingPayment(
        funding_id="f-1", symbol=BTC, amount=dec("-0.125"), funding_time=timestamp(tape.now)
    )
    assert [e.kind for e in step(funding).ledger_entries] == [account_pb2.LEDGER_ENTRY_KIND_FUNDING]
    step(kernel_input_pb2.Reconcile(reconcile_id="r-1", wallet_balance=dec("10000.5")))
    account = tape.view().account
    assert num(account.capital) == Decimal("10000.5")
    assert num(account.capital) == (
        num(account.initial_capital)
        + num(account.realized_pnl)
        - num(account.fees)
        + num(account.funding)
        + num(account.adjustments)
    )
    assert account.ledger_sequence == ledger_sequence


# ----------------------------------------------------------------------------- threads


_ENTRY_STATES = (
    slot_pb2.SLOT_STATE_ENTRY_PENDING,
    slot_pb2.SLOT_STATE_ENTRY_WORKING,
    slot_pb2.SLOT_STATE_ENTRY_CANCELLING,
)


def test_concurrent_views_are_never_torn() -> None:
    """[F10, H10, G19, N1, F13] readers on other threads never see a half-applied step.

    One thread trades (with partial fills) while three others read views: every view is
    internally consistent (capital conservation, slot state against position and order)
    and sequences never go backwards. The kernel is behind one lock and runs no Python code
    while holding it, so it cannot deadlock on re-entry either.
    """
    tape = Tape()
    tape.ready()
    kernel = tape.kernel
    stop = threading.Event()
    errors: list[str] = []
    reads: list[int] = []

    def writer() -> None:
        try:
            for n in range(150):
                cid = placed_order_id(tape.ok(enter(f"w{n}-in", 0, size="0.01", exit_leg_ratios=["0.5", "0.5"])))
                tape.fill(cid, f"w{n}-a", "0.004", "50000", "0.004", fee="0.01", last=False)
                tape.fill(cid, f"w{n}-b", "0.006", "50001", "0.01", fee="0.01")
                for leg in range(2):
                    exit_id = placed_order_id(tape.ok(exit_intent(f"w{n}-out{leg}", 0)))
                    tape.fill(exit_id, f"w{n}-c{leg}", "0.005", "50002", "0.005", fee="0.01")
        finally:
            stop.set()

    def reader() -> None:
        last = 0
        count = 0
        while not stop.is_set():
            view = view_pb2.KernelView.FromString(kernel.view([0], account=True))
            count += 1
            a = view.account
            conserved = num(a.initial_capital) + num(a.realized_pnl) - num(a.fees) + num(a.funding) + num(a.adjustments)
            (slot,) = view.slots
            position = num(slot.position_size)
            problems = [
                view.sequence < last and "sequence went backwards",
                num(a.capital) != conserved and "capital not conserved",
                slot.state in (slot_pb2.SLOT_STATE_IDLE, slot_pb2.SLOT_STATE_CLOSED)
                and (position != 0 or slot.HasField("active_order"))
                and "a free slot with a position or an order",
                slot.state == slot_pb2.SLOT_STATE_POSITION_OPEN
                and (position <= 0 or slot.HasField("active_order"))
                and "an open position without size or with an order",
                slot.state in _ENTRY_STATES
                and position != num(slot.active_order.filled_quantity)
                and "entry position differs from its order's fills",
            ]
            errors.extend(f"seq {view.sequence}: {p}" for p in problems if p)
            last = view.sequence
        reads.append(count)

    threads = [threading.Thread(target=writer)] + [threading.Thread(target=reader) for _ in range(3)]
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(previous)
    assert errors == []
    assert sum(reads) > 100, reads
    assert snapshot_pb2.KernelSnapshot.FromString(kernel.snapshot()).account.trades_closed == 150
    kernel.check_invariants()


# ----------------------------------------------------------------------------- repository hygiene


def test_the_binding_exports_what_its_stub_declares() -> None:
    """[K22] the typed stub and the compiled module agree on the public names."""
    stub = ast.parse((ROOT / "kernel-rs/pink-kernel-py/pink_kernel.pyi").read_text())
    declared: list[str] = []
    for node in stub.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            assert isinstance(node.value, ast.List)
            declared = [
                elt.value for elt in node.value.elts if isinstance(elt, ast.Constant) and isinstance(elt.value, str)
            ]
    assert sorted(declared) == [
        "DecodeError",
        "Kernel",
        "KernelError",
        "ReplayError",
        "SegmentWriter",
        "__version__",
        "scan_frames",
    ]
    for name in declared:
        assert hasattr(pink_kernel, name), name


_IMPORT_PROBE = """
import importlib, json, os, pkgutil, sys, threading
spawned = []
SPAWN = {"subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.fork", "os.spawn"}
def hook(event, args):
    if event in SPAWN:
        spawned.append(event)
sys.addaudithook(hook)
before = (list(sys.path), dict(os.environ), os.getcwd(), threading.active_count())
import pink_kernel
import services
import services.common.proto as proto
for info in pkgutil.iter_modules(proto.__path__):
    if info.name.endswith("_pb2"):
        importlib.import_module("services.common.proto." + info.name)
for info in pkgutil.walk_packages(services.__path__, "services."):
    if info.ispkg:
        importlib.import_module(info.name)
after = (list(sys.path), dict(os.environ), os.getcwd(), threading.active_count())
print(json.dumps({
    "same": before == after,
    "spawned": spawned,
    "extension": pink_kernel.pink_kernel.__file__,
}))
"""


def test_importing_the_binding_and_contract_has_no_side_effects() -> None:
    """[H2, I18, K20, H17, K21, J11, H11] importing needs no toolchain and changes nothing.

    In a fresh interpreter with no cargo on PATH, importing pink_kernel, every generated
    contract module and every services package leaves sys.path, os.environ, the working
    directory and the thread count as they were and spawns no process; the kernel is a
    prebuilt extension module, never compiled at import.
    """
    env = {"PATH": "/nonexistent", "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1"}
    result = subprocess.run(  # noqa: S603 - fixed argv: this interpreter and a constant script
        [sys.executable, "-c", _IMPORT_PROBE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["same"], "an import changed sys.path, os.environ, the cwd or started a thread"
    assert report["spawned"] == []
    assert report["extension"].endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))


def _python_sources() -> Iterator[Path]:
    for top in ("services", "tools", "tests", "bench"):
        for path in sorted((ROOT / top).rglob("*.py")):
            if "_pb2" not in path.name:
                yield path


def _dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    if isinstance(node, ast.Name):
        return node.id
    return ""


_PATH_MUTATORS = {"sys.path.insert", "sys.path.append", "sys.path.extend", "sys.path.remove"}
_ENV_MUTATORS = {"os.environ.update", "os.environ.setdefault", "os.environ.pop", "os.putenv", "os.chdir"}


class _Hazards(ast.NodeVisitor):
    """Collects legacy hazards in one module."""

    def __init__(self) -> None:
        self.found: list[str] = []
        self.depth = 0  # function nesting
        self.async_depth = 0

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        self.depth += 1
        self.async_depth += 1
        self.generic_visit(node)
        self.async_depth -= 1
        self.depth -= 1

    def visit_Call(self, node: ast.Call) -> None:
        name = _dotted(node.func)
        if name in _PATH_MUTATORS:
            self.found.append(f"line {node.lineno}: {name} (I18, K20)")
        if name.split(".")[-1] == "load_dotenv":
            self.found.append(f"line {node.lineno}: load_dotenv (H17, K21, J11)")
        if name in _ENV_MUTATORS and self.depth == 0:
            self.found.append(f"line {node.lineno}: {name} at import time (K21)")
        if name.endswith(("get_event_loop", "run_until_complete")):
            self.found.append(f"line {node.lineno}: {name} (O4)")
        if name == "asyncio.run" and self.async_depth > 0:
            self.found.append(f"line {node.lineno}: asyncio.run inside a coroutine (F24, N4, O1)")
        self.generic_visit(node)

    def _assigned(self, targets: list[ast.expr], lineno: int) -> None:
        for target in targets:
            name = _dotted(target.value) if isinstance(target, ast.Subscript) else _dotted(target)
            if name in {"sys.path", "socket.getaddrinfo"}:
                self.found.append(f"line {lineno}: assignment to {name} (I18, H22)")
            if name == "os.environ" and self.depth == 0:
                self.found.append(f"line {lineno}: os.environ written at import time (K21)")

    def visit_Assign(self, node: ast.Assign) -> None:
        self._assigned(node.targets, node.lineno)
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self._assigned([node.target], node.lineno)
        self.generic_visit(node)


def test_python_sources_have_no_legacy_hazards() -> None:
    """[I18, K20, H17, K21, J11, F24, O4, H22] no import-time path or environment mutation,
    no .env loading, no nested or deprecated event-loop calls, no stdlib monkey-patching,
    anywhere in services/, tools/, tests/ or bench/."""
    sources = list(_python_sources())
    assert len(sources) > 10
    found: list[str] = []
    for path in sources:
        visitor = _Hazards()
        visitor.visit(ast.parse(path.read_text(), filename=str(path)))
        found.extend(f"{path.relative_to(ROOT)} {hazard}" for hazard in visitor.found)
    assert found == []


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_names(path: Path) -> list[str]:
    names = []
    for line in path.read_text().splitlines():
        text = line.split("#", 1)[0].strip()
        if text:
            names.append(_normalize(re.split(r"[<>=!~;\[ ]", text, maxsplit=1)[0]))
    return names


def test_dependencies_are_declared_and_pinned() -> None:
    """[H1] every Python dependency is declared and pinned to an exact version, and every
    Rust dependency of the workspace is pinned with "=" and locked in Cargo.lock."""
    pins: dict[str, str] = {}
    for line in (ROOT / "requirements/constraints.txt").read_text().splitlines():
        text = line.split("#", 1)[0].strip()
        if text:
            name, sep, version = text.partition("==")
            assert sep, f"not an exact pin: {text!r}"
            assert re.fullmatch(r"[0-9][0-9A-Za-z.+!-]*", version), f"not an exact version: {text!r}"
            pins[_normalize(name)] = version
    declared = _requirement_names(ROOT / "requirements/runtime.txt") + _requirement_names(ROOT / "requirements/dev.txt")
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    project_deps = [
        _normalize(re.split(r"[<>=!~;\[ ]", d, maxsplit=1)[0]) for d in pyproject["project"]["dependencies"]
    ]
    assert set(project_deps) <= set(_requirement_names(ROOT / "requirements/runtime.txt"))
    missing = sorted(set(declared + project_deps) - set(pins))
    assert missing == [], f"declared but not pinned in constraints.txt: {missing}"
    cargo = tomllib.loads((ROOT / "kernel-rs/Cargo.toml").read_text())
    for name, spec in cargo["workspace"]["dependencies"].items():
        version = spec if isinstance(spec, str) else spec.get("version", "")
        assert version.startswith("="), f"workspace dependency {name} is not pinned: {version!r}"
    lock = (ROOT / "kernel-rs/Cargo.lock").read_text()
    for name in cargo["workspace"]["dependencies"]:
        assert f'name = "{name}"' in lock, f"{name} missing from Cargo.lock"


def test_the_binding_links_no_unneeded_crates() -> None:
    """[H21] the native module links only what it needs: no wasm-bindgen, js-sys, chrono
    (the legacy time-zone chain) and no test-only crate on the host build of the binding."""
    cargo = shutil.which("cargo")
    assert cargo is not None, "cargo is required (make install needs it too)"
    result = subprocess.run(  # noqa: S603 - fixed argv built from a resolved cargo path
        [
            cargo,
            "tree",
            "--manifest-path",
            str(ROOT / "kernel-rs/Cargo.toml"),
            "-p",
            "pink-kernel-py",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--offline",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    crates = {line.split(" ")[0] for line in result.stdout.splitlines() if line.strip()}
    assert {"pink-core", "pyo3"} <= crates
    forbidden = {"wasm-bindgen", "js-sys", "chrono", "iana-time-zone", "proptest", "serde_json"}
    assert crates & forbidden == set()
