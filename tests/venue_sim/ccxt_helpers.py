"""Helpers for running ccxt's ``bingx`` exchange, unchanged but for its base URLs, against the simulator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import aiohttp
import ccxt.async_support as ccxt_async
from aiohttp import web

from services.venue.sim.app import build_app
from services.venue.sim.config import SimSettings

__all__ = ["bingx_client", "dec", "running_simulator", "set_price"]

LOOPBACK = "127.0.0.1"


@asynccontextmanager
async def running_simulator(settings: SimSettings) -> AsyncIterator[str]:
    """Serve ``build_app(settings)`` on an ephemeral loopback port; yields its base URL."""
    runner = web.AppRunner(build_app(settings))
    await runner.setup()
    try:
        site = web.TCPSite(runner, LOOPBACK, 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


@asynccontextmanager
async def bingx_client(base_url: str, settings: SimSettings) -> AsyncIterator[Any]:
    """ccxt's async ``bingx`` with every API base URL pointed at ``base_url``, closed on exit.

    Nothing else of ccxt is changed: the options are the ones a user of BingX's USDT-M
    perpetuals sets (``defaultType: swap``), the key pair is the simulator's.
    """
    exchange = ccxt_async.bingx(
        {
            "apiKey": settings.api_key.get_secret_value(),
            "secret": settings.secret_key.get_secret_value(),
            "options": {"defaultType": "swap"},
        }
    )
    try:
        api_urls: dict[str, str] = exchange.urls["api"]
        exchange.urls["api"] = dict.fromkeys(api_urls, f"{base_url}/openApi")
        yield exchange
    finally:
        await exchange.close()


async def set_price(base_url: str, symbol: str, price: Decimal) -> None:
    """Move ``symbol``'s price through the simulator's control API (resting orders match at once)."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{base_url}/_sim/price", json={"symbol": symbol, "price": str(price)}) as response,
    ):
        body = await response.text()
        if response.status != 200:
            raise AssertionError(f"/_sim/price answered HTTP {response.status}: {body}")


def dec(value: object) -> Decimal:
    """A number ccxt returned (float, int or numeric string) as an exact Decimal of its text."""
    if value is None:
        raise AssertionError("ccxt returned no value")
    return Decimal(str(value))
