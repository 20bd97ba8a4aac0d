"""The pink_kernel binding: bytes in, bytes out, errors, snapshots, threads and fuzzing."""

from __future__ import annotations

import string
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from functools import cache
from typing import cast

import pytest
from google.protobuf import descriptor, message
from hypothesis import event, given
from hypothesis import strategies as st

import pink_kernel
from services.common.proto import (
    account_pb2,
    kernel_input_pb2,
    outcome_pb2,
    slot_pb2,
    snapshot_pb2,
    types_pb2,
)
from services.kernel.core import Payload
from tests.kernel.helpers import (
    BASE_TIME_NS,
    BTC,
    ETH,
    accepted,
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
    post_state,
    send,
    slot_state_name,
    step,
)

SECOND = 1_000_000_000
OK = outcome_pb2.DIAGNOSTIC_CODE_OK


def t(seconds: int) -> int:
    """Input time ``seconds`` after the base time."""
    return BASE_TIME_NS + seconds * SECOND


def require_ok(outcome: outcome_pb2.Outcome) -> outcome_pb2.Outcome:
    assert outcome.accepted, f"{outcome_pb2.DiagnosticCode.Name(outcome.code)}: {outcome.message}"
    assert outcome.code == OK
    return outcome


def transitions(outcome: outcome_pb2.Outcome) -> list[tuple[str, str, str]]:
    return [
        (
            slot_state_name(tr.from_state),
            slot_state_name(tr.to_state),
            outcome_pb2.TransitionCause.Name(tr.cause),
        )
        for tr in outcome.transitions
    ]


def violation_fields(outcome: outcome_pb2.Outcome) -> list[str]:
    return [v.field for v in outcome.violations]


def open_position(kernel: pink_kernel.Kernel) -> str:
    """Instruments, a BTC mark at 50000 and a filled 0.01 BTC long on slot 0; returns its order id."""
    require_ok(send(kernel, instrument_update(), time_ns=t(0)))
    require_ok(send(kernel, mark_price(BTC, "50000"), time_ns=t(1)))
    cid = placed_order_id(require_ok(send(kernel, enter("i-1", 0, size="0.01", leverage="10"), time_ns=t(2))))
    require_ok(send(kernel, accepted(cid, "e-1", venue_order_id="v-1", time_ns=t(3)), time_ns=t(3)))
    require_ok(
        send(
            kernel,
            fill(cid, "e-2", quantity="0.01", price="50000", cumulative="0.01", fee="0.2", time_ns=t(4)),
            time_ns=t(4),
        )
    )
    return cid


# ----------------------------------------------------------------------------- construction


def test_a_valid_config_builds_a_fresh_kernel() -> None:
    kernel = new_kernel()

    assert kernel.last_sequence == 0
    state_hash = kernel.state_hash()
    assert len(state_hash) == 64
    assert set(state_hash) <= set(string.hexdigits.lower())
    kernel.check_invariants()
    assert "pk" in repr(kernel)
    # Same config, same state: the hash is a pure function of the state.
    assert new_kernel().state_hash() == state_hash
    snapshot = snapshot_pb2.KernelSnapshot.FromString(kernel.snapshot())
    assert snapshot.config == default_config()
    assert len(snapshot.slots) == 10
    assert num(snapshot.account.capital) == Decimal("10000")


def test_an_invalid_config_raises_kernel_error_naming_every_field() -> None:
    config = default_config()
    config.kernel_id = "PK!"
    config.initial_control.max_leverage.value = "2.5"

    with pytest.raises(pink_kernel.KernelError) as raised:
        new_kernel(config)

    error = raised.value
    assert isinstance(error, ValueError)
    assert "config.kernel_id: " in str(error)
    assert "config.initial_control.max_leverage: " in str(error)
    fields = [field for field, _ in error.violations]
    assert fields == ["config.kernel_id", "config.initial_control.max_leverage"]


