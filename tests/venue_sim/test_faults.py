"""Faults on demand through the control API (and at start-up), all seeded."""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import pytest

from services.venue.sim.config import FaultSettings
from tests.venue_sim.helpers import SimClient, decode_frame, running, settings_for_tests

ORDER = "/openApi/swap/v2/trade/order"


async def _user_ws(client: SimClient) -> aiohttp.ClientWebSocketResponse:
    ws = await client.session.ws_connect(f"{client.base}/swap-market?listenKey={await client.listen_key()}")
    await ws.send_str("Ping")
    assert decode_frame((await ws.receive(timeout=5)).data) == "Pong"
    return ws


async def _frames(ws: aiohttp.ClientWebSocketResponse, count: int) -> list[Any]:
    frames: list[Any] = []
    while len(frames) < count:
        frame = decode_frame((await ws.receive(timeout=5)).data)
        if frame != "Ping":
            frames.append(frame)
    return frames


@pytest.mark.anyio
async def test_added_latency(client: SimClient) -> None:
    await client.control("faults", {"latency_ms": 150})
    started = time.monotonic()
    assert (await client.public("/openApi/swap/v2/server/time")).status == 200
    assert time.monotonic() - started >= 0.15
    await client.control("faults", method="DELETE")
    state = await client.control("state", method="GET")
    assert state["faults"]["latency_ms"] == 0


@pytest.mark.anyio
async def test_http_errors_then_recovery(client: SimClient) -> None:
    await client.control("faults", {"http_error_count": 2, "http_error_status": 504})
    assert (await client.public("/openApi/swap/v2/server/time")).status == 504
    assert (await client.call("GET", "/openApi/swap/v2/user/balance")).status == 504
    assert (await client.public("/openApi/swap/v2/server/time")).status == 200


@pytest.mark.anyio
async def test_rate_limit_fault_both_forms() -> None:
    async with running() as client:
        await client.control("faults", {"rate_limit_count": 1})
        limited = await client.call("GET", "/openApi/swap/v2/user/balance")
        assert (limited.status, limited.body["code"]) == (200, 100410)
        assert (await client.call("GET", "/openApi/swap/v2/user/balance")).body["code"] == 0
    async with running(settings_for_tests(rate_limit_response="http429")) as client:
        await client.control("faults", {"rate_limit_count": 1})
        limited = await client.call("GET", "/openApi/swap/v2/user/balance")
        assert (limited.status, limited.body["code"]) == (429, 100410)


@pytest.mark.anyio
async def test_response_dropped_after_the_order_executed(client: SimClient) -> None:
    await client.control("faults", {"drop_after_execute_count": 1})
    with pytest.raises(aiohttp.ClientConnectionError):
        await client.place(symbol="ETH-USDT", side="BUY", type="MARKET", quantity="1", clientOrderID="lost")
    # The order went through: the client finds it by its client id.
    found = await client.call("GET", ORDER, {"symbol": "ETH-USDT", "clientOrderID": "lost"})
    assert found.data["order"]["status"] == "FILLED"
    await client.control("faults", {"drop_after_execute_count": 1, "drop_mode": "504"})
    reply = await client.place(symbol="ETH-USDT", side="SELL", type="MARKET", quantity="1", clientOrderID="timeout")
    assert reply.status == 504
    found = await client.call("GET", ORDER, {"symbol": "ETH-USDT", "clientOrderID": "timeout"})
    assert found.data["order"]["status"] == "FILLED"


@pytest.mark.anyio
async def test_websocket_disconnects(client: SimClient) -> None:
    user = await _user_ws(client)
    market = await client.session.ws_connect(f"{client.base}/swap-market")
    closed = await client.control("ws/disconnect", {"user": True, "market": False})
    assert closed == {"closed": 1}
    assert (await user.receive(timeout=5)).type == aiohttp.WSMsgType.CLOSE
    closed = await client.control("ws/disconnect", {"user": False, "market": True, "abort": True})
    assert closed == {"closed": 1}
    msg = await market.receive(timeout=5)
    assert msg.type in {aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR}


