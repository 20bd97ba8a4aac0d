"""Life and death of the kernel service: the writer's stop and failure, watched tasks, the timer,
the data-directory lock, and what is logged on the way.

Nothing sleeps to synchronise: tests wait on futures, events and the writer's own answers.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from services.common.config import ConfigError
from services.common.proto import kernel_input_pb2, outcome_pb2, types_pb2, venue_event_pb2
from services.common.tasks import ServiceTasks
from services.kernel.core import Committed, OverloadedError, Payload, WriterFailedError
from services.kernel.datadir import DataDirLock
from services.kernel.server import serve
from services.kernel.tasks import tick
from tests.kernel.helpers import enter, exit_intent, instrument_update
from tests.kernel_service.conftest import KernelHarness, make_settings, running_kernel
from tests.kernel_service.test_kernel_service import settings_for
from tests.kernel_service.venue_double import VenueDouble

pytestmark = pytest.mark.anyio
WAIT = 5.0


def mark(price: str) -> kernel_input_pb2.MarkPrice:
    return kernel_input_pb2.MarkPrice(symbol="BTC-USDT", price=types_pb2.Decimal(value=price))


# ---------------------------------------------------------------------------------- the writer


async def test_a_graceful_stop_commits_what_was_queued_then_refuses(kernel: KernelHarness) -> None:
    assert (await kernel.core.submit(instrument_update())).accepted
    # gather starts its tasks in order: the five submissions are queued before stop() runs.
    submitted = [kernel.core.submit(mark(str(100 + i))) for i in range(5)]
    *answers, _ = await asyncio.gather(*submitted, kernel.core.stop())
    results = [answer for answer in answers if isinstance(answer, Committed)]
    await asyncio.wait_for(kernel.writer, WAIT)

    assert [c.accepted for c in results] == [True] * 5, "everything queued before stop() is committed"
    assert kernel.journal.last_sequence == results[-1].outcome.sequence == 6
    assert not kernel.core.failed.is_set(), "a stop is not a failure"
    with pytest.raises(WriterFailedError, match="stopping"):
        await kernel.core.submit(mark("200"))


async def test_a_journal_failure_stops_the_writer_loudly_and_for_good(kernel: KernelHarness) -> None:
    async def broken(records: object) -> None:
        raise OSError(28, "No space left on device")

    assert (await kernel.core.submit(instrument_update())).accepted
    kernel.journal.append = broken  # type: ignore[method-assign]
    with capture_logs() as captured:
        with pytest.raises(WriterFailedError, match="No space left"):
            await kernel.core.submit(mark("101"))
        await asyncio.wait_for(kernel.writer, WAIT)

    assert kernel.core.failed.is_set()
    (failure,) = [entry for entry in captured if entry["event"] == "kernel_writer_failed"]
    assert failure["log_level"] == "critical"
    assert failure["exc_info"] is True, "logged with its traceback"
    with pytest.raises(WriterFailedError):
        await kernel.core.submit(mark("102"))
    assert kernel.core.committed_sequence == 1, "the failed record was never published as durable"


async def test_refusals_and_anomalies_are_logged_by_the_writer(kernel: KernelHarness) -> None:
    with capture_logs() as captured:
        refused = await kernel.core.submit(exit_intent("x-1", 2))
        unknown = kernel_input_pb2.KernelInput()
        event = unknown.venue_event
        event.kind = venue_event_pb2.VENUE_EVENT_KIND_ORDER_ACCEPTED  # for an order nobody placed
        event.client_order_id = "pk-nobody"
        event.venue_event_id = "e-1"
        event.exchange_time.FromNanoseconds(1_767_225_600_000_000_000)
        stray = await kernel.core.submit(event)

    assert not refused.accepted
    assert not stray.accepted
    refusals = [entry for entry in captured if entry["event"] == "input_refused"]
    assert [(r["kind"], r.get("intent_id"), r.get("client_order_id")) for r in refusals] == [
        ("intent", "x-1", None),
        ("venue_event", None, "pk-nobody"),
    ]
    assert refusals[0]["code"] == "DIAGNOSTIC_CODE_NO_OPEN_POSITION"
    (anomaly,) = [entry for entry in captured if entry["event"] == "kernel_anomaly"]
    assert (anomaly["log_level"], anomaly["reconcile_needed"], anomaly["input"]) == ("warning", True, "venue_event")


# ---------------------------------------------------------------------------------- watched tasks


async def test_a_task_that_dies_is_logged_and_stops_the_service() -> None:
    stopped = asyncio.Event()
    tasks = ServiceTasks(on_failure=stopped.set)

    async def dies() -> None:
        raise RuntimeError("boom")

    async def runs() -> None:
        await asyncio.Event().wait()

    with capture_logs() as captured:
        tasks.start("worker", runs())
        tasks.start("timer", dies())
        await asyncio.wait_for(stopped.wait(), WAIT)
        await tasks.stop(["worker"])

    assert tasks.failed == ["timer"], "a stopped task is not a failure"
    (ended,) = [entry for entry in captured if entry["event"] == "service_task_ended"]
    assert (ended["task"], ended["log_level"]) == ("timer", "critical")
    assert isinstance(ended["exc_info"], RuntimeError)


async def test_the_timer_survives_a_full_queue() -> None:
    calls: list[Payload] = []
    third = asyncio.Event()

    async def submit(payload: Payload) -> Committed:
        calls.append(payload)
        if len(calls) >= 3:
            third.set()
        raise OverloadedError("full")

    with capture_logs() as captured:
        ticking = asyncio.create_task(tick(submit, 0.001, lambda _: True))
        await asyncio.wait_for(third.wait(), WAIT)
        ticking.cancel()

    assert all(isinstance(p, kernel_input_pb2.Timer) for p in calls)
    assert [e["event"] for e in captured if e["log_level"] == "warning"][:2] == ["timer_tick_skipped"] * 2


async def test_the_timer_wakes_the_kernel_only_when_a_deadline_is_due() -> None:
    now = [0]
    calls: list[int] = []
    woke = asyncio.Event()

    async def submit(payload: Payload) -> Committed:
        calls.append(now[0])
        woke.set()
        return Committed(outcome_pb2.Outcome(accepted=True), None)

    deadline = 5
    checked = asyncio.Event()

    def due(at: int) -> bool:
        checked.set()
        return at >= deadline

    ticking = asyncio.create_task(tick(submit, 0.001, due, clock=lambda: now[0]))
    for at in (1, 2, 3):
        now[0] = at
        checked.clear()
        await asyncio.wait_for(checked.wait(), WAIT)
    assert calls == [], "nothing due: nothing submitted (an idle kernel journals nothing)"
    now[0] = deadline
    await asyncio.wait_for(woke.wait(), WAIT)
    ticking.cancel()
    assert calls[0] == deadline


# ---------------------------------------------------------------------------------- the data directory


async def test_one_kernel_per_data_directory(tmp_path: Path) -> None:
    first = await DataDirLock.acquire(tmp_path)
    try:
        with pytest.raises(ConfigError, match="in use by another kernel"):
            await DataDirLock.acquire(tmp_path)
    finally:
        await first.release()
    again = await DataDirLock.acquire(tmp_path)
    await again.release()


async def test_a_running_kernel_holds_its_data_directory(tmp_path: Path, venue: VenueDouble) -> None:
    settings = settings_for(tmp_path, venue)
    stop = asyncio.Event()
    ready: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    running = asyncio.create_task(serve(settings, stop_event=stop, on_ready=ready.set_result))
    try:
        await asyncio.wait_for(ready, WAIT)
        with pytest.raises(ConfigError, match="in use by another kernel"):
            await serve(settings)
    finally:
        stop.set()
        assert await asyncio.wait_for(running, WAIT) == 0


async def test_a_failed_start_releases_everything_it_opened(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, venue_address="127.0.0.1:1", venue_timeout_seconds=0.2)
    assert await asyncio.wait_for(serve(settings), 60) == 3, "venue unreachable at start"
    # The lock and the journal are free again: a kernel can recover from the same directory.
    async with running_kernel(settings) as harness:
        assert harness.recovered.replayed == 0
        assert (await harness.core.submit(enter("i-1", 0, size="0.001", reference_price="100"))).outcome.code