def test_bytes_that_are_not_a_config_raise_kernel_error() -> None:
    with pytest.raises(pink_kernel.KernelError, match="KernelConfig"):
        pink_kernel.Kernel(b"\xff\xff\xff\xff")


def test_the_module_exposes_its_exceptions_as_value_errors() -> None:
    assert issubclass(pink_kernel.KernelError, ValueError)
    assert issubclass(pink_kernel.DecodeError, ValueError)
    assert not issubclass(pink_kernel.DecodeError, pink_kernel.KernelError)
    assert pink_kernel.KernelError.__module__ == "pink_kernel"
    assert pink_kernel.__version__


# ----------------------------------------------------------------------------- a whole trade


def test_a_market_trade_round_trip_through_the_binding() -> None:
    kernel = new_kernel()

    outcome = require_ok(send(kernel, instrument_update(), time_ns=t(0)))
    assert outcome.sequence == 1
    outcome = require_ok(send(kernel, mark_price(BTC, "50000"), time_ns=t(1)))
    assert outcome.sequence == 2

    # ENTER: IDLE -> ENTRY_PENDING, one PlaceOrder.
    outcome = require_ok(send(kernel, enter("i-1", 0, size="0.01", leverage="10"), time_ns=t(2)))
    assert outcome.sequence == 3
    assert transitions(outcome) == [("SLOT_STATE_IDLE", "SLOT_STATE_ENTRY_PENDING", "TRANSITION_CAUSE_ENTER_INTENT")]
    assert len(outcome.commands) == 1
    command = outcome.commands[0]
    assert command.WhichOneof("command") == "place_order"
    place = command.place_order
    entry_id = place.client_order_id
    assert entry_id == "pk-1"
    assert command.idempotency_key == entry_id
    assert command.slot_id == 0
    trade_id = command.trade_id
    assert trade_id == "pk-t1"
    assert place.symbol == BTC
    assert place.side == types_pb2.ORDER_SIDE_BUY
    assert place.order_type == types_pb2.ORDER_TYPE_MARKET
    assert num(place.quantity) == Decimal("0.01")
    assert num(place.leverage) == Decimal("10")
    assert place.purpose == types_pb2.ORDER_PURPOSE_ENTRY
    assert place.position_side == types_pb2.SIDE_LONG
    assert not place.reduce_only
    assert outcome.transitions[0].trade_id == trade_id
    assert outcome.transitions[0].client_order_id == entry_id
    assert post_state(kernel, outcome).account.active_slots == 1
    assert not outcome.ledger_entries

    # The venue acknowledges: ENTRY_PENDING -> ENTRY_WORKING.
    outcome = require_ok(send(kernel, accepted(entry_id, "e-1", venue_order_id="v-1", time_ns=t(3)), time_ns=t(3)))
    assert transitions(outcome) == [
        ("SLOT_STATE_ENTRY_PENDING", "SLOT_STATE_ENTRY_WORKING", "TRANSITION_CAUSE_ORDER_ACCEPTED")
    ]

    # Fill at 50000 with a 0.2 USDT fee: ENTRY_WORKING -> POSITION_OPEN, one FEE entry.
    entry_fill = fill(entry_id, "e-2", quantity="0.01", price="50000", cumulative="0.01", fee="0.2", time_ns=t(4))
    outcome = require_ok(send(kernel, entry_fill, time_ns=t(4)))
    assert outcome.sequence == 5
    assert transitions(outcome) == [("SLOT_STATE_ENTRY_WORKING", "SLOT_STATE_POSITION_OPEN", "TRANSITION_CAUSE_FILL")]
    assert len(outcome.ledger_entries) == 1
    fee = outcome.ledger_entries[0]
    assert fee.kind == account_pb2.LEDGER_ENTRY_KIND_FEE
    assert (num(fee.amount), num(fee.capital_before), num(fee.capital_after)) == (
        Decimal("-0.2"),
        Decimal("10000"),
        Decimal("9999.8"),
    )
    assert (fee.ledger_sequence, fee.input_sequence, fee.slot_id) == (1, 5, 0)
    assert (fee.trade_id, fee.client_order_id, fee.venue_event_id, fee.symbol) == (trade_id, entry_id, "e-2", BTC)
    account = post_state(kernel, outcome).account
    assert num(account.capital) == Decimal("9999.8")
    assert num(account.fees) == Decimal("0.2")
    assert num(account.realized_pnl) == Decimal("0")
    assert num(account.unrealized_pnl) == Decimal("0")
    assert num(account.equity) == Decimal("9999.8")
    (slot,) = post_state(kernel, outcome).slots
    assert slot.state == slot_pb2.SLOT_STATE_POSITION_OPEN
    assert num(slot.position_size) == Decimal("0.01")
    assert num(slot.entry_average_price) == Decimal("50000")
    assert num(slot.cost_basis) == Decimal("500")
    assert num(slot.fees) == Decimal("0.2")

    # The mark moves to 50500: unrealized PnL 0.01 x 500 = 5.
    outcome = require_ok(send(kernel, mark_price(BTC, "50500"), time_ns=t(5)))
    assert outcome.revalued_symbol == BTC
    assert num(post_state(kernel, outcome).account.unrealized_pnl) == Decimal("5")
    assert num(post_state(kernel, outcome).account.equity) == Decimal("10004.8")
    marked = snapshot_pb2.KernelSnapshot.FromString(kernel.snapshot()).slots[0]
    assert num(marked.unrealized_pnl) == Decimal("5")

    # EXIT: POSITION_OPEN -> EXIT_PENDING, a reduce-only SELL of the whole position.
    outcome = require_ok(send(kernel, exit_intent("i-2", 0), time_ns=t(6)))
    assert transitions(outcome) == [
        ("SLOT_STATE_POSITION_OPEN", "SLOT_STATE_EXIT_PENDING", "TRANSITION_CAUSE_EXIT_INTENT")
    ]
    exit_id = placed_order_id(outcome)
    assert exit_id == "pk-2"
    place = outcome.commands[0].place_order
    assert place.side == types_pb2.ORDER_SIDE_SELL
    assert place.reduce_only
    assert place.purpose == types_pb2.ORDER_PURPOSE_EXIT
    assert num(place.quantity) == Decimal("0.01")

    outcome = require_ok(send(kernel, accepted(exit_id, "e-3", venue_order_id="v-2", time_ns=t(7)), time_ns=t(7)))
    assert transitions(outcome) == [
        ("SLOT_STATE_EXIT_PENDING", "SLOT_STATE_EXIT_WORKING", "TRANSITION_CAUSE_ORDER_ACCEPTED")
    ]

    # Exit fill at 51000, fee 0.204: gross PnL 0.01 x (51000 - 50000) = 10, then the fee.
    exit_fill = fill(exit_id, "e-4", quantity="0.01", price="51000", cumulative="0.01", fee="0.204", time_ns=t(8))
    outcome = require_ok(send(kernel, exit_fill, time_ns=t(8)))
    assert outcome.sequence == 9
    assert transitions(outcome) == [("SLOT_STATE_EXIT_WORKING", "SLOT_STATE_CLOSED", "TRANSITION_CAUSE_FILL")]
    ledger = [
        (
            account_pb2.LedgerEntryKind.Name(e.kind),
            num(e.amount),
            num(e.capital_before),
            num(e.capital_after),
            e.ledger_sequence,
        )
        for e in outcome.ledger_entries
    ]
    assert ledger == [
        ("LEDGER_ENTRY_KIND_REALIZED_PNL", Decimal("10"), Decimal("9999.8"), Decimal("10009.8"), 2),
        ("LEDGER_ENTRY_KIND_FEE", Decimal("-0.204"), Decimal("10009.8"), Decimal("10009.596"), 3),
    ]
    account = post_state(kernel, outcome).account
    assert num(account.capital) == Decimal("10009.596")
    assert num(account.realized_pnl) == Decimal("10")
    assert num(account.fees) == Decimal("0.404")
    assert num(account.unrealized_pnl) == Decimal("0")
    assert num(account.equity) == Decimal("10009.596")
    assert (account.trades_closed, account.active_slots, account.ledger_sequence) == (1, 0, 3)
    # Conservation, exactly: capital = initial + realized - fees + funding + adjustments.
    assert num(account.capital) == (
        num(account.initial_capital)
        + num(account.realized_pnl)
        - num(account.fees)
        + num(account.funding)
        + num(account.adjustments)
    )
    (slot,) = post_state(kernel, outcome).slots
    assert slot.state == slot_pb2.SLOT_STATE_CLOSED
    assert slot.trade_id == trade_id
    assert num(slot.position_size) == Decimal("0")
    assert num(slot.realized_pnl) == Decimal("10")
    assert num(slot.fees) == Decimal("0.404")
    assert num(slot.net_pnl) == Decimal("9.596")
    assert num(slot.exit_average_price) == Decimal("51000")
    assert not slot.HasField("active_order")

    assert kernel.last_sequence == 9
    kernel.check_invariants()


