"""The single writer: one task owns the kernel and the journal.

Every mutation is a ``Submission`` on a bounded queue. The writer takes whatever is queued
(up to ``max_batch``), steps each input through the kernel, appends the accepted ones to the
journal with one write and one fsync (group commit), and only then answers the submitters,
publishes the records to watchers and hands the emitted commands to the dispatcher. Rejected
inputs change nothing and are not journaled. Readers never touch the kernel: they read the
``ViewCache``, which the writer updates after each commit.

If the journal cannot be written (or anything else in a commit fails) the kernel's memory is
ahead of its durable log; the writer stops for good (``failed``), every waiting and later
submitter gets ``WriterFailedError``, and the service exits so that a restart replays the
journal. A graceful :meth:`KernelCore.stop` instead lets the writer commit everything queued
before it, then refuses new submissions.

Every refused input is logged (INFO, with its code and message) and every anomaly (WARNING):
the caller's answer is not the only place a refusal is seen.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeAlias

import pink_kernel
from services.common.logging import get_logger
from services.common.proto import (
    account_pb2,
    control_pb2,
    intent_pb2,
    kernel_input_pb2,
    log_pb2,
    outcome_pb2,
    slot_pb2,
    types_pb2,
    venue_event_pb2,
    view_pb2,
)
from services.kernel.journal import Journal
from services.kernel.metrics import KernelMetrics

log = get_logger(__name__)

#: A kernel input payload: one of the messages of the KernelInput oneof.
Payload: TypeAlias = (
    intent_pb2.Intent
    | venue_event_pb2.VenueEvent
    | kernel_input_pb2.MarkPrice
    | control_pb2.ControlUpdate
    | kernel_input_pb2.Reconcile
    | kernel_input_pb2.Timer
    | kernel_input_pb2.InstrumentUpdate
    | kernel_input_pb2.FundingPayment
)
#: Called with every committed batch of accepted records, in order, by the writer.
Listener: TypeAlias = Callable[[Sequence["Committed"]], None]
AnomalyListener: TypeAlias = Callable[[outcome_pb2.Outcome], None]

_FIELD_OF = {
    "Intent": "intent",
    "VenueEvent": "venue_event",
    "MarkPrice": "mark_price",
    "ControlUpdate": "control_update",
    "Reconcile": "reconcile",
    "Timer": "timer",
    "InstrumentUpdate": "instrument_update",
    "FundingPayment": "funding_payment",
}


class OverloadedError(Exception):
    """The writer's queue is full: the caller should retry later (RESOURCE_EXHAUSTED)."""


class WriterFailedError(Exception):
    """The writer stopped (a journal failure, or shutdown); the service is going down."""


@dataclass(frozen=True)
class Committed:
    """The kernel's answer to one submission, durable when accepted."""

    outcome: outcome_pb2.Outcome
    record: log_pb2.LogRecord | None

    @property
    def accepted(self) -> bool:
        return self.outcome.accepted


@dataclass
class _Submission:
    payload: Payload
    trace: Mapping[str, str]
    stream_position: str
    done: asyncio.Future[Committed]


@dataclass
class ViewCache:
    """The latest committed post-state, for readers. Updated only by the writer."""

    sequence: int = 0
    slots: dict[int, slot_pb2.Slot] = field(default_factory=dict)
    account: account_pb2.Account = field(default_factory=account_pb2.Account)
    control: control_pb2.ControlState = field(default_factory=control_pb2.ControlState)
    #: Deadline (ns) of every waiting slot: the timer only wakes the kernel when one is due.
    deadlines: dict[int, int] = field(default_factory=dict)

    def due(self, now_ns: int) -> bool:
        """Whether some slot's deadline has passed at ``now_ns``."""
        return any(deadline <= now_ns for deadline in self.deadlines.values())

    def apply(self, sequence: int, view: view_pb2.KernelView) -> None:
        self.sequence = sequence
        for slot in view.slots:
            self.slots[slot.slot_id] = slot
            if slot.HasField("deadline"):
                self.deadlines[slot.slot_id] = slot.deadline.ToNanoseconds()
            else:
                self.deadlines.pop(slot.slot_id, None)
        if view.HasField("account"):
            self.account = view.account
        if view.HasField("control"):
            self.control = view.control


