"""The market-data WebSocket (API.md §7): subscriptions, acks, trade / mark / book pushes."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from services.venue.sim.config import SymbolSpec
from tests.venue_sim.helpers import SimClient, decode_frame, running, settings_for_tests


async def _next(ws: aiohttp.ClientWebSocketResponse) -> Any:
    while True:
        msg = await ws.receive(timeout=5)
        assert msg.type == aiohttp.WSMsgType.BINARY, msg
        frame = decode_frame(msg.data)
        if frame != "Ping":
            return frame


async def _sub(ws: aiohttp.ClientWebSocketResponse, data_type: str, req: str = "sub") -> Any:
    await ws.send_json({"id": f"id-{data_type}", "reqType": req, "dataType": data_type})
    return await _next(ws)


@pytest.mark.anyio
async def test_subscribe_ack_and_pushes(client: SimClient) -> None:
    ws = await client.session.ws_connect(f"{client.base}/swap-market")
    ack = await _sub(ws, "ETH-USDT@trade")
    assert ack == {"id": "id-ETH-USDT@trade", "code": 0, "msg": "", "dataType": "", "data": None}
    for topic in ("markPrice", "bookTicker", "lastPrice"):
        assert (await _sub(ws, f"ETH-USDT@{topic}"))["code"] == 0
    await client.set_price("ETH-USDT", "3000")
    mark, last, book = [await _next(ws) for _ in range(3)]
    assert mark == {
        "code": 0,
        "dataType": "ETH-USDT@markPrice",
        "data": {"e": "markPriceUpdate", "E": client.clock.now_ms(), "s": "ETH-USDT", "p": "3000.00"},
    }
    assert last["data"]["c"] == "3000.00"
    assert (book["data"]["e"], book["data"]["b"], book["data"]["a"]) == ("bookTicker", "2999.99", "3000.01")
    await client.place(symbol="ETH-USDT", side="SELL", type="MARKET", quantity="1")
    trade = await _next(ws)
    assert trade["dataType"] == "ETH-USDT@trade"
    # A taker sell: the buyer was the maker.
    assert trade["data"] == [{"q": "1.00", "p": "2999.99", "T": client.clock.now_ms(), "m": True, "s": "ETH-USDT"}]
    # A resting sell hit by the price: the buyer took, so the buyer was not the maker.
    await client.place(symbol="ETH-USDT", side="SELL", type="LIMIT", price="3010", quantity="1")
    await client.set_price("ETH-USDT", "3020")
    trade = await _next(ws)
    assert trade["data"] == [{"q": "1.00", "p": "3010.00", "T": client.clock.now_ms(), "m": False, "s": "ETH-USDT"}]
    await ws.close()


@pytest.mark.anyio
async def test_unsubscribe_and_bad_requests(client: SimClient) -> None:
    ws = await client.session.ws_connect(f"{client.base}/swap-market")
    await _sub(ws, "BTC-USDT@markPrice")
    assert (await _sub(ws, "BTC-USDT@markPrice", "unsub"))["code"] == 0
    assert (await _sub(ws, "BTC-USDT@lastPrice"))["code"] == 0
    await client.set_price("BTC-USDT", "60000")
    # Only the remaining topic is pushed.
    assert (await _next(ws))["dataType"] == "BTC-USDT@lastPrice"
    assert (await _sub(ws, "XRP-USDT@trade"))["code"] == 80014
    assert (await _sub(ws, "BTC-USDT@depth7"))["code"] == 80014
    await ws.send_str("not json")
    assert (await _next(ws))["code"] == 80014
    await ws.close()


@pytest.mark.anyio
async def test_two_hundred_topics_per_connection() -> None:
    specs = [
        SymbolSpec(
            symbol=f"C{i}-USDT",
            price_precision=2,
            quantity_precision=2,
            min_quantity=Decimal("0.01"),
            min_notional=Decimal(2),
            initial_price=Decimal(10),
        )
        for i in range(51)
    ]
    async with running(settings_for_tests(symbols=specs)) as client:
        ws = await client.session.ws_connect(f"{client.base}/swap-market")
        topics = [f"C{i}-USDT@{t}" for i in range(51) for t in ("trade", "markPrice", "bookTicker", "lastPrice")]
        codes = [(await _sub(ws, topic))["code"] for topic in topics]
        assert codes[:200] == [0] * 200
        assert codes[200:] == [80403] * 4
        await ws.close()
