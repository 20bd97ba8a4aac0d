"""Start-up, health, reflection, metrics, configuration and shutdown of the venue service.

Legacy flaws covered: [G35, H5, J12, K9, L9, L10, N3, N6, O5].
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from typing import Any

import aiohttp
import grpc
import grpc.aio
import pytest
from grpc_health.v1 import health_pb2
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError

from services.common.config import ConfigError, load_settings
from services.common.proto import venue_service_pb2
from services.venue.adapter import Adapter
from services.venue.config import VenueSettings
from services.venue.server import serve
from tests.kernel_service.test_operations import run_grpcurl, watch_health
from tests.venue_service.harness import Sim, venue_service, venue_settings
from tests.venue_service.test_contract import health_check, market, place

pytestmark = pytest.mark.anyio

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SERVICE = "pink.v1.VenueService"


async def test_not_serving_until_the_user_stream_is_connected(sim: Sim) -> None:
    # The WebSocket endpoint refuses: instruments load, the stream never connects.
    settings = venue_settings(sim, ws_url="ws://127.0.0.1:9/swap-market")
    stop = asyncio.Event()
    started: asyncio.Future[Adapter] = asyncio.get_running_loop().create_future()
    ports: list[Any] = []
    task = asyncio.create_task(
        serve(settings, stop_event=stop, on_listening=ports.append, on_started=started.set_result)
    )
    adapter = await asyncio.wait_for(started, 10)
    assert adapter.instruments.loaded
    assert not adapter.ready
    async with grpc.aio.insecure_channel(f"127.0.0.1:{ports[0].grpc}") as channel:
        assert await health_check(channel, SERVICE) == NOT_SERVING
    stop.set()
    assert await asyncio.wait_for(task, 10) == 0


async def test_sigterm_reports_not_serving_before_the_server_stops(sim: Sim) -> None:
    async with venue_service(sim, drain_seconds=0.5) as venue:
        watch = watch_health(venue.channel)
        updates = aiter(watch)
        assert (await anext(updates)).status == SERVING
        venue.stop.set()  # what SIGTERM does
        assert (await anext(updates)).status == NOT_SERVING
        watch.cancel()
        assert await asyncio.wait_for(venue.task, 10) == 0
        assert venue.adapter.session.closed


async def test_reflection_and_grpcurl_calls_an_operator_uses(venue: Any) -> None:
    address = f"127.0.0.1:{venue.port}"
    services = (await run_grpcurl("-plaintext", address, "list")).split()
    assert {SERVICE, "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"} <= set(services)
    balance = json.loads(await run_grpcurl("-plaintext", "-d", "{}", address, f"{SERVICE}/GetBalance"))
    assert balance["asset"] == "USDT", balance
    assert balance["wallet_balance"]["value"] == "10000", balance
    instruments = json.loads(
        await run_grpcurl("-plaintext", "-d", '{"symbols": ["BTC-USDT"]}', address, f"{SERVICE}/GetInstruments")
    )
    assert instruments["instruments"][0]["price_tick"]["value"] == "0.1", instruments


async def test_metrics_count_rest_calls_by_endpoint_and_outcome(sim: Sim) -> None:
    async with venue_service(sim, metrics_port=0) as venue:
        await place(venue, market("pk-m1", "0.01"))
        await place(venue, market("pk-m2", "1000"))  # refused by BingX: margin
        assert venue.metrics_port is not None
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{venue.metrics_port}/metrics") as reply,
        ):
            text = await reply.text()
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    endpoint = ("endpoint", "POST /openApi/swap/v2/trade/order")
    assert samples[("pink_venue_rest_requests_total", (endpoint, ("outcome", "ok")))] == 1
    assert samples[("pink_venue_rest_requests_total", (endpoint, ("outcome", "error")))] == 1
    assert samples[("pink_venue_rest_latency_seconds_count", (endpoint,))] == 2
    assert samples[("pink_venue_gap_fills_total", (("reason", "startup"),))] >= 1
    assert samples[("pink_venue_rpc_seconds_count", (("method", "PlaceOrder"),))] == 2


def test_live_and_demo_need_keys_and_the_simulator_needs_a_url() -> None:
    for environment in ("live", "demo"):
        with pytest.raises(ConfigError) as raised:
            load_settings(VenueSettings, environment=environment)
        assert "PINK_VENUE_API_KEY and PINK_VENUE_SECRET_KEY required" in str(raised.value)
    with pytest.raises(ConfigError) as missing_url:
        load_settings(VenueSettings, environment="simulator")
    assert "PINK_VENUE_REST_URL is required" in str(missing_url.value)
    demo = load_settings(VenueSettings, environment="demo", api_key="k" * 64, secret_key="s" * 64)
    assert demo.rest_root == "https://open-api-vst.bingx.com"
    assert demo.ws_root == "wss://vst-open-api-ws.bingx.com/swap-market"
    with pytest.raises(ValidationError):
        VenueSettings.model_validate({"environment": "paper"})


async def test_the_session_follows_the_proxy_and_dns_settings(sim: Sim) -> None:
    async with venue_service(sim, trust_env=True, dns_cache_seconds=120) as venue:
        session = venue.adapter.session
        assert session.trust_env is True  # HTTP(S)_PROXY / NO_PROXY honoured for REST and WebSocket
        connector = session.connector
        assert isinstance(connector, aiohttp.TCPConnector)
        assert connector.use_dns_cache
        assert not connector.force_close
        assert connector._cached_hosts._ttl == 120
        assert connector._keepalive_timeout == venue.settings.keepalive_timeout_seconds
        # One session for everything: REST calls reuse pooled keep-alive connections.
        before = venue.calls
        await place(venue, market("pk-reuse-1", "0.01"))
        await place(venue, market("pk-reuse-2", "0.01"))
        assert venue.calls - before == 2
        assert len(connector._conns) >= 1


async def test_the_process_runs_from_the_environment_and_exits_zero_on_sigterm(sim: Sim) -> None:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("PINK_")} | {
        "PINK_VENUE_ENVIRONMENT": "simulator",
        "PINK_VENUE_REST_URL": sim.base,
        "PINK_VENUE_GRACE_SECONDS": "0.5",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.venue", env=environment, stderr=asyncio.subprocess.PIPE
    )
    assert process.stderr is not None
    lines: list[str] = []
    async with asyncio.timeout(30):
        while not any('"venue_serving"' in line for line in lines):
            line = (await process.stderr.readline()).decode()
            assert line, "".join(lines)
            lines.append(line)
        process.send_signal(signal.SIGTERM)
        await process.communicate()
    assert process.returncode == 0, "".join(lines)
    assert all(json.loads(line)["service"] == "pink-venue" for line in lines)


async def test_an_invalid_configuration_exits_2_naming_the_variable() -> None:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("PINK_")} | {
        "PINK_VENUE_ENVIRONMENT": "live",
        "PINK_VENUE_API_KEY": "a-real-looking-key-0123456789",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.venue", env=environment, stderr=asyncio.subprocess.PIPE
    )
    _, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 2
    assert "PINK_VENUE_SECRET_KEY" in err.decode()
    assert "a-real-looking-key-0123456789" not in err.decode()


async def test_refused_keys_stop_the_service_at_start_up(sim: Sim) -> None:
    settings = venue_settings(sim, secret_key="not-the-simulator-secret-0000")  # noqa: S106 - wrong on purpose
    assert await asyncio.wait_for(serve(settings, stop_event=asyncio.Event()), 10) == 3


async def test_a_read_bingx_cannot_answer_is_unavailable(sim: Sim) -> None:
    async with venue_service(sim, read_retries=0) as venue:
        await sim.faults(http_error_count=1, http_error_status=503)
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await venue.stub.GetBalance(venue_service_pb2.GetBalanceRequest(), timeout=5)
        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_a_hung_venue_times_out_instead_of_hanging(sim: Sim) -> None:
    async with venue_service(sim, request_timeout_seconds=0.3, read_retries=1) as venue:
        await sim.faults(latency_ms=2000)
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await venue.stub.GetBalance(venue_service_pb2.GetBalanceRequest(), timeout=10)
        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "timeout" in (raised.value.details() or "")
        assert loop.time() - started < 1.5  # two attempts of 0.3 s, not the venue's 2 s each
        await sim.control("faults", method="DELETE")


async def test_stopping_cancels_and_awaits_every_task_of_the_adapter(sim: Sim) -> None:
    async with venue_service(sim) as venue:
        tasks = [task for task in asyncio.all_tasks() if task.get_name().startswith("venue-")]
        assert len(tasks) == 5
        venue.stop.set()
        assert await asyncio.wait_for(venue.task, 10) == 0
    assert all(task.done() for task in tasks)
    assert [task for task in asyncio.all_tasks() if task.get_name().startswith("venue-")] == []