def input_message(payload: Payload, *, time_ns: int, trace: Mapping[str, str]) -> kernel_input_pb2.KernelInput:
    """A KernelInput carrying ``payload`` (one of the oneof message types) at ``time_ns``."""
    name = type(payload).__name__
    field_name = _FIELD_OF.get(name)
    if field_name is None:
        msg = f"not a kernel input payload: {name}"
        raise TypeError(msg)
    message = kernel_input_pb2.KernelInput()
    message.time.FromNanoseconds(time_ns)
    if trace:
        message.trace.CopyFrom(
            types_pb2.TraceContext(traceparent=trace.get("traceparent", ""), tracestate=trace.get("tracestate", ""))
        )
    getattr(message, field_name).CopyFrom(payload)
    return message


def _subject(payload: Payload) -> dict[str, object]:
    """What a log line needs to name the input."""
    if isinstance(payload, intent_pb2.Intent):
        return {"intent_id": payload.intent_id, "slot_id": payload.slot_id}
    if isinstance(payload, venue_event_pb2.VenueEvent):
        return {"client_order_id": payload.client_order_id, "venue_event_id": payload.venue_event_id}
    if isinstance(payload, kernel_input_pb2.Reconcile):
        return {"reconcile_id": payload.reconcile_id}
    if isinstance(payload, control_pb2.ControlUpdate):
        return {"actor": payload.actor, "expected_version": payload.expected_version}
    if isinstance(payload, kernel_input_pb2.MarkPrice):
        return {"symbol": payload.symbol}
    return {}


def _log_judgement(kind: str, payload: Payload, outcome: outcome_pb2.Outcome) -> None:
    """Refusals at INFO, anomalies at WARNING: every one is in the log, not only in an answer."""
    if not outcome.accepted:
        log.info(
            "input_refused",
            kind=kind,
            code=outcome_pb2.DiagnosticCode.Name(outcome.code),
            message=outcome.message,
            violations=[f"{v.field}: {v.description}" for v in outcome.violations],
            **_subject(payload),
        )
    for anomaly in outcome.anomalies:
        log.warning(
            "kernel_anomaly",
            kind=outcome_pb2.AnomalyKind.Name(anomaly.kind),
            input=kind,
            sequence=outcome.sequence,
            accepted=outcome.accepted,
            slot_id=anomaly.slot_id if anomaly.HasField("slot_id") else None,
            trade_id=anomaly.trade_id,
            client_order_id=anomaly.client_order_id,
            venue_event_id=anomaly.venue_event_id,
            reconcile_needed=anomaly.reconcile_needed,
            message=anomaly.message,
        )


