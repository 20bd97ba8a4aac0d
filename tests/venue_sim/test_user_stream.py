"""The user-data stream (API.md §6): listen keys, gzip frames, Ping/Pong, order and account events."""

from __future__ import annotations

import gzip
from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from services.venue.sim.clock import SystemClock
from tests.venue_sim.helpers import SimClient, decode_frame, running, settings_for_tests

STREAM = "/openApi/user/auth/userDataStream"


async def _connect(client: SimClient, key: str) -> aiohttp.ClientWebSocketResponse:
    ws = await client.session.ws_connect(f"{client.base}/swap-market?listenKey={key}", autoping=True)
    # A Ping answered proves the server has registered the connection.
    await ws.send_str("Ping")
    assert await _next(ws, skip_ping=True) == "Pong"
    return ws


async def _next(ws: aiohttp.ClientWebSocketResponse, *, skip_ping: bool = True) -> Any:
    while True:
        msg = await ws.receive(timeout=5)
        assert msg.type == aiohttp.WSMsgType.BINARY, msg
        frame = decode_frame(msg.data)
        if not (skip_ping and frame == "Ping"):
            return frame


async def _events(ws: aiohttp.ClientWebSocketResponse, count: int) -> list[Any]:
    return [await _next(ws) for _ in range(count)]


async def _answer_ping(ws: aiohttp.ClientWebSocketResponse) -> None:
    """Take the server's Ping, answer Pong, and wait until the server has read the answer."""
    assert await _next(ws, skip_ping=False) == "Ping"
    await ws.send_str("Pong")
    # Frames are read in order: the reply to this Ping proves the Pong before it was taken.
    await ws.send_str("Ping")
    assert await _next(ws) == "Pong"


@pytest.mark.anyio
async def test_listen_key_lifecycle(client: SimClient) -> None:
    headers = {"X-BX-APIKEY": client.api_key}
    created = await client.raw("POST", STREAM, headers=headers)
    # A bare object, no envelope.
    assert set(created.body) == {"listenKey"}
    key = created.body["listenKey"]
    assert len(key) == 64
    assert int(key, 16) >= 0
    assert (await client.raw("PUT", STREAM, query=f"listenKey={key}", headers=headers)).status == 200
    assert (await client.raw("PUT", STREAM, headers=headers)).status == 204
    assert (await client.raw("DELETE", STREAM, query=f"listenKey={key}", headers=headers)).status == 200
    assert (await client.raw("PUT", STREAM, query=f"listenKey={key}", headers=headers)).status == 404
    assert (await client.raw("DELETE", STREAM, query=f"listenKey={key}", headers=headers)).status == 404
    no_key = await client.raw("POST", STREAM)
    assert no_key.body["code"] == 100413
    # ccxt signs these calls: a signed POST works, a badly signed one does not.
    signed = await client.raw("POST", STREAM, query=client.signed_query({}), headers=headers)
    assert len(signed.body["listenKey"]) == 64
    bad = await client.raw("POST", STREAM, query=f"timestamp=1&signature={'0' * 64}", headers=headers)
    assert bad.body["code"] == 100001


@pytest.mark.anyio
async def test_unknown_listen_key_refused(client: SimClient) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.session.ws_connect(f"{client.base}/swap-market?listenKey=nope")
    assert refused.value.status == 404


@pytest.mark.anyio
async def test_listen_key_lives_sixty_minutes_unless_extended(client: SimClient) -> None:
    key = await client.listen_key()
    ws = await _connect(client, key)
    await client.control("clock", {"advance_ms": 59 * 60_000})
    # The client keeps the connection alive, as a real one does.
    await _answer_ping(ws)
    headers = {"X-BX-APIKEY": client.api_key}
    assert (await client.raw("PUT", STREAM, query=f"listenKey={key}", headers=headers)).status == 200
    moved = await client.control("clock", {"advance_ms": 59 * 60_000})
    assert moved["expiredListenKeys"] == 0
    await _answer_ping(ws)
    moved = await client.control("clock", {"advance_ms": 2 * 60_000})
    assert moved["expiredListenKeys"] == 1
    expired = await _next(ws)
    assert expired == {"e": "listenKeyExpired", "E": client.clock.now_ms(), "listenKey": key}
    # No further account data on that connection.
    await client.place(symbol="ETH-USDT", side="BUY", type="MARKET", quantity="1")
    await ws.send_str("Ping")
    assert await _next(ws) == "Pong"
    await ws.close()
    with pytest.raises(aiohttp.WSServerHandshakeError):
        await client.session.ws_connect(f"{client.base}/swap-market?listenKey={key}")


