"""The Prometheus scrape endpoint of a service (aiohttp, on the service's event loop).

Each service builds its own ``prometheus_client.CollectorRegistry`` (never the
global one, so tests and several servers in one process stay independent) and
serves it with :class:`MetricsServer`: ``GET /metrics`` (Prometheus text format,
or OpenMetrics when the scraper asks for it) and ``GET /healthz`` (the event loop
answers).
"""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from services.common.logging import get_logger

__all__ = ["MetricsServer"]

_log = get_logger(__name__)


class MetricsServer:
    """Serves ``registry`` on ``host:port`` (port 0 picks an ephemeral port) until :meth:`stop`."""

    def __init__(self, registry: CollectorRegistry, host: str, port: int) -> None:
        self._registry = registry
        self._host = host
        self._requested_port = port
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    @property
    def port(self) -> int:
        """The bound port (after :meth:`start`)."""
        if self._port is None:
            raise RuntimeError("MetricsServer is not started")
        return self._port

    async def start(self) -> int:
        """Bind and serve; returns the bound port."""
        if self._runner is not None:
            raise RuntimeError("MetricsServer already started")
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        # No access log: a scrape every few seconds would drown the service's own logs.
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self._host, self._requested_port)
            await site.start()
        except OSError:
            await runner.cleanup()
            _log.exception("metrics endpoint failed to bind", host=self._host, port=self._requested_port)
            raise
        self._runner = runner
        self._port = self._bound_port(runner)
        _log.info("metrics endpoint serving", host=self._host, port=self._port)
        return self._port

    @staticmethod
    def _bound_port(runner: web.AppRunner) -> int:
        for address in runner.addresses:
            # (host, port) for IPv4, (host, port, flowinfo, scope_id) for IPv6.
            if isinstance(address, tuple) and len(address) >= 2 and isinstance(address[1], int):
                return address[1]
        raise RuntimeError(f"metrics endpoint bound no TCP socket: {runner.addresses!r}")

    async def stop(self) -> None:
        """Stop serving (idempotent)."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        await runner.cleanup()
        _log.info("metrics endpoint stopped", port=self._port)

    async def _metrics(self, request: web.Request) -> web.Response:
        # Collection runs on the loop on purpose: collectors may read state the loop owns.
        encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
        return web.Response(body=encoder(self._registry), headers={"Content-Type": content_type})

    async def _healthz(self, _request: web.Request) -> web.Response:
        return web.Response(text="ok\n")