class KernelCore:
    """Owns a ``pink_kernel.Kernel`` and its ``Journal``; see the module docstring."""

    def __init__(
        self,
        kernel: pink_kernel.Kernel,
        journal: Journal,
        *,
        kernel_id: str,
        slot_count: int,
        max_batch: int,
        queue_limit: int,
        snapshot_every: int,
        metrics: KernelMetrics,
        venue_stream_position: str = "",
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self._kernel = kernel
        self._journal = journal
        self._kernel_id = kernel_id
        self._slot_count = slot_count
        self._max_batch = max_batch
        self._snapshot_every = snapshot_every
        self._metrics = metrics
        self._clock = clock
        # None is the stop marker (see stop()).
        self._queue: asyncio.Queue[_Submission | None] = asyncio.Queue(maxsize=queue_limit)
        self._listeners: list[Listener] = []
        self._anomaly_listeners: list[AnomalyListener] = []
        self._failure: BaseException | None = None
        self._closing = False
        self._changed = asyncio.Condition()
        self._last_snapshot = kernel.last_sequence
        #: Last VenueService.StreamExecutions position applied (resume point after a restart).
        self.venue_stream_position = venue_stream_position
        self.failed = asyncio.Event()
        self.view = self.full_view()

    # ------------------------------------------------------------------ reading

    @property
    def last_sequence(self) -> int:
        """Sequence the kernel has applied (may be ahead of the journal while a batch is fsynced)."""
        return self._kernel.last_sequence

    @property
    def snapshot_sequence(self) -> int:
        """Sequence of the newest snapshot (0: none yet)."""
        return self._last_snapshot

    def state(self) -> tuple[int, str]:
        """The sequence the kernel has applied and the hash of its state there."""
        return self._kernel.last_sequence, self._kernel.state_hash()

    @property
    def committed_sequence(self) -> int:
        """Sequence of the last durable, published record."""
        return self.view.sequence

    def full_view(self) -> ViewCache:
        """A fresh cache of every slot, the account and the control, read from the kernel."""
        full = view_pb2.KernelView.FromString(
            self._kernel.view(list(range(self._slot_count)), account=True, control=True)
        )
        cache = ViewCache()
        cache.apply(self._kernel.last_sequence, full)
        return cache

    async def wait_for(self, predicate: Callable[[ViewCache], bool], seconds: float) -> bool:
        """Waits until ``predicate(view)`` holds after some commit, or ``seconds`` pass."""
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(lambda: predicate(self.view)), seconds)
            except TimeoutError:
                return False
        return True

    def on_commit(self, listener: Listener) -> None:
        """Calls ``listener`` (synchronously, from the writer) with every committed batch in order."""
        self._listeners.append(listener)

    def on_anomalies(self, listener: AnomalyListener) -> None:
        """Calls ``listener`` (from the writer) with every judged outcome that carries anomalies, rejected or not."""
        self._anomaly_listeners.append(listener)

    # ------------------------------------------------------------------ writing

    async def submit(
        self, payload: Payload, *, trace: Mapping[str, str] | None = None, stream_position: str = ""
    ) -> Committed:
        """Applies one input; returns once it is durable (accepted) or judged (rejected)."""
        return await self.enqueue(payload, trace=trace, stream_position=stream_position)

    def enqueue(
        self, payload: Payload, *, trace: Mapping[str, str] | None = None, stream_position: str = ""
    ) -> asyncio.Future[Committed]:
        """Queues one input now; the future is its answer, as :meth:`submit` returns it.

        Inputs queued one after the other without waiting can share a commit (one fsync), and are
        judged in the order they were queued.
        """
        if self._failure is not None:
            raise WriterFailedError(str(self._failure))
        if self._closing:
            raise WriterFailedError("the kernel is stopping")
        done: asyncio.Future[Committed] = asyncio.get_running_loop().create_future()
        try:
            self._queue.put_nowait(_Submission(payload, trace or {}, stream_position, done))
        except asyncio.QueueFull:
            self._metrics.overloaded.inc()
            raise OverloadedError(f"the kernel's queue holds {self._queue.qsize()} inputs") from None
        return done

    async def stop(self) -> None:
        """Graceful stop: later submissions are refused, everything queued is committed, then run() returns."""
        if self._closing:
            return
        self._closing = True
        await self._queue.put(None)

    async def run(self) -> None:
        """The writer loop, until stop() (returns), a failure (returns, ``failed`` set) or cancellation."""
        stopping = False
        while not stopping:
            batch: list[_Submission] = []
            first = await self._queue.get()
            if first is None:
                return
            batch.append(first)
            while len(batch) < self._max_batch and not self._queue.empty():
                item = self._queue.get_nowait()
                if item is None:
                    stopping = True
                    break
                batch.append(item)
            try:
                await self._commit(batch)
            except asyncio.CancelledError:
                # Cancelled mid-commit: the batch may or may not be durable, so nobody may go on
                # as if it were; stop like a failure (without a failure to report).
                self._closing = True
                self._refuse([*batch, *self._drain()], WriterFailedError("the writer was cancelled"))
                raise
            except Exception as error:
                log.critical(
                    "kernel_writer_failed", exc_info=True, batch=len(batch), last_sequence=self._kernel.last_sequence
                )
                self._failure = error
                self.failed.set()
                self._refuse([*batch, *self._drain()], WriterFailedError(f"the kernel writer stopped: {error!r}"))
                return

    @staticmethod
    def _refuse(items: Sequence[_Submission], reason: WriterFailedError) -> None:
        for item in items:
            if not item.done.done():
                item.done.set_exception(reason)

    def _drain(self) -> list[_Submission]:
        items = []
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if item is not None:
                items.append(item)
        return items

    async def _commit(self, batch: Sequence[_Submission]) -> None:
        started = time.perf_counter()
        results: list[tuple[_Submission, Committed]] = []
        records: list[tuple[int, bytes]] = []
        for item in batch:
            committed = self._step(item)
            results.append((item, committed))
            if committed.record is not None:
                records.append((committed.record.sequence, committed.record.SerializeToString()))
        if records:
            await self._journal.append(records)
            self._metrics.journal_batches.observe(len(records))
        for _, committed in results:
            if committed.record is not None:
                self.view.apply(committed.record.sequence, committed.record.post_state)
                if committed.record.venue_stream_position:
                    self.venue_stream_position = committed.record.venue_stream_position
        async with self._changed:
            self._changed.notify_all()
        self._answer(results)
        self._metrics.commit_seconds.observe(time.perf_counter() - started)
        accepted = [c for _, c in results if c.record is not None]
        if accepted:
            for listener in self._listeners:
                listener(accepted)
        if self._kernel.last_sequence - self._last_snapshot >= self._snapshot_every:
            await self.snapshot()

    def _answer(self, results: Sequence[tuple[_Submission, Committed]]) -> None:
        for item, committed in results:
            if not item.done.done():
                item.done.set_result(committed)
            kind = _FIELD_OF[type(item.payload).__name__]
            self._metrics.observe(kind, committed.outcome)
            _log_judgement(kind, item.payload, committed.outcome)
            if isinstance(item.payload, venue_event_pb2.VenueEvent):
                self._metrics.venue_event(item.payload, committed.outcome)
            if committed.outcome.anomalies:
                for listener in self._anomaly_listeners:
                    listener(committed.outcome)

    def _step(self, item: _Submission) -> Committed:
        return judge(
            self._kernel,
            self._kernel_id,
            item.payload,
            clock=self._clock,
            trace=item.trace,
            stream_position=item.stream_position,
        )

    async def final_snapshot(self) -> None:
        """At shutdown, with the writer stopped: snapshots if records came since the last one."""
        if self._failure is None and self._kernel.last_sequence > self._last_snapshot:
            await self.snapshot()

    async def snapshot(self) -> None:
        """Writes a snapshot of the current state and compacts the journal (writer only)."""
        sequence = self._kernel.last_sequence
        stored = log_pb2.JournalSnapshot(
            kernel_snapshot=self._kernel.snapshot(), venue_stream_position=self.venue_stream_position
        )
        await self._journal.write_snapshot(sequence, stored.SerializeToString())
        self._last_snapshot = sequence
        freed = await self._journal.compact()
        log.info("snapshot_written", sequence=sequence, freed_bytes=freed)


def judge(
    kernel: pink_kernel.Kernel,
    kernel_id: str,
    payload: Payload,
    *,
    clock: Callable[[], int],
    trace: Mapping[str, str],
    stream_position: str = "",
) -> Committed:
    """Steps one input through ``kernel`` and builds its ``LogRecord``, exactly as the writer does.

    The input is stamped with ``clock()`` (nanoseconds); a refused input changes nothing and has
    no record. Public so that tools which build journals (the benchmarks) build them as the
    service does.
    """
    message = input_message(payload, time_ns=clock(), trace=trace)
    outcome = outcome_pb2.Outcome.FromString(kernel.step(message.SerializeToString()))
    if not outcome.accepted:
        return Committed(outcome, None)
    message.sequence = outcome.sequence
    record = log_pb2.LogRecord(
        kernel_id=kernel_id,
        sequence=outcome.sequence,
        input=message,
        outcome=outcome,
        post_state=view_pb2.KernelView.FromString(kernel.post_state()),
        venue_stream_position=stream_position,
    )
    if message.HasField("trace"):
        record.trace.CopyFrom(message.trace)
    record.record_time.FromNanoseconds(clock())
    return Committed(outcome, record)