@pytest.mark.anyio
async def test_order_and_account_events_match_rest() -> None:
    """[E25] an asynchronous partial then full fill on the stream, agreeing with REST."""
    async with running(settings_for_tests(fill_fraction=Decimal("0.5"))) as client:
        await client.set_price("ETH-USDT", "3000")
        ws = await _connect(client, await client.listen_key())
        placed = await client.place(
            symbol="ETH-USDT", side="SELL", type="LIMIT", price="3010", quantity="2", clientOrderID="S1"
        )
        order_id = placed.data["order"]["orderId"]
        (new,) = await _events(ws, 1)
        assert new["e"] == "ORDER_TRADE_UPDATE"
        o = new["o"]
        assert (o["i"], o["c"], o["x"], o["X"], o["z"], o["s"], o["S"], o["o"]) == (
            order_id,
            "s1",
            "NEW",
            "NEW",
            "0",
            "ETH-USDT",
            "SELL",
            "LIMIT",
        )
        await client.set_price("ETH-USDT", "3020")
        trade, account = await _events(ws, 2)
        o = trade["o"]
        assert (o["x"], o["X"], o["z"], o["l"], o["L"], o["ap"], o["n"], o["N"]) == (
            "TRADE",
            "PARTIALLY_FILLED",
            "1.00",
            "1.00",
            "3010.00",
            "3010.00",
            "-0.60200000",
            "USDT",
        )
        assert o["T"] > 0
        assert account["e"] == "ACCOUNT_UPDATE"
        assert account["a"]["m"] == "ORDER"
        (balance,) = account["a"]["B"]
        assert (balance["a"], balance["bc"]) == ("USDT", "-0.60200000")
        (position,) = account["a"]["P"]
        assert (position["s"], position["pa"], position["ps"], position["mt"]) == ("ETH-USDT", "1.00", "SHORT", "cross")
        await client.control("advance", {"ticks": 1, "symbols": ["ETH-USDT"]})
        await client.set_price("ETH-USDT", "3020")
        trade, account = await _events(ws, 2)
        assert (trade["o"]["X"], trade["o"]["z"], trade["o"]["l"]) == ("FILLED", "2.00", "1.00")
        rest = (
            await client.call("GET", "/openApi/swap/v2/trade/order", {"symbol": "ETH-USDT", "orderId": order_id})
        ).data
        assert Decimal(rest["order"]["commission"]) == Decimal("-0.602") * 2
        wallet = (await client.call("GET", "/openApi/swap/v2/user/balance")).data["balance"]["balance"]
        assert account["a"]["B"][0]["wb"] == wallet
        await ws.close()


@pytest.mark.anyio
async def test_cancel_and_expiry_events_use_websocket_spelling(client: SimClient) -> None:
    ws = await _connect(client, await client.listen_key())
    order_id = (await client.place(symbol="ETH-USDT", side="BUY", type="LIMIT", price="1000", quantity="1")).data[
        "order"
    ]["orderId"]
    await client.call("DELETE", "/openApi/swap/v2/trade/order", {"symbol": "ETH-USDT", "orderId": order_id})
    new, cancelled = await _events(ws, 2)
    assert (new["o"]["X"], cancelled["o"]["x"], cancelled["o"]["X"]) == ("NEW", "CANCELED", "CANCELED")
    await client.place(symbol="ETH-USDT", side="BUY", type="LIMIT", price="1000", quantity="1", timeInForce="IOC")
    new, expired = await _events(ws, 2)
    assert (expired["o"]["x"], expired["o"]["X"]) == ("EXPIRED", "EXPIRED")
    await ws.close()


@pytest.mark.anyio
async def test_config_update_on_leverage_change(client: SimClient) -> None:
    ws = await _connect(client, await client.listen_key())
    await client.call("POST", "/openApi/swap/v2/trade/leverage", {"symbol": "BTC-USDT", "side": "BOTH", "leverage": 9})
    (event,) = await _events(ws, 1)
    assert event["e"] == "ACCOUNT_CONFIG_UPDATE"
    assert event["ac"] == {"s": "BTC-USDT", "l": 9, "S": 9, "mt": "cross"}
    await ws.close()


@pytest.mark.anyio
async def test_server_pings_every_five_seconds_and_drops_a_silent_client(client: SimClient) -> None:
    ws = await _connect(client, await client.listen_key())
    await client.control("clock", {"advance_ms": 4_999})
    # No Ping yet: the first frame after the clock move is the answer to our own Ping.
    await ws.send_str("Ping")
    assert await _next(ws, skip_ping=False) == "Pong"
    await client.control("clock", {"advance_ms": 1})
    first = await ws.receive(timeout=5)
    # The Ping is a gzip-compressed binary frame, like every server message.
    assert first.type == aiohttp.WSMsgType.BINARY
    assert gzip.decompress(first.data) == b"Ping"
    # A gzip-compressed Pong counts as an answer: 30 s later the connection is still open.
    await ws.send_bytes(gzip.compress(b"Pong"))
    await ws.send_str("Ping")
    assert await _next(ws) == "Pong"
    await client.control("clock", {"advance_ms": 30_000})
    assert await _next(ws, skip_ping=False) == "Ping"
    # Now silent: unanswered for exactly the 30 s timeout is tolerated, one millisecond more is not.
    await client.control("clock", {"advance_ms": 30_000})
    assert await _next(ws, skip_ping=False) == "Ping"
    await client.control("clock", {"advance_ms": 1})
    msg = await ws.receive(timeout=5)
    assert (msg.type, msg.data) == (aiohttp.WSMsgType.CLOSE, 1001)
    assert client.sim.hub.connections == set()


@pytest.mark.anyio
async def test_a_client_too_far_behind_is_cut_off(client: SimClient) -> None:
    ws = await _connect(client, await client.listen_key())
    (conn,) = client.sim.hub.connections
    conn.max_backlog = 0
    await client.place(symbol="ETH-USDT", side="BUY", type="MARKET", quantity="1")
    msg = await ws.receive(timeout=5)
    assert msg.type in {aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR}


@pytest.mark.anyio
async def test_with_the_wall_clock_a_timer_runs_the_heartbeat() -> None:
    # The process's timer, not the control API, sends Pings and drops the silent client here.
    settings = settings_for_tests(ping_seconds=0.05, pong_timeout_seconds=0.2)
    async with running(settings, clock=SystemClock()) as client:
        ws = await client.session.ws_connect(f"{client.base}/swap-market")
        assert await _next(ws, skip_ping=False) == "Ping"
        while (msg := await ws.receive(timeout=5)).type == aiohttp.WSMsgType.BINARY:
            assert decode_frame(msg.data) == "Ping"
        assert (msg.type, msg.data) == (aiohttp.WSMsgType.CLOSE, 1001)