# ----------------------------------------------------------------------------- rejections


def test_undecodable_bytes_raise_decode_error_and_change_nothing() -> None:
    kernel = new_kernel()
    open_position(kernel)
    before = (kernel.state_hash(), kernel.last_sequence)

    for garbage in (b"\xff", b"\x0a\xff\xff\xff\xff\x0f", b"\x12\x05ab"):
        with pytest.raises(pink_kernel.DecodeError, match="KernelInput"):
            kernel.step(garbage)
        assert (kernel.state_hash(), kernel.last_sequence) == before

    # The kernel goes on as if nothing happened.
    outcome = require_ok(send(kernel, mark_price(BTC, "50100"), time_ns=t(10)))
    assert outcome.sequence == before[1] + 1


def test_an_invalid_field_is_an_invalid_input_outcome_naming_it() -> None:
    kernel = new_kernel()
    require_ok(send(kernel, instrument_update(), time_ns=t(0)))
    before = (kernel.state_hash(), kernel.last_sequence)

    outcome = send(kernel, enter("i-1", 0, size="0.01", leverage="2.5", reference_price="50000"), time_ns=t(1))
    assert not outcome.accepted
    assert outcome.code == outcome_pb2.DIAGNOSTIC_CODE_INVALID_INPUT
    assert violation_fields(outcome) == ["intent.leverage"]
    assert "intent.leverage" in outcome.message
    assert outcome.sequence == before[1]
    assert not outcome.commands
    assert not outcome.transitions
    assert (kernel.state_hash(), kernel.last_sequence) == before

    # Several bad fields at once are all named; a missing time too.
    bad = kernel_input(mark_price(ETH, "-1"))
    bad.ClearField("time")
    outcome = step(kernel, bad)
    assert outcome.code == outcome_pb2.DIAGNOSTIC_CODE_INVALID_INPUT
    assert sorted(violation_fields(outcome)) == ["mark_price.price", "time"]
    assert (kernel.state_hash(), kernel.last_sequence) == before


