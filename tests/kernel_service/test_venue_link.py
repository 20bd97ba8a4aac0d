"""VenueLink against the venue double on a loopback port, with a real KernelCore over a real journal.

Nothing here sleeps to synchronise: tests wait on the kernel's commits (``core.wait_for``), on
its judgements (``core.wait_judged``) or on the double's state (``venue.wait_for``), each with a
timeout. Retries use a fast policy (10 ms doubling) so fault tests stay quick.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from decimal import Decimal
from typing import NamedTuple

import grpc
import grpc.aio
import pytest
from structlog.testing import capture_logs

from services.common.proto import (
    command_pb2,
    intent_pb2,
    kernel_input_pb2,
    log_pb2,
    outcome_pb2,
    slot_pb2,
    types_pb2,
    venue_event_pb2,
    venue_service_pb2,
    venue_service_pb2_grpc,
)
from services.kernel.config import KernelSettings
from services.kernel.venue_link import GIVE_UP_MESSAGE, RetryPolicy, VenueLink, VenueLinkError
from tests.kernel.helpers import accepted, enter, instrument_update
from tests.kernel_service.conftest import KernelHarness, ManualClock, running_kernel
from tests.kernel_service.link_helpers import (
    DUPLICATE,
    FAST,
    OPEN,
    WAIT,
    CancelRequest,
    PlaceRequest,
    QueryRequest,
    StreamRequest,
    cancel,
    events,
    fills,
    in_state,
    limit_enter,
    linked,
    logged,
    no_order,
    of_kind,
    open_position_without_venue,
    place,
    state,
    stream_judged,
    subscribed,
)
from tests.kernel_service.venue_double import BTC, ETH, VenueDouble

pytestmark = pytest.mark.anyio

# ---------------------------------------------------------------------------------- commands


async def test_enter_is_placed_with_its_client_order_id_and_the_fill_applies_once(
    kernel: KernelHarness, venue: VenueDouble, venue_channel: grpc.aio.Channel
) -> None:
    async with linked(kernel, venue_channel) as link:
        await subscribed(venue)
        cid = await place(kernel, enter("e1", 0, size="0.001", reference_price="50000"))
        slot = await state(kernel, 0, in_state(OPEN))
        # The ack and the fill arrive twice (the PlaceOrder answer and the execution stream):
        # wait until both paths are dealt with. Each copy is judged or skipped, exactly once.
        await asyncio.wait_for(link.idle(), WAIT)
        await asyncio.wait_for(link.wait_position(venue.last_position), WAIT)
        skipped = link.copies_skipped

    placed = venue.requests_of(PlaceRequest)
    assert [(r.idempotency_key, r.order.client_order_id) for r in placed] == [(cid, cid)]
    assert placed[0].order.order_type == types_pb2.ORDER_TYPE_MARKET
    assert list(venue.orders) == [cid]
    judged = fills(kernel.core.judged, cid)
    assert [j.accepted for j in judged].count(True) == 1
    assert [j.committed.outcome.code for j in judged if not j.accepted] in ([], [DUPLICATE])
    acks = events(kernel.core.judged, venue_event_pb2.VENUE_EVENT_KIND_ORDER_ACCEPTED, cid)
    assert len(judged) + len(acks) + skipped == 4
    assert Decimal(slot.position_size.value) == Decimal("0.001")
    assert Decimal(slot.entry_average_price.value) == Decimal(50000)
    assert Decimal(slot.fees.value) == Decimal("0.025")
    assert Decimal(kernel.core.view.account.capital.value) == Decimal("9999.975")
    assert link.pending == 0


async def test_unavailable_is_retried_with_the_same_key_and_creates_one_order(
    kernel: KernelHarness, venue: VenueDouble, venue_channel: grpc.aio.Channel
) -> None:
    venue.fail_next("PlaceOrder", grpc.StatusCode.UNAVAILABLE, times=2)
    async with linked(kernel, venue_channel):
        cid = await place(kernel, enter("e1", 0, size="0.001", reference_price="50000"))
        await state(kernel, 0, in_state(OPEN))

    assert [r.idempotency_key for r in venue.requests_of(PlaceRequest)] == [cid, cid, cid]
    assert list(venue.orders) == [cid]
    assert [j.accepted for j in fills(kernel.core.judged, cid)].count(True) == 1


@pytest.mark.parametrize(
    ("attempts", "expected_places"),
    [pytest.param(8, 2, id="retry-same-key"), pytest.param(1, 1, id="stream-only")],
)
async def test_answer_lost_after_execution_ends_with_one_order_and_the_slot_open(
    kernel: KernelHarness, venue: VenueDouble, venue_channel: grpc.aio.Channel, attempts: int, expected_places: int
) -> None:
    venue.drop_responses("PlaceOrder", 1)
    with capture_logs() as captured:
        async with linked(kernel, venue_channel, retry=RetryPolicy(initial=0.01, cap=0.2, attempts=attempts)) as link:
            await subscribed(venue)
            cid = await place(kernel, enter("e1", 0, size="0.001", reference_price="50000"))
            slot = await state(kernel, 0, in_state(OPEN))
            await asyncio.wait_for(link.idle(), WAIT)

    assert [r.idempotency_key for r in venue.requests_of(PlaceRequest)] == [cid] * expected_places
    assert list(venue.orders) == [cid]
    assert Decimal(slot.position_size.value) == Decimal("0.001")
    assert [j.accepted for j in fills(kernel.core.judged, cid)].count(True) == 1
    given_up = logged(captured, GIVE_UP_MESSAGE)
    if attempts == 1:
        assert [(e["key"], e["code"], e["log_level"]) for e in given_up] == [(cid, "UNAVAILABLE", "error")]
    else:
        assert given_up == []


async def test_non_retryable_code_is_logged_and_dropped(
    kernel: KernelHarness, venue: VenueDouble, venue_channel: grpc.aio.Channel
) -> None:
    venue.fail_next("PlaceOrder", grpc.StatusCode.INVALID_ARGUMENT)
    with capture_logs() as captured:
        async with linked(kernel, venue_channel) as link:
            cid = await place(kernel, enter("e1", 0, size="0.001", reference_price="50000"))
            await venue.wait_for(lambda: len(venue.requests_of(PlaceRequest)) == 1)
            await asyncio.wait_for(link.idle(), WAIT)

    failed = logged(captured, "venue_command_failed")
    assert [(e["key"], e["code"], e["log_level"]) for e in failed] == [(cid, "INVALID_ARGUMENT", "error")]
    assert len(venue.requests_of(PlaceRequest)) == 1
    assert venue.orders == {}
    assert kernel.core.view.slots[0].state == slot_pb2.SLOT_STATE_ENTRY_PENDING


async def test_given_up_command_is_recovered_by_the_kernels_deadline_query(
    kernel_settings: KernelSettings, venue: VenueDouble, venue_channel: grpc.aio.Channel
) -> None:
    clock = ManualClock()
    venue.fail_next("PlaceOrder", grpc.StatusCode.UNAVAILABLE, times=3)
    async with running_kernel(kernel_settings, clock=clock) as harness:
        with capture_logs() as captured:
            async with linked(harness, venue_channel, retry=RetryPolicy(initial=0.01, cap=0.1, attempts=3)) as link:
                cid = await place(harness, enter("e1", 0, size="0.001", reference_price="50000"))
                await asyncio.wait_for(link.idle(), WAIT)
                assert [e["key"] for e in logged(captured, GIVE_UP_MESSAGE)] == [cid]
                # The ack deadline (5 s of kernel time) passes: the kernel asks about the order.
                clock.advance(kernel_settings.ack_timeout_seconds + 1)
                timer = await harness.core.submit(kernel_input_pb2.Timer())
                assert [c.idempotency_key for c in timer.outcome.commands] == [f"{cid}:query:1"]
                slot = await state(harness, 0, no_order)

    queries = venue.requests_of(QueryRequest)
    assert [(q.idempotency_key, q.order.reason) for q in queries] == [
        (f"{cid}:query:1", command_pb2.QUERY_REASON_DEADLINE)
    ]
    assert venue.orders == {}
    assert slot.state in (slot_pb2.SLOT_STATE_IDLE, slot_pb2.SLOT_STATE_CLOSED)


async def test_cancel_is_sent_after_its_place_with_the_kernels_key(
    kernel: KernelHarness, venue: VenueDouble, venue_channel: grpc.aio.Channel
) -> None:
    async with linked(kernel, venue_channel):
        cid = await place(kernel, limit_enter("e1", 0))
        await state(kernel, 0, in_state(slot_pb2.SLOT_STATE_ENTRY_WORKING))
        assert (await kernel.core.submit(cancel("c1", 0))).accepted
        slot = await state(kernel, 0, no_order)

    sent = [(method, getattr(request, "idempotency_key", "")) for method, request in venue.received]
    assert [s for s in sent if s[0] in ("PlaceOrder", "CancelOrder")] == [
        ("PlaceOrder", cid),
        ("CancelOrder", f"{cid}:cancel:1"),
    ]
    assert venue.orders[cid].status == slot_pb2.ORDER_STATUS_CANCELLED
    assert slot.state in (slot_pb2.SLOT_STATE_IDLE, slot_pb2.SLOT_STATE_CLOSED)


async def test_pending_counts_commands_until_they_are_sent(
    kernel: KernelHarness, venue: VenueDouble, venue_channel: grpc.aio.Channel
) -> None:
    link = VenueLink(kernel.core, venue_channel, timeout=2.0, symbols=[BTC, ETH], retry=FAST)
    link.attach()
    await link.startup()
    await place(kernel, enter("e1", 0, size="0.001", reference_price="50000"))
    await place(kernel, enter("e2", 1, size="0.01", symbol=ETH, reference_price="2500"))
    assert link.pending == 2
    assert venue.requests_of(PlaceRequest) == []
    task = asyncio.create_task(link.run())
    try:
        await asyncio.wait_for(link.idle(), WAIT)
        assert link.pending == 0
        assert len(venue.orders) == 2
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


# ---------------------------------------------------------------------------------- streams


async def test_execution_stream_resumes_after_a_reconnect_and_replays_change_nothing(
    kernel: KernelHarness, venue: VenueDouble, venue_channel: grpc.aio.Channel
) -> None:
    async with linked(kernel, venue_channel) as link:
        await subscribed(venue)
        cid = await place(kernel, limit_enter("e1", 0))
        await state(kernel, 0, in_state(slot_pb2.SLOT_STATE_ENTRY_WORKING))
        venue.fill(cid, "0.001", "49000")
        last = venue.last_position
        await kernel.core.wait_judged(lambda judged: bool(stream_judged(judged, last)))
        assert link.stream_position == last
        before = kernel.core.view.slots[0]

        judged_before = len(kernel.core.judged)
        skipped_before = link.copies_skipped
        venue.replay_on_next_subscription(2)
        venue.disconnect_streams()
        await subscribed(venue, 2)
        assert venue.requests_of(StreamRequest)[1].after_position == last
        assert kernel.core.view.slots[0] == before

        # The venue repeats the ack and the partial fill, then reports a new fill. The repeats are
        # exact copies of facts the kernel accepted through this link: not judged again.
        venue.fill(cid, "0.001", "49000")
        slot = await state(kernel, 0, in_state(OPEN))
        assert link.copies_skipped == skipped_before + 2
        judged_since = [j for j in kernel.core.judged[judged_before:] if j.stream_position]
        assert [(j.accepted, j.stream_position) for j in judged_since] == [(True, venue.last_position)]

    assert Decimal(slot.position_size.value) == Decimal("0.002")
    assert [j.accepted for j in fills(kernel.core.judged, cid)].count(True) == 2


async def test_a_fact_the_kernel_accepted_from_an_answer_is_not_judged_again_from_the_stream(
    kernel: KernelHarness, venue: VenueDouble, venue_channel: grpc.aio.Channel
) -> None:
    """The PlaceOrder answer and the stream both carry the acknowledgement: whichever the kernel
    accepts first, the other copy costs no judgement (or is refused as a duplicate if both were
    in flight at once); the slot is the same either way and the position still moves on."""
    async with linked(kernel, venue_channel) as link:
        await subscribed(venue)
        cid = await place(kernel, limit_enter("e1", 0))
        await state(kernel, 0, in_state(slot_pb2.SLOT_STATE_ENTRY_WORKING))
        venue.fill(cid, "0.002", "49000")
        await state(kernel, 0, in_state(OPEN))
        await asyncio.wait_for(link.idle(), WAIT)
        await asyncio.wait_for(link.wait_position(venue.last_position), WAIT)
        acks = events(kernel.core.judged, venue_event_pb2.VENUE_EVENT_KIND_ORDER_ACCEPTED, cid)
        assert [j.accepted for j in acks].count(True) == 1
        refused = [j for j in acks if not j.accepted]
        assert all(j.committed.outcome.code == DUPLICATE for j in refused)
        assert len(acks) + link.copies_skipped == 2, "each copy of the ack is judged or skipped, exactly once"
        assert link.stream_position == venue.last_position


async def test_execution_stream_reconnects_after_failed_subscriptions(
    kernel: KernelHarness, venue: VenueDouble, venue_channel: grpc.aio.Channel
) -> None:
    venue.fail_next("StreamExecutions", grpc.StatusCode.UNAVAILABLE, times=2)
    async with linked(kernel, venue_channel):
        await subscribed(venue, 3)
        cid = await place(kernel, limit_enter("e1", 0))
        await state(kernel, 0, in_state(slot_pb2.SLOT_STATE_ENTRY_WORKING))
        venue.fill(cid, "0.002", "49000")
        await state(kernel, 0, in_state(OPEN))
        await kernel.core.wait_judged(lambda judged: bool(stream_judged(judged, venue.last_position)))


async def test_a_position_the_venue_refuses_is_logged_and_the_stream_follows_from_now(
    kernel: KernelHarness, venue: VenueDouble, venue_channel: grpc.aio.Channel
) -> None:
    kernel.core.venue_stream_position = "000042"  # from a venue whose history was since reset
    with capture_logs() as captured:
        async with linked(kernel, venue_channel) as link:
            await subscribed(venue, 2)
            assert [r.after_position for r in venue.requests_of(StreamRequest)] == ["000042", ""]
            cid = await place(kernel, limit_enter("e1", 0))
            await state(kernel, 0, in_state(slot_pb2.SLOT_STATE_ENTRY_WORKING))
            venue.fill(cid, "0.002", "49000")
            await state(kernel, 0, in_state(OPEN))
            await kernel.core.wait_judged(lambda judged: bool(stream_judged(judged, venue.last_position)))
            assert link.stream_position == venue.last_position

    refused = logged(captured, "venue_stream_position_refused")
    assert [(e["code"], e["position"], e["log_level"]) for e in refused] == [("OUT_OF_RANGE", "000042", "error")]


async def test_restart_resumes_the_stream_after_the_journaled_position(
    kernel_settings: KernelSettings, venue: VenueDouble, venue_channel: grpc.aio.Channel
) -> None:
    async with running_kernel(kernel_settings) as first, linked(first, venue_channel):
        await subscribed(venue)
        cid = await place(first, limit_enter("e1", 0))
        await state(first, 0, in_state(slot_pb2.SLOT_STATE_ENTRY_WORKING))
        venue.fill(cid, "0.001", "49000")
        applied = venue.last_position
        await first.core.wait_judged(lambda judged: any(j.accepted for j in stream_judged(judged, applied)))
        assert first.core.venue_stream_position == applied
        state_before = first.core.view.slots[0]

    async with running_kernel(kernel_settings) as second:
        assert second.recovered.venue_stream_position == applied
        assert second.core.view.slots[0] == state_before
        venue.replay_on_next_subscription(2)
        async with linked(second, venue_channel):
            await subscribed(venue, 2)
            assert venue.requests_of(StreamRequest)[-1].after_position == applied
            await second.core.wait_judged(lambda judged: len(stream_judged(judged, applied)) == 1)
            replayed = [j for j in second.core.judged if j.stream_position]
            assert [(j.accepted, j.committed.outcome.code) for j in replayed] == [(False, DUPLICATE)] * 2
            assert Decimal(second.core.view.slots[0].position_size.value) == Decimal("0.001")
            venue.fill(cid, "0.001", "49000")
            slot = await state(second, 0, in_state(OPEN))

    assert Decimal(slot.position_size.value) == Decimal("0.002")


async def test_mark_prices_are_submitted_to_the_kernel(
    kernel: KernelHarness, venue: VenueDouble, venue_channel: grpc.aio.Channel
) -> None:
    async with linked(kernel, venue_channel):
        await venue.wait_for(lambda: bool(venue.requests_of(venue_service_pb2.StreamMarkPricesRequest)))
        venue.mark(BTC, "50100.5")
        await kernel.core.wait_judged(lambda judged: bool(of_kind(judged, kernel_input_pb2.MarkPrice)))

    marks = of_kind(kernel.core.judged, kernel_input_pb2.MarkPrice)
    assert [(mark.symbol, mark.price.value, c.accepted) for mark, c in marks] == [(BTC, "50100.5", True)]
    assert venue.requests_of(venue_service_pb2.StreamMarkPricesRequest)[0].symbols == [BTC, ETH]


async def test_a_stream_task_that_fails_unexpectedly_is_logged_and_restarted(
    kernel: KernelHarness, venue: VenueDouble, venue_channel: grpc.aio.Channel, monkeypatch: pytest.MonkeyPatch
) -> None:
    link = VenueLink(kernel.core, venue_channel, timeout=2.0, symbols=[BTC, ETH], retry=FAST)
    original = link._apply_execution
    failures = [RuntimeError("bug in a handler")]

    async def flaky(response: venue_service_pb2.StreamExecutionsResponse) -> None:
        if failures and response.event.kind == venue_event_pb2.VENUE_EVENT_KIND_FILL:
            raise failures.pop()
        await original(response)

    monkeypatch.setattr(link, "_apply_execution", flaky)
    link.attach()
    await link.startup()
    with capture_logs() as captured:
        task = asyncio.create_task(link.run())
        try:
            await subscribed(venue)
            cid = await place(kernel, limit_enter("e1", 0))
            await state(kernel, 0, in_state(slot_pb2.SLOT_STATE_ENTRY_WORKING))
            venue.fill(cid, "0.002", "49000")
            # The fill hits the bug: the task restarts, resubscribes after the ack and applies it.
            await subscribed(venue, 2)
            await state(kernel, 0, in_state(OPEN))
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    failed = logged(captured, "venue_link_task_failed")
    assert [(e["task"], e["log_level"]) for e in failed] == [("executions", "error")]
    assert "exc_info" in failed[0]
    assert logged(captured, "venue_link_task_restarting")


async def test_answer_events_carry_the_trace_of_the_command(
    kernel: KernelHarness, venue: VenueDouble, venue_channel: grpc.aio.Channel
) -> None:
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    venue.fail_next("StreamExecutions", grpc.StatusCode.UNAVAILABLE, times=1000)  # answers only
    records: list[log_pb2.LogRecord] = []
    kernel.core.on_commit(lambda batch: records.extend(c.record for c in batch if c.record is not None))
    async with linked(kernel, venue_channel):
        committed = await kernel.core.submit(
            enter("e1", 0, size="0.001", reference_price="50000"), trace={"traceparent": traceparent}
        )
        assert committed.accepted
        await state(kernel, 0, in_state(OPEN))

    answered = [r for r in records if r.input.WhichOneof("payload") == "venue_event"]
    assert [r.input.venue_event.kind for r in answered] == [
        venue_event_pb2.VENUE_EVENT_KIND_ORDER_ACCEPTED,
        venue_event_pb2.VENUE_EVENT_KIND_FILL,
    ]
    assert {r.trace.traceparent for r in answered} == {traceparent}


async def test_the_events_of_one_answer_share_one_commit_in_order(
    kernel: KernelHarness, venue: VenueDouble, venue_channel: grpc.aio.Channel
) -> None:
    venue.fail_next("StreamExecutions", grpc.StatusCode.UNAVAILABLE, times=1000)  # answers only
    commits: list[list[log_pb2.LogRecord]] = []
    kernel.core.on_commit(lambda batch: commits.append([c.record for c in batch if c.record is not None]))
    async with linked(kernel, venue_channel):
        await place(kernel, enter("e1", 0, size="0.001", reference_price="50000"))
        await state(kernel, 0, in_state(OPEN))

    answered = [
        [r.input.venue_event.kind for r in commit if r.input.WhichOneof("payload") == "venue_event"]
        for commit in commits
    ]
    # Queued together, judged together: one journal append (one fsync) for the ack and the fill.
    assert [kinds for kinds in answered if kinds] == [
        [venue_event_pb2.VENUE_EVENT_KIND_ORDER_ACCEPTED, venue_event_pb2.VENUE_EVENT_KIND_FILL]
    ]


# ---------------------------------------------------------------------------------- start-up


async def test_instruments_arrive_before_the_first_enter(
    kernel: KernelHarness, venue: VenueDouble, venue_channel: grpc.aio.Channel
) -> None:
    refused = await kernel.core.submit(enter("early", 0, size="0.001", reference_price="50000"))
    assert refused.outcome.code == outcome_pb2.DIAGNOSTIC_CODE_UNKNOWN_INSTRUMENT

    async with linked(kernel, venue_channel, run=False):
        assert venue.received[0][0] == "GetInstruments"
        assert venue.requests_of(venue_service_pb2.GetInstrumentsRequest)[0].symbols == [BTC, ETH]
        entered = await kernel.core.submit(enter("e1", 0, size="0.001", reference_price="50000"))

    assert entered.accepted
    updates = [c for _, c in of_kind(kernel.core.judged, kernel_input_pb2.InstrumentUpdate)]
    assert len(updates) == 1
    assert updates[0].accepted
    assert updates[0].outcome.sequence < entered.outcome.sequence


async def test_startup_adopts_a_venue_position_on_a_symbol_no_slot_holds(
    kernel: KernelHarness, venue: VenueDouble, venue_channel: grpc.aio.Channel
) -> None:
    venue.set_position(ETH, types_pb2.SIDE_SHORT, "1.50", "2400")
    with capture_logs() as captured:
        async with linked(kernel, venue_channel, run=False):
            pass

    slot = kernel.core.view.slots[0]
    assert slot.state == OPEN
    assert (slot.symbol, slot.side) == (ETH, types_pb2.SIDE_SHORT)
    assert Decimal(slot.position_size.value) == Decimal("1.50")
    assert Decimal(slot.entry_average_price.value) == Decimal(2400)
    assert slot.trade_id
    adopted = logged(captured, "reconcile_adopting_venue_position")
    assert [(e["slot_id"], e["symbol"], e["log_level"]) for e in adopted] == [(0, ETH, "warning")]
    reconciles = of_kind(kernel.core.judged, kernel_input_pb2.Reconcile)
    assert [(r.reconcile_id, c.accepted) for r, c in reconciles] == [("startup-1", True)]


async def test_startup_queries_a_working_order_the_venue_does_not_list(
    kernel: KernelHarness, venue: VenueDouble, venue_channel: grpc.aio.Channel
) -> None:
    await kernel.core.submit(instrument_update())
    cid = await place(kernel, limit_enter("e1", 0))
    ack = await kernel.core.submit(accepted(cid, f"ack-{cid}", venue_order_id="v-lost", time_ns=time.time_ns()))
    assert ack.accepted
    assert kernel.core.view.slots[0].state == slot_pb2.SLOT_STATE_ENTRY_WORKING

    async with linked(kernel, venue_channel):
        slot = await state(kernel, 0, no_order)

    queries = venue.requests_of(QueryRequest)
    assert [(q.idempotency_key, q.order.client_order_id, q.order.venue_order_id) for q in queries] == [
        (f"{cid}:query:1", cid, "v-lost")
    ]
    assert queries[0].order.reason == command_pb2.QUERY_REASON_RECONCILE
    assert venue.requests_of(PlaceRequest) == []  # an acknowledged order is never placed again
    assert slot.state in (slot_pb2.SLOT_STATE_IDLE, slot_pb2.SLOT_STATE_CLOSED)


class ResendCase(NamedTuple):
    intent: intent_pb2.Intent
    reached_venue: bool
    final_state: slot_pb2.SlotState.ValueType


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(ResendCase(enter("e1", 0, size="0.001", reference_price="50000"), False, OPEN), id="market-lost"),
        pytest.param(
            ResendCase(enter("e1", 0, size="0.001", reference_price="50000"), True, OPEN), id="market-answer-lost"
        ),
        pytest.param(ResendCase(limit_enter("e1", 0), False, slot_pb2.SLOT_STATE_ENTRY_WORKING), id="limit-lost"),
    ],
)
async def test_startup_resends_a_pending_new_order_with_the_same_key(
    kernel: KernelHarness, venue: VenueDouble, venue_channel: grpc.aio.Channel, case: ResendCase
) -> None:
    intent, reached_venue, final_state = case
    await kernel.core.submit(instrument_update())
    committed = await kernel.core.submit(intent)
    command = committed.outcome.commands[0]
    cid = command.place_order.client_order_id
    if reached_venue:
        # The previous process sent it and crashed before the answer was journaled.
        stub = venue_service_pb2_grpc.VenueServiceStub(venue_channel)
        request = PlaceRequest(idempotency_key=command.idempotency_key, order=command.place_order)
        await stub.PlaceOrder(request, timeout=WAIT)

    async with linked(kernel, venue_channel, run=False):
        # start-up itself re-sent the order and applied its answer
        assert kernel.core.view.slots[0].state == final_state

    placed = venue.requests_of(PlaceRequest)
    assert [r.idempotency_key for r in placed] == [cid] * (2 if reached_venue else 1)
    assert placed[-1].order == command.place_order  # the very same order, rebuilt from the slot
    assert list(venue.orders) == [cid]
    expected_fills = [True] if final_state == OPEN else []
    assert [j.accepted for j in fills(kernel.core.judged, cid)] == expected_fills


async def test_startup_resends_a_requested_cancel(
    kernel: KernelHarness, venue: VenueDouble, venue_channel: grpc.aio.Channel
) -> None:
    await kernel.core.submit(instrument_update())
    cid = await place(kernel, limit_enter("e1", 0))
    assert (await kernel.core.submit(cancel("c1", 0))).accepted
    assert kernel.core.view.slots[0].active_order.cancel_requested

    async with linked(kernel, venue_channel):
        slot = await state(kernel, 0, no_order)

    assert [r.idempotency_key for r in venue.requests_of(CancelRequest)] == [f"{cid}:cancel:1"]
    assert venue.requests_of(PlaceRequest) == []  # a cancelled placement is not sent again
    assert venue.orders == {}
    assert slot.state in (slot_pb2.SLOT_STATE_IDLE, slot_pb2.SLOT_STATE_CLOSED)


async def test_startup_reconcile_conflict_is_logged_and_the_service_goes_on(
    kernel: KernelHarness, venue: VenueDouble, venue_channel: grpc.aio.Channel
) -> None:
    await open_position_without_venue(kernel, 0)
    venue.set_position(BTC, types_pb2.SIDE_SHORT, "0.001", "50000")  # the kernel holds it LONG
    with capture_logs() as captured:
        async with linked(kernel, venue_channel, run=False):
            pass

    conflicts = logged(captured, "reconcile_conflict")
    assert len(conflicts) == 1
    assert conflicts[0]["log_level"] == "error"
    assert any("side" in violation for violation in conflicts[0]["violations"])
    assert kernel.core.view.slots[0].state == OPEN  # nothing adopted


async def test_startup_fails_loudly_when_the_venue_cannot_be_read(
    kernel: KernelHarness, venue: VenueDouble, venue_channel: grpc.aio.Channel
) -> None:
    venue.fail_next("GetInstruments", grpc.StatusCode.PERMISSION_DENIED)
    link = VenueLink(kernel.core, venue_channel, timeout=2.0, symbols=[BTC], retry=FAST)
    with pytest.raises(VenueLinkError, match="GetInstruments failed with PERMISSION_DENIED"):
        await link.startup()
