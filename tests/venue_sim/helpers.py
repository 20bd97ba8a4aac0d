"""A small signed BingX client and a running simulator for the protocol tests."""

from __future__ import annotations

import gzip
import json
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar
from urllib.parse import quote

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from services.venue.sim.app import SIMULATOR, build_app
from services.venue.sim.clock import Clock, ManualClock
from services.venue.sim.config import SimSettings
from services.venue.sim.runtime import Simulator
from services.venue.sim.signing import sign

__all__ = ["Reply", "SimClient", "decode_frame", "running", "serving", "settings_for_tests"]

TIMEOUT = aiohttp.ClientTimeout(total=10)
ClientT = TypeVar("ClientT")


def settings_for_tests(**overrides: Any) -> SimSettings:
    """Defaults for protocol tests: no timers, no rate limits (each test turns on what it checks)."""
    values: dict[str, Any] = {"tick_seconds": 0.0, "rate_limits": False, "seed": 7}
    values.update(overrides)
    return SimSettings.model_validate(values)


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any
    headers: Mapping[str, str]

    @property
    def code(self) -> int:
        code = self.body["code"]
        assert isinstance(code, int)
        return code

    @property
    def data(self) -> Any:
        assert self.body["code"] == 0, self.body
        return self.body["data"]


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _load(text: str) -> Any:
    # Exact numbers: floats as Decimal, so 64-bit ids and prices are compared digit for digit.
    return json.loads(text, parse_float=Decimal) if text else None


def decode_frame(data: bytes) -> Any:
    text = gzip.decompress(data).decode()
    return text if text in {"Ping", "Pong"} else json.loads(text, parse_float=Decimal)


class SimClient:
    def __init__(self, session: aiohttp.ClientSession, base: str, sim: Simulator) -> None:
        self.session = session
        self.base = base
        self.sim = sim
        self.api_key = sim.settings.api_key.get_secret_value()
        self.secret = sim.settings.secret_key.get_secret_value()

    @property
    def clock(self) -> ManualClock:
        clock = self.sim.clock
        assert isinstance(clock, ManualClock)
        return clock

    def signed_query(self, params: Mapping[str, object], *, timestamp: int | None = None) -> str:
        """``k=v&...&timestamp=..&signature=..`` with values URL-encoded, signed over the raw values."""
        items = {key: _text(value) for key, value in params.items()}
        items.setdefault("timestamp", str(timestamp if timestamp is not None else self.clock.now_ms()))
        raw = "&".join(f"{key}={value}" for key, value in sorted(items.items()))
        encoded = "&".join(f"{key}={quote(value, safe='')}" for key, value in sorted(items.items()))
        return f"{encoded}&signature={sign(self.secret, raw)}"

    async def raw(
        self,
        method: str,
        path: str,
        *,
        query: str = "",
        body: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        url = f"{self.base}{path}" + (f"?{query}" if query else "")
        sent = dict(headers or {})
        if body is not None:
            sent.setdefault("Content-Type", "application/x-www-form-urlencoded")
        async with self.session.request(method, url, data=body, headers=sent, timeout=TIMEOUT) as response:
            text = await response.text()
            body_json = _load(text) if response.content_type == "application/json" else text
            return Reply(response.status, body_json, dict(response.headers))

    async def call(self, method: str, path: str, params: Mapping[str, object] | None = None) -> Reply:
        """A signed request with every parameter in the query string (what ccxt does)."""
        query = self.signed_query(params or {})
        return await self.raw(method, path, query=query, headers={"X-BX-APIKEY": self.api_key})

    async def public(self, path: str, params: Mapping[str, object] | None = None) -> Reply:
        query = "&".join(f"{key}={quote(_text(value), safe='')}" for key, value in (params or {}).items())
        return await self.raw("GET", path, query=query)

    async def control(self, path: str, body: Mapping[str, object] | None = None, method: str = "POST") -> Any:
        async with self.session.request(
            method, f"{self.base}/_sim/{path}", json=body or {}, timeout=TIMEOUT
        ) as response:
            text = await response.text()
            assert response.status == 200, text
            return _load(text)

    async def place(self, **params: object) -> Reply:
        return await self.call("POST", "/openApi/swap/v2/trade/order", params)

    async def all_fills(self) -> list[Any]:
        """Every fill so far, quantities in coin (allFillOrders from the epoch to now)."""
        reply = await self.call(
            "GET",
            "/openApi/swap/v2/trade/allFillOrders",
            {"tradingUnit": "COIN", "startTs": 0, "endTs": self.clock.now_ms()},
        )
        fills: list[Any] = reply.data["fill_orders"]
        return fills

    async def set_price(self, symbol: str, price: str) -> None:
        await self.control("price", {"symbol": symbol, "price": price})

    async def listen_key(self) -> str:
        reply = await self.raw("POST", "/openApi/user/auth/userDataStream", headers={"X-BX-APIKEY": self.api_key})
        key = reply.body["listenKey"]
        assert isinstance(key, str)
        return key


@asynccontextmanager
async def serving(
    settings: SimSettings, clock: Clock, client: Callable[[aiohttp.ClientSession, str, Simulator], ClientT]
) -> AsyncIterator[ClientT]:
    """The simulator on a loopback port and ``client`` (session, base URL, simulator) for it."""
    app: web.Application = build_app(settings, clock=clock)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            yield client(session, str(server.make_url("")).rstrip("/"), app[SIMULATOR])
    finally:
        await server.close()


@asynccontextmanager
async def running(settings: SimSettings | None = None, *, clock: Clock | None = None) -> AsyncIterator[SimClient]:
    """The simulator on a loopback port (a manual clock unless told otherwise) and a client for it."""
    async with serving(settings or settings_for_tests(), clock or ManualClock(), SimClient) as client:
        yield client
