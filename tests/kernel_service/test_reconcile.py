"""Reconciles with the venue: the pure builder, and the link's run-time reconciles.

Run-time reconciles run against the venue double with a real kernel over a real journal; the
tests wait on the link's recorded outcomes or on the kernel's commits, never on a clock.
"""

from __future__ import annotations

import logging
import time
from decimal import Decimal

import grpc.aio
import pytest
from structlog.testing import capture_logs

from services.common.proto import kernel_input_pb2, outcome_pb2, slot_pb2, types_pb2, venue_event_pb2, venue_service_pb2
from services.kernel.venue_reconcile import Finding, build_reconcile
from tests.kernel.helpers import enter, exit_intent
from tests.kernel_service.conftest import KernelHarness
from tests.kernel_service.link_helpers import OPEN, WAIT, in_state, linked, logged, no_order, place, state
from tests.kernel_service.venue_double import BTC, ETH, VenueDouble

pytestmark = pytest.mark.anyio
OK = outcome_pb2.DIAGNOSTIC_CODE_OK
CONFLICT = outcome_pb2.DIAGNOSTIC_CODE_VERSION_CONFLICT


# ---------------------------------------------------------------------------------- build_reconcile


def open_slot(
    slot_id: int, symbol: str, size: str, side: types_pb2.Side.ValueType = types_pb2.SIDE_LONG
) -> slot_pb2.Slot:
    return slot_pb2.Slot(
        slot_id=slot_id,
        state=OPEN,
        symbol=symbol,
        side=side,
        position_size=types_pb2.Decimal(value=size),
    )


def free_slot(slot_id: int) -> slot_pb2.Slot:
    return slot_pb2.Slot(slot_id=slot_id, state=slot_pb2.SLOT_STATE_IDLE)


def position(
    symbol: str, size: str, side: types_pb2.Side.ValueType = types_pb2.SIDE_LONG
) -> venue_service_pb2.VenuePosition:
    return venue_service_pb2.VenuePosition(
        symbol=symbol,
        side=side,
        size=types_pb2.Decimal(value=size),
        entry_price=types_pb2.Decimal(value="100"),
    )


def balance(value: str) -> venue_service_pb2.GetBalanceResponse:
    return venue_service_pb2.GetBalanceResponse(asset="USDT", wallet_balance=types_pb2.Decimal(value=value))


def found(findings: list[Finding], event: str) -> list[Finding]:
    return [f for f in findings if f.event == event]


@pytest.mark.parametrize(("venue_size", "error"), [("0.002", False), ("0.003", True)])
def test_build_reconcile_leaves_out_slots_sharing_a_symbol(venue_size: str, error: bool) -> None:
    slots = {0: open_slot(0, BTC, "0.001"), 1: open_slot(1, BTC, "0.001"), 2: free_slot(2)}
    reconcile, findings = build_reconcile("r", slots, [], [position(BTC, venue_size)], balance("10"))

    assert list(reconcile.slots) == []
    unattributed = found(findings, "reconcile_cannot_attribute_position")
    assert [(f.level, f.fields["slot_ids"]) for f in unattributed] == ([(logging.ERROR, [0, 1])] if error else [])
    assert reconcile.wallet_balance.value == "10"


def test_build_reconcile_closes_a_lone_slot_the_venue_has_no_position_for() -> None:
    slots = {0: open_slot(0, ETH, "1.5"), 1: free_slot(1)}
    reconcile, findings = build_reconcile("r", slots, [], [], None)

    assert [(t.slot_id, t.position_size.value, t.HasField("entry_price")) for t in reconcile.slots] == [(0, "0", False)]
    assert found(findings, "reconcile_venue_has_no_position")[0].level == logging.WARNING
    assert found(findings, "reconcile_without_balance")
    assert not reconcile.HasField("wallet_balance")


def test_build_reconcile_reports_positions_it_cannot_place_and_foreign_orders() -> None:
    slots = {0: open_slot(0, BTC, "0.001")}
    foreign = venue_service_pb2.VenueOrder(
        client_order_id="someone-else", symbol=BTC, status=slot_pb2.ORDER_STATUS_ACCEPTED
    )
    reconcile, findings = build_reconcile(
        "r", slots, [foreign], [position(BTC, "0.001"), position(ETH, "2")], balance("1")
    )

    assert [(t.slot_id, t.symbol, t.position_size.value) for t in reconcile.slots] == [(0, BTC, "0.001")]
    assert [f.level for f in found(findings, "reconcile_no_free_slot_for_venue_position")] == [logging.ERROR]
    assert [f.fields["client_order_id"] for f in found(findings, "reconcile_foreign_order")] == ["someone-else"]