@pytest.mark.anyio
async def test_user_stream_refused_until_the_fault_is_cleared(client: SimClient) -> None:
    key = await client.listen_key()
    market = await client.session.ws_connect(f"{client.base}/swap-market")  # market data is not refused
    armed = await client.control("faults", {"ws_refuse_user": True})
    assert armed["ws_refuse_user"] is True
    for _ in range(2):  # every attempt, not just the next one
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await client.session.ws_connect(f"{client.base}/swap-market?listenKey={key}")
        assert refused.value.status == 503
    assert (await client.call("PUT", "/openApi/user/auth/userDataStream", {"listenKey": key})).status == 200
    await client.control("faults", {"ws_refuse_user": False})
    user = await client.session.ws_connect(f"{client.base}/swap-market?listenKey={key}")
    await user.send_str("Ping")
    assert decode_frame((await user.receive(timeout=5)).data) == "Pong"
    await client.control("faults", {"ws_refuse_user": True})
    await client.control("faults", method="DELETE")  # a reset clears it too
    assert (await client.control("state", method="GET"))["faults"]["ws_refuse_user"] is False
    await user.close()
    await market.close()


@pytest.mark.anyio
async def test_duplicate_events(client: SimClient) -> None:
    ws = await _user_ws(client)
    await client.control("faults", {"duplicate_event_count": 1})
    await client.place(symbol="ETH-USDT", side="BUY", type="LIMIT", price="1000", quantity="1")
    await client.call("DELETE", "/openApi/swap/v2/trade/allOpenOrders")
    first, second, third = await _frames(ws, 3)
    assert first == second
    assert (first["o"]["x"], third["o"]["x"]) == ("NEW", "CANCELED")


@pytest.mark.anyio
async def test_out_of_order_events(client: SimClient) -> None:
    ws = await _user_ws(client)
    await client.control("faults", {"reorder_event_count": 1})
    await client.place(symbol="ETH-USDT", side="BUY", type="MARKET", quantity="1")
    frames = await _frames(ws, 3)
    # NEW was held back and arrives after the TRADE that followed it.
    assert [(f["e"], f.get("o", {}).get("x")) for f in frames] == [
        ("ORDER_TRADE_UPDATE", "TRADE"),
        ("ORDER_TRADE_UPDATE", "NEW"),
        ("ACCOUNT_UPDATE", None),
    ]


@pytest.mark.anyio
async def test_delayed_fills(client: SimClient) -> None:
    await client.control("faults", {"fill_delay_ticks": 2})
    placed = await client.place(symbol="ETH-USDT", side="BUY", type="MARKET", quantity="1")
    order_id = placed.data["order"]["orderId"]
    assert placed.data["order"]["status"] == "PENDING"
    await client.control("advance", {"ticks": 2, "symbols": ["ETH-USDT"]})
    assert (await client.call("GET", ORDER, {"symbol": "ETH-USDT", "orderId": order_id})).data["order"][
        "status"
    ] == "PENDING"
    await client.control("advance", {"ticks": 1, "symbols": ["ETH-USDT"]})
    assert (await client.call("GET", ORDER, {"symbol": "ETH-USDT", "orderId": order_id})).data["order"][
        "status"
    ] == "FILLED"


@pytest.mark.anyio
async def test_cancel_fill_race(client: SimClient) -> None:
    placed = await client.place(symbol="ETH-USDT", side="BUY", type="LIMIT", price="2000", quantity="1")
    order_id = placed.data["order"]["orderId"]
    await client.control("faults", {"cancel_fill_race_count": 1})
    cancel = await client.call("DELETE", ORDER, {"symbol": "ETH-USDT", "orderId": order_id})
    assert cancel.body["code"] == 80018
    order = (await client.call("GET", ORDER, {"symbol": "ETH-USDT", "orderId": order_id})).data["order"]
    assert (order["status"], order["avgPrice"]) == ("FILLED", "2000.00")


@pytest.mark.anyio
async def test_listen_key_expiry_on_demand(client: SimClient) -> None:
    ws = await _user_ws(client)
    assert await client.control("listen-keys/expire", {}) == {"expired": 1}
    (event,) = await _frames(ws, 1)
    assert event["e"] == "listenKeyExpired"


