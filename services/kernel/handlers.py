"""KernelService gRPC handlers: validate the request shape, submit to the writer, answer.

Field validation of inputs is the kernel's (one rule set for every caller); its
INVALID_INPUT becomes INVALID_ARGUMENT with a google.rpc.BadRequest naming every field, and
changes nothing. Every other kernel decision is an OK answer carrying the Outcome. Reads are
served from the writer's committed view cache, never from the kernel itself.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, NoReturn, TypeAlias, TypeVar

import grpc
from google.protobuf.message import Message

from services.common.errors import abort_internal, abort_invalid_argument, abort_with
from services.common.logging import get_logger
from services.common.proto import (
    kernel_service_pb2,
    kernel_service_pb2_grpc,
    outcome_pb2,
    slot_pb2,
    view_pb2,
)
from services.common.telemetry import inject_context
from services.kernel.core import Committed, KernelCore, OverloadedError, Payload, ViewCache, WriterFailedError
from services.kernel.feeds import CompactedError, RecordFeed
from services.kernel.journal import Journal, JournalError
from services.kernel.metrics import KernelMetrics

log = get_logger(__name__)

Response = TypeVar("Response")
Context: TypeAlias = grpc.aio.ServicerContext[Any, Any]

MAX_EVENTS = 1000
MAX_WAIT_SECONDS = 300.0
_INVALID = outcome_pb2.DIAGNOSTIC_CODE_INVALID_INPUT


def _violations(outcome: outcome_pb2.Outcome, kernel: str = "", request: str = "") -> list[tuple[str, str]]:
    """The kernel's violations, named as the caller's request names the fields.

    The kernel names fields by its input's payload (``venue_event.fee``, ``control_update.actor``);
    a field path is only useful to a client in terms of the message it sent, so the payload's
    prefix ``kernel`` is replaced by the request's ``request`` (``events[3].``, ``update.``).
    """
    return [
        (request + v.field.removeprefix(kernel) if v.field.startswith(kernel) else v.field, v.description)
        for v in outcome.violations
    ]


async def _require(context: Context, request: Message, field: str) -> None:
    """INVALID_ARGUMENT naming ``field`` when the request does not carry that message."""
    if not request.HasField(field):
        await abort_invalid_argument(context, f"{field} is required", [(field, "is required")])


def _valid_consumer(name: str) -> bool:
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-")
    return 0 < len(name) <= 64 and set(name) <= allowed


class KernelServicer(kernel_service_pb2_grpc.KernelServiceServicer):
    """The KernelService API over one ``KernelCore``."""

    def __init__(
        self,
        core: KernelCore,
        feed: RecordFeed,
        journal: Journal,
        metrics: KernelMetrics,
        *,
        kernel_id: str,
        version: str,
    ) -> None:
        self._core = core
        self._kernel_id = kernel_id
        self._version = version
        self._feed = feed
        self._journal = journal
        self._metrics = metrics
        #: Mutations are refused until start-up (recovery, venue reconcile) is over.
        self.accepting = False

    async def _guard(self, method: str, context: Context, call: Callable[[], Awaitable[Response]]) -> Response:
        """Runs one unary handler: maps service failures to status codes, times it."""
        started = time.perf_counter()
        try:
            if not self.accepting:
                await abort_with(
                    context,
                    grpc.StatusCode.UNAVAILABLE,
                    "the kernel is starting or stopping",
                    reason="KERNEL_NOT_SERVING",
                )
            return await call()
        except OverloadedError as error:
            await abort_with(context, grpc.StatusCode.RESOURCE_EXHAUSTED, str(error), reason="KERNEL_OVERLOADED")
        except WriterFailedError:
            await abort_with(
                context,
                grpc.StatusCode.UNAVAILABLE,
                "the kernel is shutting down after a journal failure",
                reason="KERNEL_UNAVAILABLE",
            )
        except JournalError as error:
            await self._internal(context, method, error)
        finally:
            self._metrics.rpc_seconds.labels(method=method).observe(time.perf_counter() - started)

    async def _internal(self, context: Context, method: str, error: BaseException) -> NoReturn:
        correlation = uuid.uuid4().hex
        log.error("internal_error", method=method, correlation_id=correlation, error=repr(error))
        await abort_internal(context, correlation, "internal error in the kernel service")

    async def _submit(self, context: Context, payload: Payload, kernel: str = "", request: str = "") -> Committed:
        committed = await self._core.submit(payload, trace=inject_context())
        if committed.outcome.code == _INVALID:
            violations = _violations(committed.outcome, kernel, request)
            await abort_invalid_argument(context, committed.outcome.message, violations)
        return committed

    # ------------------------------------------------------------------ mutations

    async def SubmitIntent(  # noqa: N802 - gRPC method name
        self, request: kernel_service_pb2.SubmitIntentRequest, context: Context
    ) -> kernel_service_pb2.SubmitIntentResponse:
        async def call() -> kernel_service_pb2.SubmitIntentResponse:
            await _require(context, request, "intent")
            wait = await self._wait_spec(request, context)
            committed = await self._submit(context, request.intent)
            slot_id = request.intent.slot_id
            satisfied = False
            if wait is not None and committed.accepted:
                satisfied = await self._wait(committed, slot_id, *wait)
            response = kernel_service_pb2.SubmitIntentResponse(outcome=committed.outcome, wait_satisfied=satisfied)
            slot = self._slot_as_of(committed, slot_id) if wait is None else self._core.view.slots.get(slot_id)
            if slot is not None:
                response.slot.CopyFrom(slot)
            return response

        return await self._guard("SubmitIntent", context, call)

    def _slot_as_of(self, committed: Committed, slot_id: int) -> slot_pb2.Slot | None:
        """The slot as the decision left it (its record's post-state), not as later records changed it."""
        if committed.record is not None:
            for slot in committed.record.post_state.slots:
                if slot.slot_id == slot_id:
                    return slot
        # Rejected (nothing changed) or the intent did not change this slot: its state at the
        # judgement may since have moved on; the current view is the closest committed state.
        return self._core.view.slots.get(slot_id)

    async def _wait_spec(
        self, request: kernel_service_pb2.SubmitIntentRequest, context: Context
    ) -> tuple[set[kernel_service_pb2.WaitFor.ValueType], float] | None:
        if not request.HasField("wait"):
            return None
        wanted = set(request.wait.any_of)
        timeout = request.wait.timeout.ToTimedelta().total_seconds()
        problems = []
        if not wanted or not wanted <= {
            kernel_service_pb2.WAIT_FOR_VENUE_ANSWER,
            kernel_service_pb2.WAIT_FOR_ORDER_DONE,
        }:
            problems.append(("wait.any_of", "must list VENUE_ANSWER and/or ORDER_DONE"))
        if not 0 < timeout <= MAX_WAIT_SECONDS:
            problems.append(("wait.timeout", f"must be > 0 and at most {MAX_WAIT_SECONDS:.0f} s"))
        if problems:
            await abort_invalid_argument(context, "invalid wait condition", problems)
        return wanted, timeout

    async def _wait(
        self, committed: Committed, slot_id: int, wanted: set[kernel_service_pb2.WaitFor.ValueType], seconds: float
    ) -> bool:
        placed = [c.place_order.client_order_id for c in committed.outcome.commands if c.HasField("place_order")]
        if not placed:
            return False
        client_order_id = placed[0]

        def reached(view: ViewCache) -> bool:
            slot = view.slots.get(slot_id)
            if slot is None:
                return False
            order = slot.active_order if slot.HasField("active_order") else None
            if order is None or order.client_order_id != client_order_id:
                return True  # the order left the slot: it is done (and so answered)
            answered = order.status != slot_pb2.ORDER_STATUS_PENDING_NEW
            return kernel_service_pb2.WAIT_FOR_VENUE_ANSWER in wanted and answered

        return await self._core.wait_for(reached, seconds)

    async def ApplyVenueEvents(  # noqa: N802
        self, request: kernel_service_pb2.ApplyVenueEventsRequest, context: Context
    ) -> kernel_service_pb2.ApplyVenueEventsResponse:
        async def call() -> kernel_service_pb2.ApplyVenueEventsResponse:
            if not 0 < len(request.events) <= MAX_EVENTS:
                await abort_invalid_argument(
                    context, "events", [("events", f"must hold 1 to {MAX_EVENTS} events, got {len(request.events)}")]
                )
            response = kernel_service_pb2.ApplyVenueEventsResponse()
            for index, event in enumerate(request.events):
                # Events apply in order; the first invalid one stops the batch and says how many went in.
                committed = await self._core.submit(event, trace=inject_context())
                if committed.outcome.code == _INVALID:
                    await abort_invalid_argument(
                        context,
                        f"events[{index}] is invalid; {index} earlier events were applied",
                        _violations(committed.outcome, "venue_event.", f"events[{index}]."),
                    )
                response.outcomes.append(committed.outcome)
            return response

        return await self._guard("ApplyVenueEvents", context, call)

    async def MarkPrice(  # noqa: N802
        self, request: kernel_service_pb2.MarkPriceRequest, context: Context
    ) -> kernel_service_pb2.MarkPriceResponse:
        async def call() -> kernel_service_pb2.MarkPriceResponse:
            await _require(context, request, "mark_price")
            committed = await self._submit(context, request.mark_price)
            return kernel_service_pb2.MarkPriceResponse(outcome=committed.outcome)

        return await self._guard("MarkPrice", context, call)

    async def UpdateControl(  # noqa: N802
        self, request: kernel_service_pb2.UpdateControlRequest, context: Context
    ) -> kernel_service_pb2.UpdateControlResponse:
        async def call() -> kernel_service_pb2.UpdateControlResponse:
            await _require(context, request, "update")
            committed = await self._submit(context, request.update, "control_update.", "update.")
            return kernel_service_pb2.UpdateControlResponse(outcome=committed.outcome, control=self._core.view.control)

        return await self._guard("UpdateControl", context, call)

    async def Reconcile(  # noqa: N802
        self, request: kernel_service_pb2.ReconcileRequest, context: Context
    ) -> kernel_service_pb2.ReconcileResponse:
        async def call() -> kernel_service_pb2.ReconcileResponse:
            await _require(context, request, "reconcile")
            committed = await self._submit(context, request.reconcile)
            return kernel_service_pb2.ReconcileResponse(outcome=committed.outcome)

        return await self._guard("Reconcile", context, call)

    # ------------------------------------------------------------------ reads

    async def GetSlot(  # noqa: N802
        self, request: kernel_service_pb2.GetSlotRequest, context: Context
    ) -> kernel_service_pb2.GetSlotResponse:
        view = self._core.view
        slot = view.slots.get(request.slot_id)
        if slot is None:
            await abort_invalid_argument(
                context, "no such slot", [("slot_id", f"must be below the slot count {len(view.slots)}")]
            )
        return kernel_service_pb2.GetSlotResponse(slot=slot, sequence=view.sequence)

    async def ListSlots(  # noqa: N802
        self, request: kernel_service_pb2.ListSlotsRequest, context: Context
    ) -> kernel_service_pb2.ListSlotsResponse:
        known = set(slot_pb2.SlotState.values()) - {slot_pb2.SLOT_STATE_UNSPECIFIED}
        unknown = [state for state in request.states if state not in known]
        if unknown:
            await abort_invalid_argument(context, "unknown slot states", [("states", f"unknown values {unknown}")])
        view = self._core.view
        wanted = set(request.states)
        slots = [view.slots[i] for i in sorted(view.slots) if not wanted or view.slots[i].state in wanted]
        return kernel_service_pb2.ListSlotsResponse(slots=slots, sequence=view.sequence)

    async def GetAccount(  # noqa: N802
        self, request: kernel_service_pb2.GetAccountRequest, context: Context
    ) -> kernel_service_pb2.GetAccountResponse:
        view = self._core.view
        return kernel_service_pb2.GetAccountResponse(account=view.account, sequence=view.sequence)

    async def GetControl(  # noqa: N802
        self, request: kernel_service_pb2.GetControlRequest, context: Context
    ) -> kernel_service_pb2.GetControlResponse:
        view = self._core.view
        return kernel_service_pb2.GetControlResponse(control=view.control, sequence=view.sequence)

    # ------------------------------------------------------------------ streams

    async def WatchRecords(  # noqa: N802
        self, request: kernel_service_pb2.WatchRecordsRequest, context: Context
    ) -> AsyncIterator[kernel_service_pb2.WatchRecordsResponse]:
        if request.consumer:
            if not _valid_consumer(request.consumer):
                await abort_invalid_argument(
                    context, "invalid consumer", [("consumer", "must be 1-64 characters of A-Z a-z 0-9 _ . : -")]
                )
            await self._journal.register_consumer(request.consumer)
        self._metrics.watchers.labels(stream="records").inc()
        try:
            async for record in self._feed.records(request.after_sequence):
                yield kernel_service_pb2.WatchRecordsResponse(record=record)
        except CompactedError as error:
            await abort_with(context, grpc.StatusCode.FAILED_PRECONDITION, str(error), reason="JOURNAL_COMPACTED")
        finally:
            self._metrics.watchers.labels(stream="records").dec()

    async def WatchSlots(  # noqa: N802
        self, request: kernel_service_pb2.WatchSlotsRequest, context: Context
    ) -> AsyncIterator[kernel_service_pb2.WatchSlotsResponse]:
        wanted = set(request.slot_ids)
        unknown = sorted(wanted - set(self._core.view.slots))
        if unknown:
            await abort_invalid_argument(context, "no such slots", [("slot_ids", f"unknown slots {unknown}")])

        def full() -> kernel_service_pb2.WatchSlotsResponse:
            view = self._core.view
            slots = [view.slots[i] for i in sorted(view.slots) if not wanted or i in wanted]
            return kernel_service_pb2.WatchSlotsResponse(
                sequence=view.sequence, view=view_pb2.KernelView(sequence=view.sequence, slots=slots), full=True
            )

        if request.after_sequence > self._core.committed_sequence:
            await abort_invalid_argument(
                context,
                "after_sequence ahead of the log",
                [("after_sequence", f"the log ends at {self._core.committed_sequence}")],
            )
        self._metrics.watchers.labels(stream="slots").inc()
        try:
            if request.after_sequence:
                async for record in self._feed.records(request.after_sequence):
                    slots = [s for s in record.post_state.slots if not wanted or s.slot_id in wanted]
                    if slots:
                        view = view_pb2.KernelView(sequence=record.sequence, slots=slots)
                        yield kernel_service_pb2.WatchSlotsResponse(sequence=record.sequence, view=view)
                return
            yield full()
            async for change in self._feed.changes():
                if change is None:
                    self._metrics.lagging.labels(stream="slots").inc()
                    yield full()
                    continue
                if change.record is None:
                    continue
                post = change.record.post_state
                slots = [s for s in post.slots if not wanted or s.slot_id in wanted]
                if slots:
                    view = view_pb2.KernelView(sequence=change.record.sequence, slots=slots)
                    yield kernel_service_pb2.WatchSlotsResponse(sequence=change.record.sequence, view=view)
        except CompactedError as error:
            await abort_with(context, grpc.StatusCode.FAILED_PRECONDITION, str(error), reason="JOURNAL_COMPACTED")
        finally:
            self._metrics.watchers.labels(stream="slots").dec()

    async def AckRecords(  # noqa: N802
        self, request: kernel_service_pb2.AckRecordsRequest, context: Context
    ) -> kernel_service_pb2.AckRecordsResponse:
        if request.consumer not in self._journal.consumers:
            await abort_invalid_argument(
                context, "unknown consumer", [("consumer", "register it first with WatchRecords(consumer=...)")]
            )
        if request.sequence > self._core.committed_sequence:
            await abort_invalid_argument(
                context, "sequence ahead of the log", [("sequence", f"the log ends at {self._core.committed_sequence}")]
            )
        acknowledged = await self._journal.ack(request.consumer, request.sequence)
        return kernel_service_pb2.AckRecordsResponse(acknowledged_sequence=acknowledged)

    async def GetStatus(  # noqa: N802
        self, request: kernel_service_pb2.GetStatusRequest, context: Context
    ) -> kernel_service_pb2.GetStatusResponse:
        state_sequence, state_hash = self._core.state()
        first = self._journal.first_sequence
        return kernel_service_pb2.GetStatusResponse(
            kernel_id=self._kernel_id,
            sequence=self._core.committed_sequence,
            state_hash=state_hash,
            state_sequence=state_sequence,
            journal_first_sequence=first if first <= self._journal.last_sequence else 0,
            snapshot_sequence=self._core.snapshot_sequence,
            venue_stream_position=self._core.venue_stream_position,
            serving=self.accepting,
            version=self._version,
        )
