"""The kernel service's link to the VenueService: commands out, execution reports in.

``VenueLink`` is the only path between the kernel and the venue:

* **Commands.** :meth:`VenueLink.attach` registers a listener on the writer: every command of
  every committed record is queued, in order. A pool of dispatch workers sends them
  (PlaceOrder / CancelOrder / QueryOrder with the command's idempotency key, an explicit
  ``timeout=``), each client order id always on the same worker (a hash of the id picks it) so
  the commands of one order go out in order while different orders go concurrently (two
  orders hashed to one worker wait for each other). The queues are unbounded; their depth is
  :attr:`VenueLink.pending` (logged every 1000). UNAVAILABLE, DEADLINE_EXCEEDED and
  RESOURCE_EXHAUSTED are retried with exponential backoff and the *same* key: the venue never
  creates a second order for a key, so even a retry after a lost answer (the order was placed,
  the reply never came) is safe. After ``RetryPolicy.attempts`` the command is given up with an
  ERROR: the order's deadline in the kernel then queries it, so nothing is stuck. Other codes
  are logged with their details and dropped (the deadline covers them too). Every event of an
  answer is submitted to the kernel, in order; the kernel recognises a fact it has seen.
* **One fact, one judgement.** A command's answer and the execution stream carry the same
  facts (a placement's acknowledgement and fill come back both ways): an exact copy of an
  event the kernel accepted through the link is not submitted again (:mod:`.event_copies`;
  logged at DEBUG, counted in :attr:`VenueLink.copies_skipped`). The kernel stays the judge
  of everything else.
* **Execution reports.** ``StreamExecutions`` from the last position the link judged (at
  start: the journal's ``core.venue_stream_position``), each report submitted with its
  position so a restart resumes there. Reports are queued to the kernel as they are read (up
  to ``STREAM_WINDOW`` awaiting judgement, so a burst shares commits), judged in stream order;
  the link's position moves as each is judged, and every queued report is judged before the
  stream is resubscribed. On an error or an end the stream is resubscribed with
  backoff; replayed reports are refused by the kernel as DUPLICATE_EVENT, never applied twice.
  (The link resumes after the last report the kernel *judged*, accepted or not: a refused report
  does not move the journal's position, and reading it again would only be refused again.) If
  the venue refuses the position itself (OUT_OF_RANGE, INVALID_ARGUMENT, FAILED_PRECONDITION: its
  history was reset), the link logs an ERROR and follows the stream from now; the kernel's
  deadlines query the orders whose reports were missed.
* **Mark prices.** ``StreamMarkPrices`` of the configured symbols, each one submitted in turn
  (no conflation: the kernel's group commit absorbs a few prices per second per symbol).
* **Start-up** (:meth:`VenueLink.startup`, before the service reports SERVING): instruments,
  one reconcile of the kernel's view against the venue's open orders, positions and balance
  (:func:`build_reconcile`), and a re-send of the work that was in flight when the previous
  process stopped (same keys, so the venue never duplicates an order).
* **Run-time reconcile**: the same reconcile again whenever the kernel reports an anomaly that
  needs one (a late fill for a closed trade, an order it does not know, ...) and on a schedule
  (``reconcile_every``), at most once per ``reconcile_spacing``. It is built against the slot
  versions and capital read *before* the venue was asked, so if the kernel applied anything
  to those slots meanwhile it refuses it (VERSION_CONFLICT) and the link tries again later.

Every part runs as a task of :meth:`VenueLink.run`, supervised: a task that fails unexpectedly
is logged with its traceback and restarted with backoff.

Long-lived streams carry an explicit deadline too (``stream_timeout``): when it expires the
stream is resubscribed at once from its position, which also bounds how long a silently dead
connection can go unnoticed.

Tracing: a command carries the trace of the record that emitted it; the RPC runs in that
context (so the client span is its child) and the events of the answer are submitted with
``inject_context()`` of it. Stream reports have no parent span (their carrier is empty).
"""

from __future__ import annotations

import asyncio
import functools
import zlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import grpc
import grpc.aio
from opentelemetry import context as otel_context

from services.common.logging import get_logger
from services.common.proto import (
    command_pb2,
    kernel_input_pb2,
    outcome_pb2,
    slot_pb2,
    types_pb2,
    venue_event_pb2,
    venue_service_pb2,
    venue_service_pb2_grpc,
)
from services.common.telemetry import extract_context, inject_context
from services.kernel.core import Committed, KernelCore, OverloadedError, Payload, WriterFailedError
from services.kernel.event_copies import EventCopies
from services.kernel.venue_reconcile import build_reconcile

