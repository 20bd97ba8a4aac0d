"""services.common.metrics: /metrics and /healthz over real HTTP on loopback."""

from __future__ import annotations

import aiohttp
import pytest
from prometheus_client import CollectorRegistry, Counter

from services.common.metrics import MetricsServer

TIMEOUT = aiohttp.ClientTimeout(total=5)


@pytest.mark.anyio
async def test_serves_its_own_registry() -> None:
    registry = CollectorRegistry()
    orders = Counter("pink_test_orders", "Orders placed.", ["side"], registry=registry)
    other = CollectorRegistry()
    Counter("pink_other_total", "Not ours.", registry=other).inc()
    server = MetricsServer(registry, "127.0.0.1", 0)
    port = await server.start()
    assert port > 0
    assert server.port == port
    try:
        orders.labels(side="BUY").inc(3)
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
            async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
                assert response.status == 200
                assert response.headers["Content-Type"].startswith("text/plain")
                body = await response.text()
            async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
                assert response.status == 200
            async with session.get(f"http://127.0.0.1:{port}/nothing") as response:
                assert response.status == 404
    finally:
        await server.stop()
    assert 'pink_test_orders_total{side="BUY"} 3.0' in body
    assert "pink_other_total" not in body


@pytest.mark.anyio
async def test_openmetrics_when_asked_and_stop_closes_the_port() -> None:
    registry = CollectorRegistry()
    Counter("pink_test_fills", "Fills.", registry=registry).inc()
    server = MetricsServer(registry, "127.0.0.1", 0)
    port = await server.start()
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        headers = {"Accept": "application/openmetrics-text; version=1.0.0"}
        async with session.get(f"http://127.0.0.1:{port}/metrics", headers=headers) as response:
            assert response.headers["Content-Type"].startswith("application/openmetrics-text")
            assert (await response.text()).endswith("# EOF\n")
        await server.stop()
        await server.stop()  # idempotent
        with pytest.raises(aiohttp.ClientConnectionError):
            async with session.get(f"http://127.0.0.1:{port}/healthz"):
                pass


@pytest.mark.anyio
async def test_port_in_use_is_an_error() -> None:
    first = MetricsServer(CollectorRegistry(), "127.0.0.1", 0)
    port = await first.start()
    try:
        second = MetricsServer(CollectorRegistry(), "127.0.0.1", port)
        with pytest.raises(OSError, match="address already in use"):
            await second.start()
        with pytest.raises(RuntimeError, match="not started"):
            _ = second.port
    finally:
        await first.stop()
