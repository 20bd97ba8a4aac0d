"""services.common.grpc_server: health, reflection, limits, drain and signal-driven shutdown."""

from __future__ import annotations

import asyncio
import io
import os
import signal

import grpc
import grpc.aio
import pytest
from grpc_health.v1 import health_pb2

from services.common.grpc_server import GrpcServer, ServiceBinding, run_until_signal
from services.common.logging import get_logger
from tests.common.helpers import (
    TIMEOUT,
    Behaviour,
    call_raw,
    generic_binding,
    health_status,
    json_lines,
    list_services,
    loopback_settings,
    started,
)

SERVICE = "pink.test.v1.Slow"
OTHER = "pink.test.v1.Other"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class SlowServicer:
    """``Sleep`` echoes its request after ``delay`` seconds; ``entered`` is set when one is running."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.entered = asyncio.Event()

    async def sleep(self, request: bytes, _context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        self.entered.set()
        await asyncio.sleep(self.delay)
        return request

    def binding(self) -> ServiceBinding:
        methods: dict[str, Behaviour] = {"Sleep": self.sleep}
        return generic_binding(SERVICE, methods)


async def echo(request: bytes, _context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
    return request


@pytest.mark.anyio
async def test_starts_not_serving_until_told(log_stream: io.StringIO) -> None:
    bindings = [SlowServicer(0).binding(), generic_binding(OTHER, {"Echo": echo})]
    server = GrpcServer(loopback_settings(), bindings, logger=get_logger("test"))
    async with started(server) as channel:
        assert server.port > 0
        for key in ("", SERVICE, OTHER):
            assert await health_status(channel, key) == NOT_SERVING
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await health_status(channel, "pink.test.v1.Unknown")
        assert caught.value.code() is grpc.StatusCode.NOT_FOUND
        # Not serving is advisory: the RPCs themselves work (readiness gates the traffic).
        assert await call_raw(channel, f"/{OTHER}/Echo", b"ping") == b"ping"

        await server.set_serving(True)
        for key in ("", SERVICE, OTHER):
            assert await health_status(channel, key) == SERVING
        await server.set_serving(False)
        assert await health_status(channel, "") == NOT_SERVING
    events = [record["event"] for record in json_lines(log_stream.getvalue())]
    assert "grpc server started" in events
    assert "grpc server stopped" in events


@pytest.mark.anyio
async def test_reflection_lists_every_service(log_stream: io.StringIO) -> None:
    bindings = [SlowServicer(0).binding(), generic_binding(OTHER, {"Echo": echo})]
    server = GrpcServer(loopback_settings(), bindings, logger=get_logger("test"))
    async with started(server) as channel:
        assert await list_services(channel) == {
            SERVICE,
            OTHER,
            "grpc.health.v1.Health",
            "grpc.reflection.v1alpha.ServerReflection",
        }


@pytest.mark.anyio
async def test_stop_drains_then_lets_in_flight_rpcs_finish(log_stream: io.StringIO) -> None:
    # The RPC outlives the drain, so it is still running when server.stop(grace) begins.
    slow = SlowServicer(1.0)
    server = GrpcServer(
        loopback_settings(drain_seconds=0.5, grace_seconds=5.0), [slow.binding()], logger=get_logger("test")
    )
    port = await server.start()
    await server.set_serving(True)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        in_flight = asyncio.create_task(call_raw(channel, f"/{SERVICE}/Sleep", b"order-1"))
        await asyncio.wait_for(slow.entered.wait(), TIMEOUT)
        stopping = asyncio.create_task(server.stop())
        await asyncio.sleep(0.05)
        # Draining: still answering, but every key says NOT_SERVING and cannot be flipped back.
        assert await health_status(channel, "") == NOT_SERVING
        assert await health_status(channel, SERVICE) == NOT_SERVING
        await server.set_serving(True)
        assert await health_status(channel, "") == NOT_SERVING
        assert await asyncio.wait_for(in_flight, TIMEOUT) == b"order-1"
        # It finished inside the grace period, after the drain had ended.
        assert "grpc server stopping" in log_stream.getvalue()
        await asyncio.wait_for(stopping, TIMEOUT)
        await server.stop()  # a second stop returns at once
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await health_status(channel, "")
        assert caught.value.code() is grpc.StatusCode.UNAVAILABLE


@pytest.mark.anyio
async def test_limits_from_settings(log_stream: io.StringIO) -> None:
    slow = SlowServicer(0.5)
    settings = loopback_settings(max_message_bytes=1024, max_concurrent_rpcs=1)
    server = GrpcServer(settings, [slow.binding(), generic_binding(OTHER, {"Echo": echo})], logger=get_logger("t"))
    async with started(server) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call_raw(channel, f"/{OTHER}/Echo", b"x" * 2048)
        assert caught.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        first = asyncio.create_task(call_raw(channel, f"/{SERVICE}/Sleep", b"1"))
        await asyncio.wait_for(slow.entered.wait(), TIMEOUT)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call_raw(channel, f"/{SERVICE}/Sleep", b"2")
        assert caught.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert await asyncio.wait_for(first, TIMEOUT) == b"1"


def test_bindings_are_checked(log_stream: io.StringIO) -> None:
    binding = generic_binding(OTHER, {"Echo": echo})
    with pytest.raises(ValueError, match="bound twice"):
        GrpcServer(loopback_settings(), [binding, binding], logger=get_logger("t"))
    with pytest.raises(ValueError, match="reserved"):
        GrpcServer(loopback_settings(), [generic_binding("grpc.health.v1.Health", {})], logger=get_logger("t"))


@pytest.mark.anyio
async def test_run_until_signal_stops_on_the_event_then_runs_on_stop_in_order(log_stream: io.StringIO) -> None:
    server = GrpcServer(loopback_settings(), [generic_binding(OTHER, {"Echo": echo})], logger=get_logger("t"))
    port = await server.start()
    order: list[str] = []

    async def close_metrics() -> None:
        order.append("metrics")

    async def flush_traces() -> None:
        order.append("traces")

    stop = asyncio.Event()
    previous = signal.getsignal(signal.SIGTERM)
    runner = asyncio.create_task(
        run_until_signal(server, on_stop=[close_metrics, flush_traces], logger=get_logger("t"), stop_event=stop)
    )
    await asyncio.sleep(0.05)
    assert not runner.done()
    stop.set()
    await asyncio.wait_for(runner, TIMEOUT)
    assert order == ["metrics", "traces"]
    assert signal.getsignal(signal.SIGTERM) == previous
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await health_status(channel, "")
        assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
    steps = [r.get("step") for r in json_lines(log_stream.getvalue()) if r["event"] == "shutdown step"]
    assert len(steps) == 3
    assert steps[0] == "grpc server"
    assert str(steps[1]).endswith("close_metrics")
    assert str(steps[2]).endswith("flush_traces")


@pytest.mark.anyio
async def test_run_until_signal_handles_a_real_sigterm(log_stream: io.StringIO) -> None:
    server = GrpcServer(loopback_settings(), [generic_binding(OTHER, {"Echo": echo})], logger=get_logger("t"))
    await server.start()
    previous = signal.getsignal(signal.SIGTERM)
    runner = asyncio.create_task(run_until_signal(server, logger=get_logger("t")))
    await asyncio.sleep(0.05)
    # Only send the signal once the loop's handler is in place (else it would end pytest).
    assert signal.getsignal(signal.SIGTERM) != previous
    os.kill(os.getpid(), signal.SIGTERM)
    await asyncio.wait_for(runner, TIMEOUT)
    assert signal.getsignal(signal.SIGTERM) == previous
    records = json_lines(log_stream.getvalue())
    assert any(r["event"] == "signal received, shutting down" and r["signal"] == "SIGTERM" for r in records)
    assert any(r["event"] == "shutdown complete" for r in records)


@pytest.mark.anyio
async def test_a_failing_on_stop_step_does_not_skip_the_rest(log_stream: io.StringIO) -> None:
    server = GrpcServer(loopback_settings(), [generic_binding(OTHER, {"Echo": echo})], logger=get_logger("t"))
    await server.start()
    ran: list[str] = []

    async def broken() -> None:
        ran.append("broken")
        raise OSError("disk gone")

    async def after() -> None:
        ran.append("after")

    stop = asyncio.Event()
    stop.set()
    with pytest.raises(ExceptionGroup) as caught:
        await run_until_signal(server, on_stop=[broken, after], logger=get_logger("t"), stop_event=stop)
    assert ran == ["broken", "after"]
    assert [type(e) for e in caught.value.exceptions] == [OSError]
    failed = [r for r in json_lines(log_stream.getvalue()) if r["event"] == "shutdown step failed"]
    assert len(failed) == 1
    assert "disk gone" in failed[0]["exception"]