def test_a_business_rejection_changes_nothing() -> None:
    kernel = new_kernel()
    require_ok(send(kernel, instrument_update(), time_ns=t(0)))
    before = kernel.state_hash()

    outcome = send(kernel, enter("i-1", 0, size="0.01"), time_ns=t(1))  # no mark, no reference price
    assert outcome.code == outcome_pb2.DIAGNOSTIC_CODE_NO_REFERENCE_PRICE
    assert not outcome.accepted
    assert kernel.state_hash() == before
    assert kernel.last_sequence == 1


# ----------------------------------------------------------------------------- snapshots


def test_snapshot_and_restore_preserve_the_state_and_continue_identically() -> None:
    kernel = new_kernel()
    cid = open_position(kernel)

    restored = pink_kernel.Kernel.restore(kernel.snapshot())
    assert restored.state_hash() == kernel.state_hash()
    assert restored.last_sequence == kernel.last_sequence
    assert restored.snapshot() == kernel.snapshot()
    restored.check_invariants()

    # A duplicate of an applied event is recognised after the restore too.
    duplicate = kernel_input(accepted(cid, "e-1", venue_order_id="v-1", time_ns=t(3)), time_ns=t(9))
    assert step(kernel, duplicate) == step(restored, duplicate)
    assert step(restored, duplicate).code == outcome_pb2.DIAGNOSTIC_CODE_DUPLICATE_EVENT

    tail = [
        kernel_input(mark_price(BTC, "50500"), time_ns=t(10)),
        kernel_input(exit_intent("i-2", 0), time_ns=t(11)),
        kernel_input(accepted("pk-2", "e-3", venue_order_id="v-2", time_ns=t(12)), time_ns=t(12)),
        kernel_input(
            fill("pk-2", "e-4", quantity="0.01", price="49000", cumulative="0.01", fee="0.196", time_ns=t(13)),
            time_ns=t(13),
        ),
    ]
    for item in tail:
        original = kernel.step(item.SerializeToString())
        replayed = restored.step(item.SerializeToString())
        assert original == replayed
        assert outcome_pb2.Outcome.FromString(original).accepted
        assert kernel.state_hash() == restored.state_hash()
    final = snapshot_pb2.KernelSnapshot.FromString(restored.snapshot())
    assert final.slots[0].state == slot_pb2.SLOT_STATE_CLOSED
    # 10000 - 0.2 (entry fee) - 10 (loss) - 0.196 (exit fee)
    assert num(final.account.capital) == Decimal("9989.604")


