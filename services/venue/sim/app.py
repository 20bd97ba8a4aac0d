"""The simulator's aiohttp application: BingX REST, ``/swap-market`` WebSocket, control API."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from services.common.logging import get_logger
from services.venue.sim import ccxt_extras, control, rest_account, rest_market, rest_trade
from services.venue.sim.clock import Clock, ManualClock, SystemClock
from services.venue.sim.config import SimSettings
from services.venue.sim.http import route
from services.venue.sim.runtime import Simulator

__all__ = ["SIMULATOR", "build_app"]

SIMULATOR = web.AppKey("simulator", Simulator)
_log = get_logger(__name__)
# Housekeeping (listen keys, heartbeats, dead-man switch) runs at least this often on the wall clock.
_SWEEP_SECONDS = 1.0


async def _timers(sim: Simulator) -> None:
    """Wall-clock duties of the running process: price ticks every ``tick_seconds`` (when > 0), housekeeping."""
    settings = sim.settings
    loop = asyncio.get_running_loop()
    interval = min(_SWEEP_SECONDS, settings.ping_seconds, settings.tick_seconds or _SWEEP_SECONDS)
    next_tick = loop.time() + settings.tick_seconds
    while True:
        await asyncio.sleep(interval)
        await sim.housekeeping()
        if settings.tick_seconds and loop.time() >= next_tick:
            next_tick += settings.tick_seconds
            sim.engine.advance(1)
            sim.hub.price_tick(list(sim.engine.state.specs))


def _report_timer_end(task: asyncio.Task[None]) -> None:
    # Without this a failing timer would stop prices, heartbeats and key expiry without a word.
    if not task.cancelled() and task.exception() is not None:
        _log.error("simulator_timer_died", exc_info=task.exception())


def build_app(settings: SimSettings, *, clock: Clock | None = None) -> web.Application:
    """A complete simulator: every BingX route, the WebSocket, the control API under ``/_sim``.

    With a :class:`ManualClock` nothing runs on its own: prices, listen-key expiry, heartbeats and
    the dead-man switch move only through the control API (``/_sim/advance``, ``/_sim/clock``).
    """
    sim = Simulator(settings, clock if clock is not None else SystemClock())
    app = web.Application()
    app[SIMULATOR] = sim
    for endpoint in [*rest_trade.ENDPOINTS, *rest_account.ENDPOINTS, *rest_market.ENDPOINTS, *ccxt_extras.ENDPOINTS]:
        app.router.add_route(endpoint.method, endpoint.path, route(sim, endpoint).handler)
    app.add_routes([web.get("/swap-market", sim.hub.serve)])
    app.add_routes(control.routes(sim))

    async def background(_app: web.Application) -> AsyncIterator[None]:
        if isinstance(sim.clock, ManualClock):
            yield
            return
        task = asyncio.create_task(_timers(sim))
        task.add_done_callback(_report_timer_end)
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def close_streams(_app: web.Application) -> None:
        closed = await sim.hub.disconnect(user=True, market=True, abort=False)
        _log.info("streams_closed_on_shutdown", connections=closed)

    app.cleanup_ctx.append(background)
    app.on_shutdown.append(close_streams)
    return app
