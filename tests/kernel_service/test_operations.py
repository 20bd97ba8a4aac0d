"""Operating the kernel service: health through start-up and shutdown, metrics, grpcurl.

The real service (``serve``) on loopback ports with the venue double behind it. The start-up
gate is held open by the double (``hold``), never by a clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import grpc.aio
import pytest
from grpc_health.v1 import health_pb2
from prometheus_client.parser import text_string_to_metric_families

from services.common.errors import error_details
from services.common.proto import kernel_service_pb2, kernel_service_pb2_grpc, venue_service_pb2
from services.kernel.config import KernelSettings
from services.kernel.server import SERVICE_NAME, Ports, serve
from tests.kernel_service.test_kernel_service import TIMEOUT, enter, running_service, settings_for, wait_done
from tests.kernel_service.venue_double import VenueDouble

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parents[2]
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class Started:
    """``serve(settings)`` in a task, with its ports as soon as it listens (see :func:`started`)."""

    def __init__(self, settings: KernelSettings) -> None:
        self.stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        self.listening: asyncio.Future[Ports] = loop.create_future()
        self.ready: asyncio.Future[int] = loop.create_future()
        self.task = asyncio.create_task(
            serve(
                settings,
                stop_event=self.stop,
                on_ready=self.ready.set_result,
                on_listening=self.listening.set_result,
            )
        )

    async def ports(self) -> Ports:
        waiting: set[asyncio.Future[Any]] = {self.task, self.listening}
        done, _ = await asyncio.wait(waiting, timeout=TIMEOUT, return_when="FIRST_COMPLETED")
        if self.task in done:
            self.task.result()
            pytest.fail("the service returned before it listened")
        return await self.listening


@contextlib.asynccontextmanager
async def started(settings: KernelSettings) -> AsyncIterator[Started]:
    """The service started in a task; stopped (as by SIGTERM) on exit, which must give exit status 0."""
    service = Started(settings)
    try:
        yield service
    finally:
        service.stop.set()
        assert await asyncio.wait_for(service.task, TIMEOUT) == 0


@pytest.fixture
async def channel_to() -> AsyncIterator[list[grpc.aio.Channel]]:
    """Channels opened by a test (closed after it)."""
    channels: list[grpc.aio.Channel] = []
    yield channels
    for channel in channels:
        await channel.close()


async def health(channel: grpc.aio.Channel, service: str = "") -> int:
    check = channel.unary_unary(
        "/grpc.health.v1.Health/Check",
        request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
        response_deserializer=health_pb2.HealthCheckResponse.FromString,
    )
    response = await check(health_pb2.HealthCheckRequest(service=service), timeout=TIMEOUT)
    return int(response.status)


def watch_health(channel: grpc.aio.Channel) -> grpc.aio.UnaryStreamCall[Any, health_pb2.HealthCheckResponse]:
    watch = channel.unary_stream(
        "/grpc.health.v1.Health/Watch",
        request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
        response_deserializer=health_pb2.HealthCheckResponse.FromString,
    )
    call: grpc.aio.UnaryStreamCall[Any, health_pb2.HealthCheckResponse] = watch(
        health_pb2.HealthCheckRequest(service=""), timeout=TIMEOUT
    )
    return call


async def test_mutations_wait_for_recovery_and_the_venue_reconcile(
    tmp_path: Path, venue: VenueDouble, channel_to: list[grpc.aio.Channel]
) -> None:
    gate = venue.hold("ListOpenOrders")
    async with started(settings_for(tmp_path, venue)) as service:
        await _gated_start(service, gate, venue, channel_to)


async def _gated_start(
    service: Started, gate: asyncio.Event, venue: VenueDouble, channel_to: list[grpc.aio.Channel]
) -> None:
    ports = await service.ports()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{ports.grpc}")
    channel_to.append(channel)
    stub = kernel_service_pb2_grpc.KernelServiceStub(channel)
    await venue.wait_for(lambda: bool(venue.requests_of(venue_service_pb2.ListOpenOrdersRequest)))

    assert await health(channel) == NOT_SERVING, "reconciling with the venue"
    assert await health(channel, SERVICE_NAME) == NOT_SERVING
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.SubmitIntent(kernel_service_pb2.SubmitIntentRequest(intent=enter("i-1", 0)), timeout=TIMEOUT)
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
    assert (await error_details(raised.value))[1] == "KERNEL_NOT_SERVING"
    status = await stub.GetStatus(kernel_service_pb2.GetStatusRequest(), timeout=TIMEOUT)
    assert not status.serving, "status answers while starting"

    gate.set()
    assert await asyncio.wait_for(service.ready, TIMEOUT) == ports.grpc
    assert await health(channel) == SERVING
    response = await stub.SubmitIntent(
        kernel_service_pb2.SubmitIntentRequest(intent=enter("i-1", 0), wait=wait_done()), timeout=TIMEOUT
    )
    assert response.outcome.accepted


async def test_shutdown_reports_not_serving_before_the_server_stops(
    tmp_path: Path, venue: VenueDouble, channel_to: list[grpc.aio.Channel]
) -> None:
    async with started(settings_for(tmp_path, venue)) as service:
        port = await asyncio.wait_for(service.ready, TIMEOUT)
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        channel_to.append(channel)
        watch = watch_health(channel)
        updates = aiter(watch)
        assert (await anext(updates)).status == SERVING

        service.stop.set()  # what SIGTERM does
        assert (await anext(updates)).status == NOT_SERVING, "announced while the server still answers"
        watch.cancel()


async def test_metrics_endpoint_exposes_the_kernel_metrics(
    tmp_path: Path, venue: VenueDouble, channel_to: list[grpc.aio.Channel]
) -> None:
    async with started(settings_for(tmp_path, venue, metrics_port=0)) as service:
        await _trade_and_scrape(service, channel_to)


async def _trade_and_scrape(service: Started, channel_to: list[grpc.aio.Channel]) -> None:
    ports = await service.ports()
    assert ports.metrics is not None
    port = await asyncio.wait_for(service.ready, TIMEOUT)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    channel_to.append(channel)
    stub = kernel_service_pb2_grpc.KernelServiceStub(channel)
    response = await stub.SubmitIntent(
        kernel_service_pb2.SubmitIntentRequest(intent=enter("i-1", 0), wait=wait_done()), timeout=TIMEOUT
    )
    assert response.outcome.accepted
    records = stub.WatchRecords(kernel_service_pb2.WatchRecordsRequest(consumer="sink"), timeout=TIMEOUT)
    assert (await anext(aiter(records))).record.sequence == 1, "registered, and reading"
    await stub.AckRecords(kernel_service_pb2.AckRecordsRequest(consumer="sink", sequence=1), timeout=TIMEOUT)
    records.cancel()

    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{ports.metrics}/metrics") as reply,
    ):
        assert reply.status == 200
        text = await reply.text()
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    assert samples[("pink_kernel_inputs_total", (("code", "OK"), ("kind", "intent")))] == 1
    assert samples[("pink_kernel_venue_events_total", (("code", "OK"), ("kind", "FILL")))] == 1
    assert samples[("pink_kernel_slots", (("state", "POSITION_OPEN"),))] == 1
    assert samples[("pink_kernel_rpc_seconds_count", (("method", "SubmitIntent"),))] == 1
    committed = samples[("pink_kernel_sequence", ())]
    assert samples[("pink_kernel_consumer_lag_records", (("consumer", "sink"),))] == committed - 1
    assert samples[("pink_kernel_journal_pending_records", ())] == 0
    assert ("pink_kernel_commit_seconds_count", ()) in samples
    assert samples[("process_resident_memory_bytes", ())] > 0, "memory of the process"
    assert samples[("process_start_time_seconds", ())] > 0, "uptime = now - start time"


def grpcurl() -> str:
    """The grpcurl that `make install` puts in .tools/bin (or PINK_GRPCURL); missing is a failure."""
    path = os.environ.get("PINK_GRPCURL") or shutil.which("grpcurl", path=str(ROOT / ".tools" / "bin"))
    if not path or not Path(path).is_file():
        pytest.fail("grpcurl is not installed: run `make install` (it installs .tools/bin/grpcurl)")
    return path


async def run_grpcurl(*args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        grpcurl(), *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), TIMEOUT)
    assert process.returncode == 0, f"grpcurl {' '.join(args)}: {err.decode()}"
    return out.decode()


async def test_grpcurl_inspects_the_service_through_reflection(tmp_path: Path, venue: VenueDouble) -> None:
    async with running_service(settings_for(tmp_path, venue)) as kernel:
        address = f"127.0.0.1:{kernel.port}"
        services = (await run_grpcurl("-plaintext", address, "list")).split()
        assert {SERVICE_NAME, "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"} <= set(services)
        described = await run_grpcurl("-plaintext", address, "describe", f"{SERVICE_NAME}.SubmitIntent")
        assert (
            "rpc SubmitIntent ( .pink.v1.SubmitIntentRequest ) returns ( .pink.v1.SubmitIntentResponse )" in described
        )
        status = json.loads(await run_grpcurl("-plaintext", "-d", "{}", address, f"{SERVICE_NAME}/GetStatus"))
        assert status["serving"] is True
        assert len(status["state_hash"]) == 64
        slot = json.loads(await run_grpcurl("-plaintext", "-d", '{"slot_id": 2}', address, f"{SERVICE_NAME}/GetSlot"))
        assert slot["slot"]["slot_id"] == 2
        assert slot["slot"]["state"] == "SLOT_STATE_IDLE"
        health_answer = json.loads(await run_grpcurl("-plaintext", address, "grpc.health.v1.Health/Check"))
        assert health_answer == {"status": "SERVING"}


async def test_invalid_configuration_stops_the_process_naming_each_variable(tmp_path: Path) -> None:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("PINK_")} | {
        "PINK_KERNEL_SLOT_COUNT": "0",
        "PINK_KERNEL_VENUE_ADDRESS": "127.0.0.1:9",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.kernel",
        env=environment,
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), TIMEOUT)
    assert process.returncode == 2
    message = err.decode()
    assert "PINK_KERNEL_DATA_DIR" in message, message
    assert "PINK_KERNEL_SLOT_COUNT" in message, message
    assert not out, "nothing started"