def test_an_invalid_snapshot_raises_kernel_error() -> None:
    kernel = new_kernel()
    open_position(kernel)
    snapshot = snapshot_pb2.KernelSnapshot.FromString(kernel.snapshot())

    with pytest.raises(pink_kernel.KernelError, match="KernelSnapshot"):
        pink_kernel.Kernel.restore(b"\xff\xff")

    wrong_version = snapshot_pb2.KernelSnapshot()
    wrong_version.CopyFrom(snapshot)
    wrong_version.format_version = 99
    with pytest.raises(pink_kernel.KernelError, match="format_version") as raised:
        pink_kernel.Kernel.restore(wrong_version.SerializeToString())
    assert [field for field, _ in raised.value.violations] == ["format_version"]

    # Capital that breaks conservation is refused, never adopted.
    corrupt = snapshot_pb2.KernelSnapshot()
    corrupt.CopyFrom(snapshot)
    corrupt.account.capital.value = "12345"
    with pytest.raises(pink_kernel.KernelError, match="capital"):
        pink_kernel.Kernel.restore(corrupt.SerializeToString())


# ----------------------------------------------------------------------------- threads


def test_threads_hammering_one_kernel_serialize_safely() -> None:
    threads = 4
    rounds = 100  # trades per thread, each 7 accepted inputs (with a mark) and 2 rejected ones
    kernel = new_kernel()
    require_ok(send(kernel, instrument_update()))
    require_ok(send(kernel, mark_price(BTC, "50000")))
    setup = kernel.last_sequence
    start = threading.Barrier(threads)

    def trader(slot: int) -> tuple[int, list[int]]:
        """Runs ``rounds`` whole trades on its own slot; returns (accepted count, sequences seen)."""
        accepted_count = 0
        sequences: list[int] = []

        def go(payload: Payload) -> outcome_pb2.Outcome:
            nonlocal accepted_count
            outcome = outcome_pb2.Outcome.FromString(kernel.step(kernel_input(payload).SerializeToString()))
            if outcome.accepted:
                accepted_count += 1
                sequences.append(outcome.sequence)
            return outcome

        start.wait()
        for n in range(rounds):
            tag = f"s{slot}-{n}"
            entry = placed_order_id(require_ok(go(enter(f"{tag}-in", slot, size="0.001", leverage="5"))))
            # Rejected inputs interleaved with the trade: a duplicate intent and an unknown order.
            assert go(enter(f"{tag}-in", slot, size="0.001", leverage="5")).code in {
                outcome_pb2.DIAGNOSTIC_CODE_DUPLICATE_INTENT,
                outcome_pb2.DIAGNOSTIC_CODE_SLOT_BUSY,
            }
            unknown = accepted(f"nope-{tag}", f"{tag}-x", venue_order_id=f"{tag}-vx", time_ns=BASE_TIME_NS)
            assert go(unknown).code == outcome_pb2.DIAGNOSTIC_CODE_UNKNOWN_ORDER
            require_ok(go(accepted(entry, f"{tag}-e1", venue_order_id=f"{tag}-v1", time_ns=BASE_TIME_NS)))
            entry_fill = fill(
                entry,
                f"{tag}-e2",
                quantity="0.001",
                price="50000",
                cumulative="0.001",
                fee="0.02",
                time_ns=BASE_TIME_NS,
            )
            require_ok(go(entry_fill))
            require_ok(go(mark_price(BTC, "50000")))
            exit_id = placed_order_id(require_ok(go(exit_intent(f"{tag}-out", slot))))
            require_ok(go(accepted(exit_id, f"{tag}-e3", venue_order_id=f"{tag}-v2", time_ns=BASE_TIME_NS)))
            exit_fill = fill(
                exit_id,
                f"{tag}-e4",
                quantity="0.001",
                price="50100",
                cumulative="0.001",
                fee="0.02",
                time_ns=BASE_TIME_NS,
            )
            closed = require_ok(go(exit_fill))
            assert closed.transitions[-1].to_state == slot_pb2.SLOT_STATE_CLOSED
            if n % 10 == 0:
                kernel.check_invariants()
                kernel.state_hash()
        return accepted_count, sequences

    previous_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads as often as possible
    try:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            results = list(pool.map(trader, range(threads)))
    finally:
        sys.setswitchinterval(previous_interval)

    total_accepted = sum(count for count, _ in results)
    assert total_accepted == threads * rounds * 7
    assert kernel.last_sequence == setup + total_accepted
    all_sequences = sorted(seq for _, seqs in results for seq in seqs)
    assert all_sequences == list(range(setup + 1, kernel.last_sequence + 1))
    kernel.check_invariants()
    account = snapshot_pb2.KernelSnapshot.FromString(kernel.snapshot()).account
    trades = threads * rounds
    assert account.trades_closed == trades
    # Each trade: +0.1 gross (0.001 x 100) - 0.04 fees.
    assert num(account.capital) == Decimal("10000") + trades * (Decimal("0.1") - Decimal("0.04"))