__all__ = [
    "GIVE_UP_MESSAGE",
    "RETRYABLE_CODES",
    "RetryPolicy",
    "VenueCallError",
    "VenueLink",
    "VenueLinkError",
]

log = get_logger(__name__)

_R = TypeVar("_R")

#: Codes after which the same request (same idempotency key) is sent again.
RETRYABLE_CODES: Final = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED}
)
#: Logged (ERROR) when a command's retries are exhausted.
GIVE_UP_MESSAGE: Final = "command given up; the kernel's deadline will query the order"
#: Event codes that only say "seen already": expected whenever a fact arrives twice.
_REPEAT_CODES: Final = frozenset({outcome_pb2.DIAGNOSTIC_CODE_DUPLICATE_EVENT, outcome_pb2.DIAGNOSTIC_CODE_STALE_EVENT})
#: Codes with which the venue refuses a resume position of StreamExecutions.
_UNKNOWN_POSITION_CODES: Final = frozenset(
    {grpc.StatusCode.OUT_OF_RANGE, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION}
)
#: The queue depth is logged (WARNING) each time it reaches a multiple of this.
BACKLOG_WARNING: Final = 1000
#: Execution reports queued to the kernel at once while the stream is read on (bounded: a burst
#: of reports cannot fill the kernel's queue ahead of intents).
STREAM_WINDOW: Final = 64
#: Accepted venue events remembered to recognise their copy from the other path.
APPLIED_MEMORY: Final = 4096


class VenueLinkError(Exception):
    """Start-up could not read what it needs from the venue (the service does not start)."""


class VenueCallError(Exception):
    """A venue call failed for good: a non-retryable code, or retries exhausted."""

    def __init__(self, method: str, code: grpc.StatusCode, details: str, *, exhausted: bool) -> None:
        super().__init__(f"{method} failed with {code.name}: {details}")
        self.method = method
        self.code = code
        self.details = details
        self.exhausted = exhausted


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff: ``initial * 2**n`` seconds, at most ``cap``; ``attempts`` calls in all.

    No jitter: one kernel talks to one venue service, so there is no herd to spread.
    """

    initial: float = 0.05
    cap: float = 5.0
    attempts: int = 8

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (0-based)."""
        return float(min(self.cap, self.initial * 2 ** min(retry, 32)))


@dataclass(frozen=True)
class _Work:
    command: command_pb2.Command
    trace: Mapping[str, str]


# ---------------------------------------------------------------------------------- helpers


def _carrier(trace: types_pb2.TraceContext) -> dict[str, str]:
    carrier = {}
    if trace.traceparent:
        carrier["traceparent"] = trace.traceparent
    if trace.tracestate:
        carrier["tracestate"] = trace.tracestate
    return carrier


def _order_id(command: command_pb2.Command) -> str:
    """The client order id a command is about (its dispatch lane)."""
    kind = command.WhichOneof("command")
    if kind == "place_order":
        return command.place_order.client_order_id
    if kind == "cancel_order":
        return command.cancel_order.client_order_id
    if kind == "query_order":
        return command.query_order.client_order_id
    return command.idempotency_key


def _log_command_failure(key: str, failure: VenueCallError) -> None:
    if failure.exhausted:
        log.error(GIVE_UP_MESSAGE, key=key, method=failure.method, code=failure.code.name, details=failure.details)
    else:
        log.error(
            "venue_command_failed", key=key, method=failure.method, code=failure.code.name, details=failure.details
        )


def _violations(outcome: outcome_pb2.Outcome) -> list[str]:
    return [f"{v.field}: {v.description}" for v in outcome.violations]


def _code(outcome: outcome_pb2.Outcome) -> str:
    return outcome_pb2.DiagnosticCode.Name(outcome.code)


