"""Helpers of the VenueLink tests: a running link on a kernel harness, waits on slots, filters of judgements."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, MutableMapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import grpc.aio

from services.common.proto import intent_pb2, outcome_pb2, slot_pb2, types_pb2, venue_event_pb2, venue_service_pb2
from services.kernel.core import Committed, Payload, ViewCache
from services.kernel.venue_link import RetryPolicy, VenueLink
from tests.kernel.helpers import accepted, enter, fill, instrument_update, placed_order_id
from tests.kernel_service.conftest import Judged, KernelHarness
from tests.kernel_service.venue_double import BTC, ETH, VenueDouble

P = TypeVar("P", bound=Payload)

WAIT = 5.0
FAST = RetryPolicy(initial=0.01, cap=0.2, attempts=8)
OPEN = slot_pb2.SLOT_STATE_POSITION_OPEN
DUPLICATE = outcome_pb2.DIAGNOSTIC_CODE_DUPLICATE_EVENT
PlaceRequest = venue_service_pb2.PlaceOrderRequest
CancelRequest = venue_service_pb2.CancelOrderRequest
QueryRequest = venue_service_pb2.QueryOrderRequest
StreamRequest = venue_service_pb2.StreamExecutionsRequest


@asynccontextmanager
async def linked(
    harness: KernelHarness,
    channel: grpc.aio.Channel,
    *,
    retry: RetryPolicy = FAST,
    startup: bool = True,
    run: bool = True,
    reconcile_every: float = 300.0,
    reconcile_spacing: float = 0.05,
) -> AsyncIterator[VenueLink]:
    """A VenueLink on ``harness``: attached, started up, running (each optional), stopped after."""
    link = VenueLink(
        harness.core,
        channel,
        timeout=2.0,
        symbols=[BTC, ETH],
        retry=retry,
        reconcile_every=reconcile_every,
        reconcile_spacing=reconcile_spacing,
    )
    link.attach()
    if startup:
        await link.startup()
    task = asyncio.create_task(link.run(), name="venue-link") if run else None
    try:
        yield link
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def subscribed(venue: VenueDouble, count: int = 1) -> None:
    """Waits until the execution stream has been (re)subscribed ``count`` times."""
    await venue.wait_for(lambda: len(venue.requests_of(StreamRequest)) >= count)


async def state(harness: KernelHarness, slot_id: int, wanted: Callable[[slot_pb2.Slot], bool]) -> slot_pb2.Slot:
    """Waits until slot ``slot_id`` satisfies ``wanted``; returns it."""

    def holds(view: ViewCache) -> bool:
        return wanted(view.slots[slot_id])

    if not holds(harness.core.view):
        assert await harness.core.wait_for(holds, WAIT), harness.core.view.slots[slot_id]
    return harness.core.view.slots[slot_id]


def in_state(wanted: slot_pb2.SlotState.ValueType) -> Callable[[slot_pb2.Slot], bool]:
    return lambda slot: slot.state == wanted


def no_order(slot: slot_pb2.Slot) -> bool:
    return not slot.HasField("active_order")


def events(judged: list[Judged], kind: venue_event_pb2.VenueEventKind.ValueType, cid: str) -> list[Judged]:
    """Judgements of venue events of ``kind`` about order ``cid``."""
    return [
        j
        for j in judged
        if isinstance(j.payload, venue_event_pb2.VenueEvent)
        and j.payload.kind == kind
        and j.payload.client_order_id == cid
    ]


def fills(judged: list[Judged], cid: str) -> list[Judged]:
    return [
        *events(judged, venue_event_pb2.VENUE_EVENT_KIND_FILL, cid),
        *events(judged, venue_event_pb2.VENUE_EVENT_KIND_PARTIAL_FILL, cid),
    ]


def stream_judged(judged: list[Judged], position: str) -> list[Judged]:
    return [j for j in judged if j.stream_position == position]


def limit_enter(intent_id: str, slot: int, size: str = "0.002", price: str = "49000.0") -> intent_pb2.Intent:
    return enter(intent_id, slot, size=size, limit_price=price, time_in_force=types_pb2.TIME_IN_FORCE_GTC)


def cancel(intent_id: str, slot: int) -> intent_pb2.Intent:
    return intent_pb2.Intent(intent_id=intent_id, action=intent_pb2.INTENT_ACTION_CANCEL, slot_id=slot)


async def place(harness: KernelHarness, intent: intent_pb2.Intent) -> str:
    """Submits an ENTER that must be accepted; returns its client order id."""
    committed = await harness.core.submit(intent)
    assert committed.accepted, committed.outcome
    return placed_order_id(committed.outcome)


async def open_position_without_venue(harness: KernelHarness, slot: int, size: str = "0.001") -> str:
    """Drives a slot to POSITION_OPEN by submitting the venue's events directly (no link)."""
    await harness.core.submit(instrument_update())
    cid = await place(harness, enter(f"open-{slot}", slot, size=size, reference_price="50000"))
    now = time.time_ns()
    ack = await harness.core.submit(accepted(cid, f"ack-{cid}", venue_order_id=f"v-{cid}", time_ns=now))
    filled = await harness.core.submit(
        fill(cid, f"fill-{cid}", quantity=size, price="50000", cumulative=size, time_ns=now)
    )
    assert ack.accepted
    assert filled.accepted
    return cid


def logged(captured: Sequence[MutableMapping[str, Any]], event: str) -> list[MutableMapping[str, Any]]:
    """The captured log entries of ``event``."""
    return [entry for entry in captured if entry["event"] == event]


def of_kind(judged: list[Judged], kind: type[P]) -> list[tuple[P, Committed]]:
    """The submissions of one payload type with the kernel's answers."""
    return [(j.payload, j.committed) for j in judged if isinstance(j.payload, kind)]