@pytest.mark.anyio
async def test_stale_rest_snapshots(client: SimClient) -> None:
    await client.control("faults", {"stale_read_count": 2})
    await client.place(symbol="ETH-USDT", side="BUY", type="LIMIT", price="1000", quantity="1")
    assert (await client.call("GET", "/openApi/swap/v2/trade/openOrders")).data["orders"] == []
    assert (await client.call("GET", "/openApi/swap/v2/user/positions")).data == []
    assert len((await client.call("GET", "/openApi/swap/v2/trade/openOrders")).data["orders"]) == 1


@pytest.mark.anyio
async def test_seeded_rates_repeat() -> None:
    patterns = []
    for _ in range(2):
        async with running(settings_for_tests(seed=11)) as client:
            await client.control("faults", {"http_error_rate": 0.5})
            statuses = [(await client.public("/openApi/swap/v2/server/time")).status for _ in range(16)]
            patterns.append(statuses)
    assert patterns[0] == patterns[1]
    assert set(patterns[0]) == {200, 500}


@pytest.mark.anyio
async def test_faults_armed_at_start_up() -> None:
    settings = settings_for_tests(faults=FaultSettings(http_error_count=1, http_error_status=503))
    async with running(settings) as client:
        assert (await client.public("/openApi/swap/v2/server/time")).status == 503
        assert (await client.public("/openApi/swap/v2/server/time")).status == 200


@pytest.mark.anyio
async def test_control_api_rejects_bad_requests(client: SimClient) -> None:
    for path, body in [
        ("faults", {"latency_ms": -1}),
        ("faults", {"no_such_fault": 1}),
        ("price", {"symbol": "ETH-USDT", "price": "abc"}),
        ("price", {"symbol": "NOPE-USDT", "price": "1"}),
        ("advance", {"ticks": 0}),
        ("advance", {"symbols": ["NOPE-USDT"]}),
        ("advance", {"symbols": []}),
        ("price", {"symbol": "ETH-USDT", "price": "1e15"}),
        ("clock", {"advance_ms": -5}),
    ]:
        async with client.session.post(f"{client.base}/_sim/{path}", json=body) as response:
            assert response.status == 400, (path, body)
            assert "error" in await response.json()


@pytest.mark.anyio
async def test_finished_order_missing_from_query(client: SimClient) -> None:
    filled = (await client.place(symbol="ETH-USDT", side="BUY", type="MARKET", quantity="1")).data["order"]["orderId"]
    await client.control("faults", {"query_miss_count": 1})
    assert (await client.call("GET", ORDER, {"symbol": "ETH-USDT", "orderId": filled})).body["code"] == 80016
    history = await client.call("GET", "/openApi/swap/v2/trade/allOrders", {"symbol": "ETH-USDT", "orderId": filled})
    assert [o["orderId"] for o in history.data["orders"]] == [filled]
    assert (await client.call("GET", ORDER, {"symbol": "ETH-USDT", "orderId": filled})).body["code"] == 0


@pytest.mark.anyio
async def test_user_stream_cut_before_an_event_armed_at_start_up() -> None:
    async with running(settings_for_tests(faults=FaultSettings(ws_disconnect_count=1))) as client:
        key = await client.listen_key()
        ws = await _user_ws(client)
        placed = await client.place(symbol="ETH-USDT", side="BUY", type="MARKET", quantity="1", clientOrderID="gone")
        # The connection vanishes (no close frame) and the order's events never reach it...
        msg = await ws.receive(timeout=5)
        assert msg.type in {aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR}
        # ...while REST has the order, so a client that reconciles finds it.
        found = await client.call("GET", ORDER, {"symbol": "ETH-USDT", "orderId": placed.data["order"]["orderId"]})
        assert found.data["order"]["status"] == "FILLED"
        # The fault fired once: a new connection on the same key gets the next events.
        again = await client.session.ws_connect(f"{client.base}/swap-market?listenKey={key}")
        await again.send_str("Ping")
        assert decode_frame((await again.receive(timeout=5)).data) == "Pong"
        await client.place(symbol="ETH-USDT", side="SELL", type="MARKET", quantity="1")
        events = await _frames(again, 3)
        assert [(e["e"], e.get("o", {}).get("x")) for e in events] == [
            ("ORDER_TRADE_UPDATE", "NEW"),
            ("ORDER_TRADE_UPDATE", "TRADE"),
            ("ACCOUNT_UPDATE", None),
        ]
        assert (await client.control("state", method="GET"))["faults"]["ws_disconnect_count"] == 0