class VenueLink:
    """Commands to the venue and its reports back into one :class:`KernelCore` (module docstring)."""

    def __init__(
        self,
        core: KernelCore,
        channel: grpc.aio.Channel,
        *,
        timeout: float,
        symbols: Sequence[str],
        retry: RetryPolicy | None = None,
        workers: int = 8,
        stream_timeout: float = 300.0,
        reconcile_every: float = 300.0,
        reconcile_spacing: float = 5.0,
    ) -> None:
        if min(timeout, stream_timeout, reconcile_every, reconcile_spacing) <= 0:
            raise ValueError("timeouts and intervals must be > 0")
        if workers < 1:
            raise ValueError("workers must be >= 1")
        self._core = core
        self._stub = venue_service_pb2_grpc.VenueServiceStub(channel)
        self._timeout = timeout
        self._stream_timeout = stream_timeout
        self._reconcile_every = reconcile_every
        self._reconcile_spacing = reconcile_spacing
        self._reconcile_wanted = asyncio.Event()
        self._symbols = list(symbols)
        self._retry = retry or RetryPolicy()
        self._queues: list[asyncio.Queue[_Work]] = [asyncio.Queue() for _ in range(workers)]
        self._pending = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._attached = False
        #: Position of the last execution report the kernel judged; None until one is (then the
        #: journal's position applies); "" after the venue refused a position (from now).
        self._stream_position: str | None = None
        #: Execution reports queued to the kernel and not judged yet (at most STREAM_WINDOW).
        self._executions_in_flight: set[asyncio.Future[Committed]] = set()
        self._execution_window = asyncio.Semaphore(STREAM_WINDOW)
        #: The last execution report queued to the kernel (positions advance in stream order).
        self._last_execution: asyncio.Future[Committed] | None = None
        self._copies = EventCopies(APPLIED_MEMORY)
        self._position_changed = asyncio.Event()

    # ------------------------------------------------------------------ commands

    @property
    def pending(self) -> int:
        """Commands queued or being sent."""
        return self._pending

    async def idle(self) -> None:
        """Returns once no command is queued or being sent (e.g. to drain before stopping)."""
        await self._idle.wait()

    @property
    def copies_skipped(self) -> int:
        """Events not submitted because the kernel had accepted the same event by the other path."""
        return self._copies.skipped

    async def _is_copy(self, event: venue_event_pb2.VenueEvent, source: str) -> bool:
        if not await self._copies.is_copy(event):
            return False
        log.debug(
            "venue_event_copy_skipped",
            source=source,
            kind=venue_event_pb2.VenueEventKind.Name(event.kind),
            client_order_id=event.client_order_id,
            venue_event_id=event.venue_event_id,
        )
        return True

    def _set_position(self, position: str) -> None:
        self._stream_position = position
        changed, self._position_changed = self._position_changed, asyncio.Event()
        changed.set()

    async def wait_position(self, position: str) -> None:
        """Returns once the link has dealt with the execution stream up to ``position`` (judged or skipped)."""
        while True:
            changed = self._position_changed
            if self.stream_position == position:
                return
            await changed.wait()

    @property
    def stream_position(self) -> str:
        """Position of the last execution report the kernel judged; the stream resumes after it."""
        return self._core.venue_stream_position if self._stream_position is None else self._stream_position

    def attach(self) -> None:
        """Queues every command of every committed record, in order (call once, before start-up)."""
        if self._attached:
            raise RuntimeError("VenueLink.attach() called twice")
        self._attached = True
        self._core.on_commit(self._on_commit)
        self._core.on_anomalies(self._on_anomalies)

    def _on_anomalies(self, outcome: outcome_pb2.Outcome) -> None:
        if any(anomaly.reconcile_needed for anomaly in outcome.anomalies):
            self._reconcile_wanted.set()

    def _on_commit(self, batch: Sequence[Committed]) -> None:
        for committed in batch:
            if not committed.outcome.commands:
                continue
            trace = _carrier(committed.record.trace) if committed.record is not None else {}
            for command in committed.outcome.commands:
                self._enqueue(_Work(command, trace))

    def _enqueue(self, work: _Work) -> None:
        lane = zlib.crc32(_order_id(work.command).encode()) % len(self._queues)
        self._queues[lane].put_nowait(work)
        self._pending += 1
        self._idle.clear()
        if self._pending % BACKLOG_WARNING == 0:
            log.warning("venue_command_backlog", pending=self._pending)

    async def _worker(self, queue: asyncio.Queue[_Work]) -> None:
        while True:
            work = await queue.get()
            try:
                await self._execute(work.command, work.trace)
            except (asyncio.CancelledError, WriterFailedError):
                raise
            except Exception:
                log.exception("venue_command_failed_unexpectedly", key=work.command.idempotency_key)
                raise
            finally:
                self._pending -= 1
                if self._pending == 0:
                    self._idle.set()
                queue.task_done()

    async def _execute(self, command: command_pb2.Command, trace: Mapping[str, str]) -> None:
        """Sends one command (with retries) and submits the events of its answer, in order."""
        key = command.idempotency_key
        token = otel_context.attach(extract_context(trace)) if trace else None
        try:
            try:
                events = await self._send(command)
            except VenueCallError as failure:
                _log_command_failure(key, failure)
                return
            # Queued together (in order): the events of one answer share a commit, one fsync.
            fresh = [event for event in events if not await self._is_copy(event, "answer")]
            judged = await self._submit_all(fresh, trace=inject_context())
            for event, committed in zip(fresh, judged, strict=True):
                self._log_event(event, committed, source="answer", key=key)
        finally:
            if token is not None:
                otel_context.detach(token)

    async def _send(self, command: command_pb2.Command) -> list[venue_event_pb2.VenueEvent]:
        key = command.idempotency_key
        kind = command.WhichOneof("command")
        if kind == "place_order":
            place_request = venue_service_pb2.PlaceOrderRequest(idempotency_key=key, order=command.place_order)
            placed = await self._call(
                "PlaceOrder", key, lambda: self._stub.PlaceOrder(place_request, timeout=self._timeout)
            )
            return list(placed.events)
        if kind == "cancel_order":
            cancel_request = venue_service_pb2.CancelOrderRequest(idempotency_key=key, order=command.cancel_order)
            cancelled = await self._call(
                "CancelOrder", key, lambda: self._stub.CancelOrder(cancel_request, timeout=self._timeout)
            )
            return list(cancelled.events)
        if kind == "query_order":
            query_request = venue_service_pb2.QueryOrderRequest(idempotency_key=key, order=command.query_order)
            queried = await self._call(
                "QueryOrder", key, lambda: self._stub.QueryOrder(query_request, timeout=self._timeout)
            )
            return list(queried.events)
        log.error("venue_command_without_body", key=key, slot_id=command.slot_id)
        return []

    async def _call(self, method: str, key: str, invoke: Callable[[], Awaitable[_R]]) -> _R:
        """``invoke()`` with retries of :data:`RETRYABLE_CODES`; raises :class:`VenueCallError`."""
        attempt = 0
        while True:
            try:
                return await invoke()
            except grpc.aio.AioRpcError as error:
                code, details = error.code(), error.details() or ""
                if code not in RETRYABLE_CODES:
                    raise VenueCallError(method, code, details, exhausted=False) from error
                attempt += 1
                if attempt >= self._retry.attempts:
                    raise VenueCallError(method, code, details, exhausted=True) from error
                delay = self._retry.delay(attempt - 1)
                log.warning(
                    "venue_call_retry", method=method, key=key, code=code.name, attempt=attempt, delay_seconds=delay
                )
                await asyncio.sleep(delay)

    async def _submit(self, payload: Payload, *, trace: Mapping[str, str], stream_position: str = "") -> Committed:
        """``core.submit``, waiting (with backoff) while the kernel's queue is full: a venue fact is never dropped."""
        attempt = 0
        while True:
            try:
                return await self._core.submit(payload, trace=trace, stream_position=stream_position)
            except OverloadedError:
                delay = self._retry.delay(attempt)
                attempt += 1
                log.warning("kernel_overloaded_waiting", input=type(payload).__name__, delay_seconds=delay)
                await asyncio.sleep(delay)

    async def _submit_all(
        self, events: Sequence[venue_event_pb2.VenueEvent], *, trace: Mapping[str, str]
    ) -> list[Committed]:
        """:meth:`_submit` of every event, all queued before any is awaited; in order, none dropped."""
        answers: list[asyncio.Future[Committed]] = []
        try:
            for event in events:
                # On a full queue this waits; the events before it are queued already, so the order holds.
                answers.append(await self._queue_input(event, trace=trace))
                self._copies.track(event, answers[-1])
        except BaseException:
            # Queued ones are still judged (as after a cancelled submit); nobody waits for their answers.
            for answer in answers:
                answer.cancel()
            raise
        return list(await asyncio.gather(*answers))

    def _log_event(self, event: venue_event_pb2.VenueEvent, committed: Committed, *, source: str, key: str) -> None:
        outcome = committed.outcome
        fields: dict[str, Any] = {
            "source": source,
            "kind": venue_event_pb2.VenueEventKind.Name(event.kind),
            "client_order_id": event.client_order_id,
            "venue_event_id": event.venue_event_id,
        }
        if key:
            fields["key"] = key
        if outcome.accepted and event.kind == venue_event_pb2.VENUE_EVENT_KIND_UNKNOWN:
            # The venue said something the adapter does not know: the kernel changed nothing
            # and queries the order (its UNKNOWN_STATUS anomaly goes to the operators too).
            log.warning(
                "venue_event_unknown_status",
                sequence=outcome.sequence,
                venue_order_id=event.venue_order_id,
                reason=event.reason,
                exchange_ms=event.exchange_time.ToMilliseconds(),
                receive_ms=event.receive_time.ToMilliseconds() if event.HasField("receive_time") else None,
                **fields,
            )
        elif outcome.accepted:
            log.debug("venue_event_applied", sequence=outcome.sequence, **fields)
        elif outcome.code in _REPEAT_CODES:
            log.debug("venue_event_repeat", code=_code(outcome), **fields)
            return
        else:
            log.warning(
                "venue_event_refused",
                code=_code(outcome),
                message=outcome.message,
                violations=_violations(outcome),
                **fields,
            )

    # ------------------------------------------------------------------ streams

    async def _executions(self) -> None:
        """Applies the execution stream; resubscribes after the last judged position on errors."""

        def subscribe() -> grpc.aio.UnaryStreamCall[Any, venue_service_pb2.StreamExecutionsResponse]:
            request = venue_service_pb2.StreamExecutionsRequest(after_position=self.stream_position)
            return self._stub.StreamExecutions(request, timeout=self._stream_timeout)

        await self._follow("executions", subscribe, self._apply_execution, settle=self._settle_executions)

    async def _apply_execution(self, response: venue_service_pb2.StreamExecutionsResponse) -> None:
        """Queues the report and returns (the next report is read meanwhile); judged in order.

        Up to :data:`STREAM_WINDOW` reports wait for their judgement at once, so reports that
        arrive together share a commit; the position moves on as each one is judged.
        """
        if not response.HasField("event"):
            log.error("venue_execution_without_event", position=response.position)
            await self._settle_executions()  # the position moves only past judged reports
            if response.position:
                self._set_position(response.position)
            return
        if await self._is_copy(response.event, "stream"):
            self._advance_past_copy(response.position)
            return
        await self._execution_window.acquire()
        try:
            answer = await self._queue_input(response.event, trace=inject_context(), stream_position=response.position)
        except BaseException:
            self._execution_window.release()
            raise
        self._copies.track(response.event, answer)
        self._executions_in_flight.add(answer)
        self._last_execution = answer
        answer.add_done_callback(functools.partial(self._execution_judged, response))

    def _advance_past_copy(self, position: str) -> None:
        """The position moves past a skipped copy once every report before it is judged."""
        if not position:
            return
        before = self._last_execution
        if before is None or before.done():
            self._set_position(position)
            return

        def advance(answer: asyncio.Future[Committed]) -> None:
            # Runs after ``_execution_judged`` of that report (registered first); a report that
            # was not judged keeps the position where it is, as it would for the report itself.
            if not answer.cancelled() and answer.exception() is None:
                self._set_position(position)

        before.add_done_callback(advance)

    def _execution_judged(
        self, response: venue_service_pb2.StreamExecutionsResponse, answer: asyncio.Future[Committed]
    ) -> None:
        # Answers resolve in queue order, so positions advance in stream order.
        self._executions_in_flight.discard(answer)
        self._execution_window.release()
        if answer.cancelled():
            return
        error = answer.exception()
        if error is not None:
            # The writer failed: the next report's submission raises and stops the link.
            log.warning("venue_execution_not_judged", position=response.position, error=repr(error))
            return
        self._log_event(response.event, answer.result(), source="stream", key="")
        if response.position:
            self._set_position(response.position)

    async def _settle_executions(self) -> None:
        """Waits until every queued report is judged (before the stream is resubscribed from its position)."""
        if self._executions_in_flight:
            await asyncio.gather(*self._executions_in_flight, return_exceptions=True)

    async def _queue_input(
        self, payload: Payload, *, trace: Mapping[str, str], stream_position: str = ""
    ) -> asyncio.Future[Committed]:
        """``core.enqueue``, waiting (with backoff) while the kernel's queue is full: a venue fact is never dropped."""
        attempt = 0
        while True:
            try:
                return self._core.enqueue(payload, trace=trace, stream_position=stream_position)
            except OverloadedError:
                delay = self._retry.delay(attempt)
                attempt += 1
                log.warning("kernel_overloaded_waiting", input=type(payload).__name__, delay_seconds=delay)
                await asyncio.sleep(delay)

    async def _marks(self) -> None:
        """Applies the mark-price stream (one submission at a time); resubscribes on errors."""

        def subscribe() -> grpc.aio.UnaryStreamCall[Any, venue_service_pb2.StreamMarkPricesResponse]:
            request = venue_service_pb2.StreamMarkPricesRequest(symbols=self._symbols)
            return self._stub.StreamMarkPrices(request, timeout=self._stream_timeout)

        await self._follow("marks", subscribe, self._apply_mark)

    async def _apply_mark(self, response: venue_service_pb2.StreamMarkPricesResponse) -> None:
        committed = await self._submit(response.mark_price, trace=inject_context())
        if not committed.accepted:
            log.warning(
                "mark_price_refused",
                symbol=response.mark_price.symbol,
                code=_code(committed.outcome),
                message=committed.outcome.message,
                violations=_violations(committed.outcome),
            )

    async def _follow(
        self,
        stream: str,
        subscribe: Callable[[], grpc.aio.UnaryStreamCall[Any, _R]],
        handle: Callable[[_R], Awaitable[None]],
        *,
        settle: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Reads a server stream for ever: each message to ``handle``; resubscribes with backoff.

        The stream's own deadline (``stream_timeout``) renews it at once; an early
        DEADLINE_EXCEEDED, any other error or an end counts as a failure (backoff). ``settle``
        (when given) runs before every subscription and error handling: what ``handle`` queued
        is judged by then, so the stream resumes from a settled position.
        """
        loop = asyncio.get_running_loop()
        failures = 0
        while True:
            if settle is not None:
                await settle()
            started = loop.time()
            call = subscribe()
            try:
                async for response in call:
                    failures = 0
                    await handle(response)
                log.warning("venue_stream_ended", **self._where(stream))
            except grpc.aio.AioRpcError as error:
                if settle is not None:
                    await settle()
                if self._stream_failed(stream, error, renewal=loop.time() - started >= self._stream_timeout / 2):
                    continue
            finally:
                call.cancel()
            delay = self._retry.delay(failures)
            failures += 1
            await asyncio.sleep(delay)

    def _where(self, stream: str) -> dict[str, str]:
        if stream == "executions":
            return {"stream": stream, "position": self.stream_position}
        return {"stream": stream}

    def _stream_failed(self, stream: str, error: grpc.aio.AioRpcError, *, renewal: bool) -> bool:
        """Logs a stream's error; True when it is resubscribed at once (else after a backoff)."""
        code = error.code()
        if code == grpc.StatusCode.DEADLINE_EXCEEDED and renewal:
            log.info("venue_stream_renewed", **self._where(stream))
            return True
        if stream == "executions" and code in _UNKNOWN_POSITION_CODES and self.stream_position:
            # The venue no longer knows the position (its history was reset): follow it from now;
            # what happened in between reaches the kernel through its deadlines' queries.
            log.error(
                "venue_stream_position_refused",
                code=code.name,
                details=error.details(),
                action="resubscribing from now; the kernel's deadlines query what was missed",
                **self._where(stream),
            )
            self._set_position("")
            return True
        log.warning("venue_stream_failed", code=code.name, details=error.details(), **self._where(stream))
        return False

    # ------------------------------------------------------------------ running

    async def run(self) -> None:
        """Dispatch workers, the execution stream and the mark-price stream, until cancelled.

        A task that fails unexpectedly is logged and restarted with backoff. Returns only if
        the kernel's writer failed (the service is going down then).
        """
        if not self._attached:
            log.warning("venue_link_running_unattached", note="no command will be dispatched")
        async with asyncio.TaskGroup() as group:
            for index, queue in enumerate(self._queues):
                group.create_task(self._supervise(f"dispatch-{index}", functools.partial(self._worker, queue)))
            group.create_task(self._supervise("executions", self._executions))
            group.create_task(self._supervise("marks", self._marks))
            group.create_task(self._supervise("reconciler", self._reconciler))

    async def _supervise(self, name: str, body: Callable[[], Awaitable[None]]) -> None:
        loop = asyncio.get_running_loop()
        failures = 0
        while True:
            started = loop.time()
            try:
                await body()
                log.error("venue_link_task_ended", task=name)
            except WriterFailedError:
                log.warning("venue_link_task_stopped", task=name, reason="the kernel writer failed")
                return
            except Exception:  # the supervisor must outlive any bug: logged with its traceback, restarted
                log.exception("venue_link_task_failed", task=name)
            if loop.time() - started > 2 * self._retry.cap:
                failures = 0
            delay = self._retry.delay(failures)
            failures += 1
            log.warning("venue_link_task_restarting", task=name, delay_seconds=delay)
            await asyncio.sleep(delay)

    # ------------------------------------------------------------------ start-up

    async def startup(self) -> None:
        """Instruments, one reconcile, then a re-send of the work in flight (before SERVING).

        Raises :class:`VenueLinkError` when the venue cannot be read (after retries): the
        service then does not start. A reconcile the kernel refuses is logged, not raised:
        the service serves and the operator decides (kill switch).
        """
        await self._load_instruments()
        await self._reconcile("startup")
        await self._resend_in_flight()

    async def _read(self, method: str, invoke: Callable[[], Awaitable[_R]]) -> _R:
        try:
            return await self._call(method, "", invoke)
        except VenueCallError as failure:
            raise VenueLinkError(f"start-up could not read the venue: {failure}") from failure

    async def _load_instruments(self) -> None:
        request = venue_service_pb2.GetInstrumentsRequest(symbols=self._symbols)
        response = await self._read("GetInstruments", lambda: self._stub.GetInstruments(request, timeout=self._timeout))
        found = {instrument.symbol for instrument in response.instruments}
        missing = [symbol for symbol in self._symbols if symbol not in found]
        if missing:
            log.error(
                "venue_instruments_missing", symbols=missing, note="ENTER on them is refused (UNKNOWN_INSTRUMENT)"
            )
        if not response.instruments:
            return
        update = kernel_input_pb2.InstrumentUpdate(instruments=response.instruments)
        committed = await self._submit(update, trace=inject_context())
        if committed.accepted:
            log.info("venue_instruments_loaded", symbols=sorted(found), sequence=committed.outcome.sequence)
        else:
            log.error(
                "venue_instruments_refused",
                code=_code(committed.outcome),
                message=committed.outcome.message,
                violations=_violations(committed.outcome),
            )

    async def _reconciler(self) -> None:
        """Run-time reconciles: on a reconcile-needed anomaly or on schedule, spaced out."""
        while True:
            try:
                await asyncio.wait_for(self._reconcile_wanted.wait(), self._reconcile_every)
                reason = "anomaly"
            except TimeoutError:
                reason = "schedule"
            self._reconcile_wanted.clear()
            outcome: outcome_pb2.Outcome | None = None
            failure: VenueCallError | None = None
            try:
                outcome = await self._reconcile(reason)
            except VenueCallError as error:
                failure = error
            if outcome is None:
                log.error("reconcile_venue_unreadable", reason=reason, error=str(failure), action="tried again later")
                self._reconcile_wanted.set()
            elif outcome.code == outcome_pb2.DIAGNOSTIC_CODE_VERSION_CONFLICT:
                self._reconcile_wanted.set()  # the kernel moved while the venue was read: build it again
            # Spacing, not synchronisation: anomalies arriving meanwhile coalesce into the next round.
            await asyncio.sleep(self._reconcile_spacing)

    async def _reconcile(self, reason: str) -> outcome_pb2.Outcome:
        """Reads the venue's truth, submits a Reconcile built against the state read before, logs it.

        At start-up (``reason == "startup"``) an unreadable venue is a :class:`VenueLinkError`;
        at run time a :class:`VenueCallError`.
        """

        async def call(method: str, key: str, invoke: Callable[[], Awaitable[_R]]) -> _R:
            return await (self._read(method, invoke) if reason == "startup" else self._call(method, key, invoke))

        view = self._core.view
        slots, capital, sequence = dict(view.slots), view.account.capital, view.sequence
        orders_request = venue_service_pb2.ListOpenOrdersRequest()
        positions_request = venue_service_pb2.ListPositionsRequest()
        balance_request = venue_service_pb2.GetBalanceRequest()
        orders: venue_service_pb2.ListOpenOrdersResponse = await call(
            "ListOpenOrders", "", lambda: self._stub.ListOpenOrders(orders_request, timeout=self._timeout)
        )
        positions: venue_service_pb2.ListPositionsResponse = await call(
            "ListPositions", "", lambda: self._stub.ListPositions(positions_request, timeout=self._timeout)
        )
        balance: venue_service_pb2.GetBalanceResponse = await call(
            "GetBalance", "", lambda: self._stub.GetBalance(balance_request, timeout=self._timeout)
        )
        reconcile, findings = build_reconcile(
            f"{reason}-{sequence}", slots, list(orders.orders), list(positions.positions), balance, capital=capital
        )
        for finding in findings:
            log.log(finding.level, finding.event, reconcile_id=reconcile.reconcile_id, **finding.fields)
        committed = await self._submit(reconcile, trace=inject_context())
        outcome = committed.outcome  # its anomalies are logged by the writer
        if outcome.code == outcome_pb2.DIAGNOSTIC_CODE_VERSION_CONFLICT:
            log.info(
                "reconcile_superseded",
                reconcile_id=reconcile.reconcile_id,
                message=outcome.message,
                action="the kernel moved while the venue was read; built again later",
            )
        elif outcome.accepted:
            log.info(
                "reconciled",
                reason=reason,
                reconcile_id=reconcile.reconcile_id,
                sequence=outcome.sequence,
                slots=len(reconcile.slots),
                transitions=len(outcome.transitions),
                commands=len(outcome.commands),
                anomalies=len(outcome.anomalies),
            )
        elif outcome.code == outcome_pb2.DIAGNOSTIC_CODE_RECONCILE_CONFLICT:
            log.error(
                "reconcile_conflict",
                reconcile_id=reconcile.reconcile_id,
                message=outcome.message,
                violations=_violations(outcome),
                note="nothing adopted; the service serves, the operator decides (kill switch)",
            )
        else:
            log.error(
                "reconcile_refused",
                reconcile_id=reconcile.reconcile_id,
                code=_code(outcome),
                message=outcome.message,
                violations=_violations(outcome),
            )
        return outcome

    def _in_flight(self) -> list[command_pb2.Command]:
        """PlaceOrder again for every PENDING_NEW order, CancelOrder again for every cancel requested."""
        commands: list[command_pb2.Command] = []
        slots = self._core.view.slots
        for slot_id in sorted(slots):
            slot = slots[slot_id]
            if not slot.HasField("active_order"):
                continue
            order = slot.active_order
            command = command_pb2.Command(slot_id=slot_id, trade_id=slot.trade_id)
            if order.cancel_requested:
                command.idempotency_key = f"{order.client_order_id}:cancel:{order.cancels_sent}"
                command.cancel_order.CopyFrom(
                    command_pb2.CancelOrder(
                        client_order_id=order.client_order_id, venue_order_id=order.venue_order_id, symbol=order.symbol
                    )
                )
            elif order.status == slot_pb2.ORDER_STATUS_PENDING_NEW:
                command.idempotency_key = order.client_order_id
                place = command_pb2.PlaceOrder(
                    client_order_id=order.client_order_id,
                    symbol=order.symbol,
                    side=order.side,
                    order_type=order.order_type,
                    quantity=order.quantity,
                    time_in_force=order.time_in_force,
                    reduce_only=order.reduce_only,
                    leverage=slot.leverage,
                    purpose=order.purpose,
                    position_side=slot.side,
                )
                if order.HasField("limit_price"):
                    place.limit_price.CopyFrom(order.limit_price)
                command.place_order.CopyFrom(place)
            else:
                continue
            commands.append(command)
        return commands

    async def _resend_in_flight(self) -> None:
        commands = self._in_flight()
        if not commands:
            return
        log.info(
            "venue_resending_in_flight",
            keys=[command.idempotency_key for command in commands],
            note="same idempotency keys: the venue never creates a second order",
        )
        limit = asyncio.Semaphore(len(self._queues))

        async def one(command: command_pb2.Command) -> None:
            async with limit:
                await self._execute(command, {})

        await asyncio.gather(*(one(command) for command in commands))
