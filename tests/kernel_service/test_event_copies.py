"""services.kernel.event_copies: which second copies of a venue fact are kept from the kernel."""

from __future__ import annotations

import asyncio

import pytest

from services.common.proto import outcome_pb2, venue_event_pb2
from services.kernel.core import Committed
from services.kernel.event_copies import EventCopies

pytestmark = pytest.mark.anyio


def event(event_id: str, *, quantity: str = "0.01", cid: str = "pk-1") -> venue_event_pb2.VenueEvent:
    fill = venue_event_pb2.VenueEvent(
        kind=venue_event_pb2.VENUE_EVENT_KIND_FILL, client_order_id=cid, venue_order_id="77", venue_event_id=event_id
    )
    fill.last_quantity.value = quantity
    return fill


def judged(accepted: bool) -> asyncio.Future[Committed]:
    answer: asyncio.Future[Committed] = asyncio.get_running_loop().create_future()
    answer.set_result(Committed(outcome=outcome_pb2.Outcome(accepted=accepted), record=None))
    return answer


async def settle() -> None:
    """Lets the futures' done callbacks run (they are scheduled with call_soon)."""
    await asyncio.sleep(0)


async def test_an_exact_copy_of_an_accepted_event_is_skipped_and_counted() -> None:
    copies = EventCopies(memory=8)
    copies.track(event("e1"), judged(accepted=True))
    await settle()
    assert await copies.is_copy(event("e1"))
    assert copies.skipped == 1


async def test_a_copy_of_a_refused_event_a_different_one_or_one_without_id_goes_to_the_kernel() -> None:
    copies = EventCopies(memory=8)
    copies.track(event("refused"), judged(accepted=False))
    copies.track(event("e1"), judged(accepted=True))
    copies.track(event(""), judged(accepted=True))
    await settle()
    assert not await copies.is_copy(event("refused"))
    assert not await copies.is_copy(event("e1", quantity="0.02")), "same id, other bytes: the kernel decides"
    assert not await copies.is_copy(event("e1", cid="pk-2")), "another order's event"
    assert not await copies.is_copy(event(""))
    assert copies.skipped == 0


async def test_a_copy_of_an_event_being_judged_waits_for_that_judgement() -> None:
    copies = EventCopies(memory=8)
    pending: asyncio.Future[Committed] = asyncio.get_running_loop().create_future()
    copies.track(event("e1"), pending)
    check = asyncio.create_task(copies.is_copy(event("e1")))
    await settle()
    assert not check.done(), "undecided while the original is being judged"
    pending.set_result(Committed(outcome=outcome_pb2.Outcome(accepted=True), record=None))
    assert await asyncio.wait_for(check, 5)


async def test_memory_is_bounded_and_forgets_the_oldest() -> None:
    copies = EventCopies(memory=2)
    for name in ("e1", "e2", "e3"):
        copies.track(event(name), judged(accepted=True))
    await settle()
    assert not await copies.is_copy(event("e1")), "forgotten: judged by the kernel again"
    assert await copies.is_copy(event("e2"))
    assert await copies.is_copy(event("e3"))


def received(copy: venue_event_pb2.VenueEvent, ms: int) -> venue_event_pb2.VenueEvent:
    copy.receive_time.FromMilliseconds(ms)
    return copy


async def test_copies_that_differ_only_in_receive_time_are_one_fact() -> None:
    copies = EventCopies(memory=8)
    copies.track(received(event("e1"), 1_700_000_000_100), judged(accepted=True))
    copies.track(event("e2"), judged(accepted=True))
    await settle()
    assert await copies.is_copy(received(event("e1"), 1_700_000_000_105)), "the stream copy, received later"
    assert await copies.is_copy(event("e1")), "a copy without a receive time"
    assert await copies.is_copy(received(event("e2"), 1_700_000_000_200)), "original without one, copy with"
    assert not await copies.is_copy(received(event("e1", quantity="0.02"), 1_700_000_000_100)), "other bytes"
    assert copies.skipped == 3


async def test_a_receive_time_copy_of_an_event_being_judged_waits_for_that_judgement() -> None:
    copies = EventCopies(memory=8)
    pending: asyncio.Future[Committed] = asyncio.get_running_loop().create_future()
    copies.track(received(event("e1"), 1), pending)
    check = asyncio.create_task(copies.is_copy(received(event("e1"), 2)))
    await settle()
    assert not check.done()
    pending.set_result(Committed(outcome=outcome_pb2.Outcome(accepted=True), record=None))
    assert await asyncio.wait_for(check, 5)