# ----------------------------------------------------------------------------- fuzzing


def _valid_inputs() -> list[kernel_input_pb2.KernelInput]:
    """The inputs of a whole trade, each valid in the state the ones before it leave."""
    return [
        kernel_input(instrument_update(), time_ns=t(0)),
        kernel_input(mark_price(BTC, "50000"), time_ns=t(1)),
        kernel_input(enter("i-1", 0, size="0.01", leverage="10", exit_leg_ratios=["0.5", "0.5"]), time_ns=t(2)),
        kernel_input(accepted("pk-1", "e-1", venue_order_id="v-1", time_ns=t(3)), time_ns=t(3)),
        kernel_input(
            fill(
                "pk-1",
                "e-2",
                quantity="0.004",
                price="50000",
                cumulative="0.004",
                fee="0.1",
                time_ns=t(4),
                partial=True,
            ),
            time_ns=t(4),
        ),
        kernel_input(
            fill("pk-1", "e-3", quantity="0.006", price="50010", cumulative="0.01", fee="0.1", time_ns=t(5)),
            time_ns=t(5),
        ),
        kernel_input(mark_price(BTC, "50500"), time_ns=t(6)),
        kernel_input(exit_intent("i-2", 0), time_ns=t(7)),
        kernel_input(accepted("pk-2", "e-4", venue_order_id="v-2", time_ns=t(8)), time_ns=t(8)),
        kernel_input(kernel_input_pb2.Timer(), time_ns=t(100)),
    ]