def test_build_reconcile_lists_the_venue_truth_of_working_orders() -> None:
    order = slot_pb2.Order(client_order_id="pk-1", symbol=BTC, status=slot_pb2.ORDER_STATUS_ACCEPTED)
    working = slot_pb2.Slot(slot_id=0, state=slot_pb2.SLOT_STATE_ENTRY_WORKING, symbol=BTC, active_order=order)
    unlisted = slot_pb2.Slot(
        slot_id=1,
        state=slot_pb2.SLOT_STATE_ENTRY_PENDING,
        symbol=ETH,
        active_order=slot_pb2.Order(client_order_id="pk-2", symbol=ETH),
    )
    listed = venue_service_pb2.VenueOrder(
        client_order_id="pk-1",
        venue_order_id="v9",
        symbol=BTC,
        status=slot_pb2.ORDER_STATUS_PARTIALLY_FILLED,
        filled_quantity=types_pb2.Decimal(value="0.001"),
    )
    reconcile, findings = build_reconcile("r", {0: working, 1: unlisted}, [listed], [position(BTC, "0.001")], None)

    first, second = reconcile.slots
    assert (first.slot_id, first.position_size.value, first.open_order.venue_order_id) == (0, "0", "v9")
    assert first.open_order.filled_quantity.value == "0.001"
    assert (second.slot_id, second.HasField("open_order")) == (1, False)
    assert found(findings, "reconcile_order_not_open_at_venue")[0].fields["client_order_id"] == "pk-2"
    assert found(findings, "reconcile_foreign_order") == []


def test_build_reconcile_pins_slot_versions_and_the_capital_it_compared() -> None:
    slots = {0: open_slot(0, BTC, "0.001"), 1: free_slot(1)}
    slots[0].version, slots[1].version = 7, 3
    capital = types_pb2.Decimal(value="9999.5")
    reconcile, _ = build_reconcile(
        "r", slots, [], [position(BTC, "0.001"), position(ETH, "2")], balance("10"), capital=capital
    )

    assert [(t.slot_id, t.expected_version) for t in reconcile.slots] == [(0, 7), (1, 3)]
    assert (reconcile.wallet_balance.value, reconcile.expected_capital.value) == ("10", "9999.5")


def test_build_reconcile_defers_the_balance_while_an_order_works() -> None:
    order = slot_pb2.Order(client_order_id="pk-1", symbol=BTC, status=slot_pb2.ORDER_STATUS_ACCEPTED)
    working = slot_pb2.Slot(slot_id=0, state=slot_pb2.SLOT_STATE_EXIT_WORKING, symbol=BTC, active_order=order)
    reconcile, findings = build_reconcile(
        "r", {0: working}, [], [], balance("10"), capital=types_pb2.Decimal(value="11")
    )

    assert not reconcile.HasField("wallet_balance"), "a fill in flight would be counted twice"
    assert not reconcile.HasField("expected_capital")
    (deferred,) = found(findings, "reconcile_balance_deferred")
    assert deferred.fields["working_orders"] == ["pk-1"]
    assert (deferred.fields["venue_balance"], deferred.fields["kernel_capital"]) == ("10", "11")


# ---------------------------------------------------------------------------------- run time


def unknown_order_event(event_id: str) -> venue_event_pb2.VenueEvent:
    """A report about an order the kernel never placed: refused, with a reconcile-needed anomaly."""
    event = venue_event_pb2.VenueEvent(
        kind=venue_event_pb2.VENUE_EVENT_KIND_ORDER_ACCEPTED,
        client_order_id="pk-foreign",
        venue_order_id="v-foreign",
        venue_event_id=event_id,
    )
    event.exchange_time.FromNanoseconds(time.time_ns())
    return event


def runtime_reconciles(kernel: KernelHarness) -> list[outcome_pb2.Outcome]:
    """The kernel's answers to the link's run-time reconciles, in order."""
    return [
        j.committed.outcome
        for j in kernel.core.judged
        if isinstance(j.payload, kernel_input_pb2.Reconcile) and not j.payload.reconcile_id.startswith("startup")
    ]


async def reconciled(kernel: KernelHarness, count: int) -> list[outcome_pb2.Outcome]:
    """Waits until the kernel has judged ``count`` run-time reconciles; returns them."""
    await kernel.core.wait_judged(lambda _: len(runtime_reconciles(kernel)) >= count, WAIT)
    return runtime_reconciles(kernel)[:count]


async def open_through_venue(kernel: KernelHarness, venue: VenueDouble, slot: int, symbol: str = BTC) -> None:
    size, price = ("0.001", "50000") if symbol == BTC else ("0.01", "2500")
    await place(kernel, enter(f"open-{slot}", slot, symbol=symbol, size=size, reference_price=price))
    await state(kernel, slot, lambda s: s.state == OPEN and no_order(s))


