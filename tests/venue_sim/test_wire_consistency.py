"""A seeded random session over HTTP and the user stream: REST, WebSocket and balance agree."""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from tests.venue_sim.helpers import SimClient, decode_frame, running, settings_for_tests

SYMBOLS = ("BTC-USDT", "ETH-USDT")
QTY = {"BTC-USDT": ("0.001", "0.01", "0.02"), "ETH-USDT": ("0.1", "0.5", "1")}


async def _drain(ws: aiohttp.ClientWebSocketResponse) -> list[Any]:
    """Every event sent so far: a Ping round trip marks the end of what is queued."""
    await ws.send_str("Ping")
    events: list[Any] = []
    while True:
        frame = decode_frame((await ws.receive(timeout=5)).data)
        if frame == "Pong":
            return events
        if frame != "Ping":
            events.append(frame)


async def _random_session(client: SimClient, rng: random.Random) -> None:
    for _ in range(40):
        symbol = rng.choice(SYMBOLS)
        action = rng.random()
        if action < 0.3:
            await client.control("advance", {"ticks": rng.randint(1, 3)})
        elif action < 0.4:
            await client.call("DELETE", "/openApi/swap/v2/trade/allOpenOrders", {"symbol": symbol})
        else:
            price = Decimal((await client.public("/openApi/swap/v1/ticker/price", {"symbol": symbol})).data["price"])
            params: dict[str, object] = {
                "symbol": symbol,
                "side": rng.choice(("BUY", "SELL")),
                "quantity": rng.choice(QTY[symbol]),
                "type": rng.choice(("MARKET", "LIMIT")),
            }
            if params["type"] == "LIMIT":
                params["price"] = str(price * (1 + Decimal(rng.randint(-20, 20)) / 10_000))
                params["timeInForce"] = rng.choice(("GTC", "GTC", "IOC", "FOK"))
            await client.place(**params)


@pytest.mark.anyio
@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_rest_stream_and_balance_tell_the_same_story(seed: int) -> None:
    """[O6] a random session over HTTP and the user stream: REST, stream and balance agree."""
    async with running(settings_for_tests(seed=seed, fill_fraction=Decimal("0.5"))) as client:
        ws = await client.session.ws_connect(f"{client.base}/swap-market?listenKey={await client.listen_key()}")
        await _drain(ws)
        await _random_session(client, random.Random(seed))  # noqa: S311  # a seeded test scenario
        events = await _drain(ws)
        trades = [e["o"] for e in events if e["e"] == "ORDER_TRADE_UPDATE" and e["o"]["x"] == "TRADE"]
        assert trades, "the session should trade"
        fills = await client.all_fills()
        # One stream TRADE per fill, same quantity, price and commission.
        assert [(int(f["orderId"]), f["volume"], f["price"], f["commission"]) for f in fills] == [
            (t["i"], t["l"], t["L"], t["n"]) for t in trades
        ]
        income = (await client.call("GET", "/openApi/swap/v2/user/income", {"limit": 1000})).data
        fees = sum((Decimal(r["income"]) for r in income if r["incomeType"] == "TRADING_FEE"), Decimal(0))
        realized = sum((Decimal(r["income"]) for r in income if r["incomeType"] == "REALIZED_PNL"), Decimal(0))
        assert fees == sum((Decimal(t["n"]) for t in trades), Decimal(0))
        assert realized == sum((Decimal(t["rp"]) for t in trades), Decimal(0))
        balance = (await client.call("GET", "/openApi/swap/v2/user/balance")).data["balance"]
        assert Decimal(balance["balance"]) == Decimal(10_000) + fees + realized
        account_updates = [e for e in events if e["e"] == "ACCOUNT_UPDATE"]
        assert account_updates[-1]["a"]["B"][0]["wb"] == balance["balance"]
        # Each symbol's last streamed position matches REST (one-way mode: one position per symbol).
        streamed_positions = {p["s"]: p for e in account_updates for p in e["a"]["P"]}
        rest_positions = {p["symbol"]: p for p in (await client.call("GET", "/openApi/swap/v2/user/positions")).data}
        assert {s for s, p in streamed_positions.items() if p["pa"] != "0"} == set(rest_positions)
        for symbol, position in rest_positions.items():
            streamed = streamed_positions[symbol]
            assert (streamed["pa"], streamed["ep"], streamed["ps"]) == (
                position["positionAmt"],
                position["avgPrice"],
                position["positionSide"],
            )
        # Each order's last stream state matches REST.
        last: dict[int, dict[str, Any]] = {}
        for event in events:
            if event["e"] == "ORDER_TRADE_UPDATE":
                last[event["o"]["i"]] = event["o"]
        orders = (await client.call("GET", "/openApi/swap/v1/trade/fullOrder", {"limit": 1000})).data["orders"]
        assert {o["orderId"] for o in orders} == set(last)
        spelling = {"NEW": "PENDING", "CANCELED": "CANCELLED", "EXPIRED": "CANCELLED"}
        for order in orders:
            streamed = last[order["orderId"]]
            assert Decimal(order["executedQty"]) == Decimal(streamed["z"])
            assert order["status"] == spelling.get(streamed["X"], streamed["X"])
            assert Decimal(order["executedQty"]) <= Decimal(order["origQty"])
        await ws.close()
