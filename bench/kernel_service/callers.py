"""The RPC callers whose latencies are compared: empty, read (GetControl), MarkPrice and SubmitIntent.

Each is a :data:`~bench.kernel_service.stats.Caller`: it times the one RPC whose answer counts
and returns the not-ready refusals it retried first. Intents are built with the kernel tests'
builders (``tests.kernel.helpers``), so the bench sends what the tests send.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import grpc.aio
from google.protobuf import empty_pb2

from bench.kernel_service.floor import EMPTY_METHOD
from bench.kernel_service.settings import NOT_READY, RPC_TIMEOUT, BenchError
from bench.kernel_service.stats import Caller
from services.common.proto import intent_pb2, kernel_service_pb2, kernel_service_pb2_grpc, outcome_pb2
from tests.kernel.helpers import BTC, enter, exit_intent, mark_price


def empty_caller(channel: grpc.aio.Channel, name: str = EMPTY_METHOD) -> Caller:
    """The empty unary RPC of the floor's server (or its durable twin, ``DURABLE_METHOD``)."""
    method = channel.unary_unary(
        name,
        request_serializer=empty_pb2.Empty.SerializeToString,
        response_deserializer=empty_pb2.Empty.FromString,
    )
    request = empty_pb2.Empty()

    async def call(_worker: int) -> tuple[int, int]:
        begun = time.perf_counter_ns()
        await method(request, timeout=RPC_TIMEOUT)
        return 0, time.perf_counter_ns() - begun

    return call


def read_caller(channel: grpc.aio.Channel) -> Caller:
    """KernelService.GetControl: a read served from the view cache (the kernel process's own RPC cost)."""
    stub = kernel_service_pb2_grpc.KernelServiceStub(channel)
    request = kernel_service_pb2.GetControlRequest()

    async def call(_worker: int) -> tuple[int, int]:
        begun = time.perf_counter_ns()
        await stub.GetControl(request, timeout=RPC_TIMEOUT)
        return 0, time.perf_counter_ns() - begun

    return call


def mark_caller(channel: grpc.aio.Channel) -> Caller:
    """KernelService.MarkPrice: a journaled input that sends nothing to the venue (the write path alone)."""
    stub = kernel_service_pb2_grpc.KernelServiceStub(channel)
    prices = [f"{50_000 + i / 10:.1f}" for i in range(100)]
    count = 0

    async def call(_worker: int) -> tuple[int, int]:
        nonlocal count
        count += 1
        request = kernel_service_pb2.MarkPriceRequest(mark_price=mark_price(BTC, prices[count % 100]))
        begun = time.perf_counter_ns()
        response = await stub.MarkPrice(request, timeout=RPC_TIMEOUT)
        ended = time.perf_counter_ns()
        if not response.outcome.accepted:
            code = outcome_pb2.DiagnosticCode.Name(response.outcome.code)
            raise BenchError(f"a mark price was refused: {code} {response.outcome.message}")
        return 0, ended - begun

    return call


class IntentCaller:
    """Accepted intents only: each worker owns slots and cycles ENTER on all of them, then EXIT on all.

    A refusal that only means the venue's fill of the slot's previous order is not committed
    yet (ENTRY_IN_PROGRESS, SLOT_BUSY) is counted and retried after a backoff (2 ms doubling to
    64 ms); the latency sample is the RPC that was accepted, and the time spent waiting for the
    slot is kept apart (``waits``). Any other refusal raises.
    """

    def __init__(self, channel: grpc.aio.Channel, slots: Sequence[Sequence[int]], tag: str) -> None:
        self._stub = kernel_service_pb2_grpc.KernelServiceStub(channel)
        self._slots = slots
        self._tag = tag
        self._cursor = [0] * len(slots)
        self.waits: list[int] = []

    def _next(self, worker: int) -> intent_pb2.Intent:
        slots = self._slots[worker]
        n = self._cursor[worker]
        self._cursor[worker] = n + 1
        slot = slots[n % len(slots)]
        intent_id = f"{self._tag}{worker}-{n}"
        if (n // len(slots)) % 2:
            return exit_intent(intent_id, slot)
        return enter(intent_id, slot, size="0.001", leverage="5", reference_price="50000")

    async def __call__(self, worker: int) -> tuple[int, int]:
        intent = self._next(worker)
        refused = 0
        first = time.perf_counter_ns()
        while True:
            begun = time.perf_counter_ns()
            response = await self._stub.SubmitIntent(
                kernel_service_pb2.SubmitIntentRequest(intent=intent), timeout=RPC_TIMEOUT
            )
            ended = time.perf_counter_ns()
            outcome = response.outcome
            if outcome.accepted:
                if refused:
                    self.waits.append(begun - first)
                return refused, ended - begun
            if outcome.code not in NOT_READY:
                raise BenchError(
                    f"intent {intent.intent_id} on slot {intent.slot_id} was refused: "
                    f"{outcome_pb2.DiagnosticCode.Name(outcome.code)} {outcome.message}"
                )
            refused += 1
            if ended - first > RPC_TIMEOUT * 1e9:
                raise BenchError(
                    f"slot {intent.slot_id} did not become ready for {intent.intent_id} in {RPC_TIMEOUT} s"
                )
            await asyncio.sleep(min(0.064, 0.001 * 2**refused))
            intent.intent_id = f"{intent.intent_id}r"