async def test_an_anomaly_that_needs_a_reconcile_gets_one(
    kernel: KernelHarness, venue: VenueDouble, venue_channel: grpc.aio.Channel
) -> None:
    async with linked(kernel, venue_channel):
        await open_through_venue(kernel, venue, 0)
        # Someone traded on the account outside PINK: the venue now holds more than the slot.
        venue.set_position(BTC, types_pb2.SIDE_LONG, "0.003", "50000")
        refused = await kernel.core.submit(unknown_order_event("foreign-1"))
        assert refused.outcome.code == outcome_pb2.DIAGNOSTIC_CODE_UNKNOWN_ORDER
        assert refused.outcome.anomalies[0].reconcile_needed
        (outcome,) = await reconciled(kernel, 1)

    assert outcome.code == OK
    slot = kernel.core.view.slots[0]
    assert Decimal(slot.position_size.value) == Decimal("0.003"), "the venue's truth is adopted, in the open"
    assert outcome_pb2.ANOMALY_KIND_POSITION_ADJUSTED in [a.kind for a in outcome.anomalies]


async def test_a_reconcile_overtaken_by_the_kernel_is_refused_and_built_again(
    kernel: KernelHarness, venue: VenueDouble, venue_channel: grpc.aio.Channel
) -> None:
    async with linked(kernel, venue_channel):
        await open_through_venue(kernel, venue, 0)
        gate = venue.hold("ListPositions")
        await kernel.core.submit(unknown_order_event("foreign-1"))
        await venue.wait_for(lambda: bool(venue.requests_of(venue_service_pb2.ListPositionsRequest)), WAIT)
        # While the venue is being read, the slot exits (the double fills it): the snapshot is old.
        exited = await kernel.core.submit(exit_intent("x-0", 0))
        assert exited.accepted
        await state(kernel, 0, in_state(slot_pb2.SLOT_STATE_CLOSED))
        with capture_logs() as captured:
            gate.set()
            first, second = await reconciled(kernel, 2)

    assert first.code == CONFLICT, "built against the open slot's version: refused whole"
    assert [v.field for v in first.violations] == [
        "reconcile.slots[0].expected_version",
        "reconcile.expected_capital",
    ], "the exit's fill changed the slot and the capital"
    assert second.code == OK
    assert kernel.core.view.slots[0].state == slot_pb2.SLOT_STATE_CLOSED, "the old snapshot never reopened it"
    assert logged(captured, "reconcile_superseded")


async def test_a_scheduled_reconcile_finds_the_books_equal(
    kernel: KernelHarness, venue: VenueDouble, venue_channel: grpc.aio.Channel
) -> None:
    async with linked(kernel, venue_channel, reconcile_every=0.05):
        await open_through_venue(kernel, venue, 0)
        await open_through_venue(kernel, venue, 1, ETH)
        before = kernel.core.view.account
        built_after = f"schedule-{kernel.core.view.sequence}"

        def judged_now() -> list[tuple[kernel_input_pb2.Reconcile, outcome_pb2.Outcome]]:
            return [
                (j.payload, j.committed.outcome)
                for j in kernel.core.judged
                if isinstance(j.payload, kernel_input_pb2.Reconcile) and j.payload.reconcile_id == built_after
            ]

        # The first scheduled reconcile built from the state after both trades (one started earlier
        # may still be refused as stale; this one may not).
        await kernel.core.wait_judged(lambda _: bool(judged_now()), WAIT)

    ((sent, outcome),) = judged_now()
    assert outcome.code == OK
    assert sent.HasField("wallet_balance"), "no order works: the balance is compared"
    assert sent.expected_capital == before.capital
    assert not outcome.ledger_entries, "the venue's balance equals the kernel's capital: no adjustment"
    assert not outcome.transitions
    assert kernel.core.view.account.capital == before.capital


async def test_an_unreadable_venue_is_logged_and_tried_again(
    kernel: KernelHarness, venue: VenueDouble, venue_channel: grpc.aio.Channel
) -> None:
    async with linked(kernel, venue_channel):
        venue.fail_next("ListOpenOrders", grpc.StatusCode.PERMISSION_DENIED)
        with capture_logs() as captured:
            await kernel.core.submit(unknown_order_event("foreign-1"))
            (outcome,) = await reconciled(kernel, 1)

    assert outcome.code == OK, "the second attempt reads the venue"
    (failure,) = logged(captured, "reconcile_venue_unreadable")
    assert failure["log_level"] == "error"
    assert "PERMISSION_DENIED" in failure["error"]