@cache
def _corpus() -> tuple[bytes, ...]:
    return tuple(m.SerializeToString() for m in _valid_inputs())


@cache
def _prefix_snapshots() -> tuple[bytes, ...]:
    """Snapshot after each prefix of the valid inputs: states to fuzz against."""
    kernel = new_kernel()
    snapshots = [kernel.snapshot()]
    for raw in _corpus():
        outcome = outcome_pb2.Outcome.FromString(kernel.step(raw))
        assert outcome.accepted, outcome.message
        snapshots.append(kernel.snapshot())
    return tuple(snapshots)


def _step_checked(kernel: pink_kernel.Kernel, raw: bytes) -> None:
    """Steps ``raw``: only DecodeError may be raised; a rejection changes nothing; invariants hold."""
    before_hash = kernel.state_hash()
    before_sequence = kernel.last_sequence
    try:
        result = kernel.step(raw)
    except pink_kernel.DecodeError:
        event("DecodeError")
        assert kernel.state_hash() == before_hash
        assert kernel.last_sequence == before_sequence
        return
    outcome = outcome_pb2.Outcome.FromString(result)
    event(outcome_pb2.DiagnosticCode.Name(outcome.code))
    assert outcome.accepted == (outcome.code == OK)
    if outcome.accepted:
        assert outcome.sequence == before_sequence + 1
        assert kernel.last_sequence == before_sequence + 1
    else:
        assert outcome.code != outcome_pb2.DIAGNOSTIC_CODE_UNSPECIFIED
        assert outcome.sequence == before_sequence
        assert not outcome.commands
        assert not outcome.ledger_entries
        assert not outcome.transitions
        assert kernel.state_hash() == before_hash
        assert kernel.last_sequence == before_sequence
    kernel.check_invariants()


states = st.integers(min_value=0, max_value=len(_valid_inputs()))


@given(state=states, raw=st.binary(max_size=256))
def test_fuzz_random_bytes(state: int, raw: bytes) -> None:
    kernel = pink_kernel.Kernel.restore(_prefix_snapshots()[state])
    _step_checked(kernel, raw)


@st.composite
def byte_mutations(draw: st.DrawFn) -> bytes:
    """A valid input with bytes flipped, inserted, deleted, or truncated."""
    raw = bytearray(draw(st.sampled_from(_corpus())))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        operation = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "splice"]))
        position = draw(st.integers(min_value=0, max_value=max(len(raw) - 1, 0)))
        if operation == "flip" and raw:
            raw[position] ^= draw(st.integers(min_value=1, max_value=255))
        elif operation == "insert":
            raw[position:position] = draw(st.binary(min_size=1, max_size=8))
        elif operation == "delete" and raw:
            del raw[position : position + draw(st.integers(min_value=1, max_value=8))]
        elif operation == "truncate":
            del raw[position:]
        else:
            raw += draw(st.sampled_from(_corpus()))
    return bytes(raw)


@given(state=states, raw=byte_mutations())
def test_fuzz_byte_mutations_of_valid_inputs(state: int, raw: bytes) -> None:
    kernel = pink_kernel.Kernel.restore(_prefix_snapshots()[state])
    _step_checked(kernel, raw)


_NASTY_DECIMALS = [
    "",
    "0",
    "-0",
    "-1",
    "NaN",
    "inf",
    "-Infinity",
    "1e3",
    "+1",
    " 1",
    "1 ",
    "1.",
    ".5",
    "0.0000000000000000001",
    "79228162514264337593543950336",
    "99999999999999999999999999999999",
    "1000000000001",
    "0x10",
    "1\x00",
    "١٢٣",
    "0.001",
    "50000",
    "10",
]


