"""Serve the simulator until SIGTERM or SIGINT, then close connections and stop."""

from __future__ import annotations

import asyncio
import signal

from aiohttp import web

from services.common.logging import get_logger
from services.venue.sim.app import build_app
from services.venue.sim.config import SimSettings

__all__ = ["serve"]

_log = get_logger(__name__)


async def serve(settings: SimSettings) -> int:
    """Run until a stop signal; 0 on a clean stop."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runner = web.AppRunner(build_app(settings), handle_signals=False, shutdown_timeout=settings.grace_seconds)
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.host, settings.port)
        await site.start()
        host, port = runner.addresses[0][:2]
        _log.info(
            "simulator_listening",
            host=host,
            port=port,
            rest=f"http://{host}:{port}/openApi",
            websocket=f"ws://{host}:{port}/swap-market",
            control=f"http://{host}:{port}/_sim",
            symbols=[spec.symbol for spec in settings.symbols],
            seed=settings.seed,
        )
        await stop.wait()
        _log.info("simulator_stopping")
    finally:
        await runner.cleanup()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    _log.info("simulator_stopped")
    return 0