_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)
_INTEGER_RANGES: dict[int, tuple[int, int]] = {
    descriptor.FieldDescriptor.TYPE_ENUM: _INT32,  # open enums: unknown values included
    descriptor.FieldDescriptor.TYPE_INT32: _INT32,
    descriptor.FieldDescriptor.TYPE_SINT32: _INT32,
    descriptor.FieldDescriptor.TYPE_SFIXED32: _INT32,
    descriptor.FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    descriptor.FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    descriptor.FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    descriptor.FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}


def _scalar_values(field: descriptor.FieldDescriptor) -> st.SearchStrategy[object]:
    """Hostile values for one scalar field: bad decimals, bad ids, any number of its wire type."""
    if field.type == descriptor.FieldDescriptor.TYPE_STRING:
        parent = field.containing_type
        if parent is not None and parent.full_name == "pink.v1.Decimal":
            return st.one_of(st.sampled_from(_NASTY_DECIMALS), st.text(max_size=40))
        return st.one_of(
            st.sampled_from(["", "pk-1", "pk-2", "v-1", "e-1", BTC, ETH, "USDT", "x" * 65, "a\x00b", "BTC-usdt"]),
            st.text(max_size=70),
        )
    if field.type == descriptor.FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    low, high = _INTEGER_RANGES.get(field.type, _INT64)
    return st.integers(min_value=low, max_value=high)


def _scalar_slots(msg: message.Message) -> Iterator[tuple[message.Message, descriptor.FieldDescriptor]]:
    """Every singular scalar field of ``msg`` and its set sub-messages, set or not."""
    for any_field in msg.DESCRIPTOR.fields:
        field = cast("descriptor.FieldDescriptor", any_field)
        repeated = field.is_repeated
        if field.type == descriptor.FieldDescriptor.TYPE_MESSAGE:
            if field.message_type is None or field.message_type.GetOptions().map_entry:
                continue
            if repeated:
                for child in getattr(msg, field.name):
                    yield from _scalar_slots(child)
            elif msg.HasField(field.name):
                yield from _scalar_slots(getattr(msg, field.name))
        elif not repeated and field.type != descriptor.FieldDescriptor.TYPE_BYTES:
            yield msg, field


@st.composite
def field_mutations(draw: st.DrawFn) -> tuple[int, bytes]:
    """A valid input (and the state it is valid in) with some fields set to hostile values."""
    index = draw(st.integers(min_value=0, max_value=len(_valid_inputs()) - 1))
    mutated = kernel_input_pb2.KernelInput()
    mutated.CopyFrom(_valid_inputs()[index])
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        slots = list(_scalar_slots(mutated))
        target, field = draw(st.sampled_from(slots))
        value = draw(_scalar_values(field))
        setattr(target, field.name, value)
    return index, mutated.SerializeToString()


@given(case=field_mutations())
def test_fuzz_field_mutations_of_valid_inputs(case: tuple[int, bytes]) -> None:
    state, raw = case
    kernel = pink_kernel.Kernel.restore(_prefix_snapshots()[state])
    _step_checked(kernel, raw)


@given(raws=st.lists(st.one_of(byte_mutations(), st.sampled_from(_corpus())), min_size=1, max_size=12))
def test_fuzz_sequences_keep_invariants(raws: list[bytes]) -> None:
    kernel = new_kernel()
    for raw in raws:
        _step_checked(kernel, raw)


def test_the_fuzz_corpus_is_a_valid_trade() -> None:
    snapshots = _prefix_snapshots()
    assert len(snapshots) == len(_valid_inputs()) + 1
    final = snapshot_pb2.KernelSnapshot.FromString(snapshots[-1])
    # The timer found the exit order past its ack deadline and queried it.
    assert final.slots[0].state == slot_pb2.SLOT_STATE_EXIT_WORKING
    assert final.last_sequence == len(_valid_inputs())
