"""Cancels and order queries over HTTP (API.md §5.5-5.12)."""

from __future__ import annotations

import pytest

from tests.venue_sim.helpers import SimClient

ORDER = "/openApi/swap/v2/trade/order"


async def _rest(client: SimClient, price: str = "2000", client_id: str | None = None) -> int:
    params = {"symbol": "ETH-USDT", "side": "BUY", "type": "LIMIT", "price": price, "quantity": "1"}
    if client_id is not None:
        params["clientOrderID"] = client_id
    reply = await client.place(**params)
    order_id = reply.data["order"]["orderId"]
    assert isinstance(order_id, int)
    return order_id


@pytest.mark.anyio
async def test_cancel_by_id_then_by_client_id(client: SimClient) -> None:
    first = await _rest(client)
    reply = await client.call("DELETE", ORDER, {"symbol": "ETH-USDT", "orderId": first})
    assert reply.data["order"]["status"] == "CANCELLED"
    assert reply.data["order"]["orderId"] == first
    await _rest(client, client_id="abc")
    by_client = await client.call("DELETE", ORDER, {"symbol": "ETH-USDT", "clientOrderID": "ABC"})
    assert (by_client.data["order"]["status"], by_client.data["order"]["clientOrderId"]) == ("CANCELLED", "abc")


@pytest.mark.anyio
async def test_cancel_errors(client: SimClient) -> None:
    unknown = await client.call("DELETE", ORDER, {"symbol": "ETH-USDT", "orderId": 1})
    assert (unknown.status, unknown.body["code"]) == (200, 80016)
    neither = await client.call("DELETE", ORDER, {"symbol": "ETH-USDT"})
    assert neither.body["code"] == 80001
    filled = (await client.place(symbol="ETH-USDT", side="BUY", type="MARKET", quantity="1")).data["order"]["orderId"]
    assert (await client.call("DELETE", ORDER, {"symbol": "ETH-USDT", "orderId": filled})).body["code"] == 80018
    resting = await _rest(client)
    assert (await client.call("DELETE", ORDER, {"symbol": "ETH-USDT", "orderId": resting})).body["code"] == 0
    # The same order cannot be cancelled twice within a second...
    again = await client.call("DELETE", ORDER, {"symbol": "ETH-USDT", "orderId": resting})
    assert again.body["code"] == 109201
    # ...and once cancelled it is no longer there to cancel.
    client.clock.advance(1000)
    later = await client.call("DELETE", ORDER, {"symbol": "ETH-USDT", "orderId": resting})
    assert later.body["code"] == 80016


@pytest.mark.anyio
async def test_batch_cancel_reports_success_and_failure(client: SimClient) -> None:
    one = await _rest(client)
    two = await _rest(client)
    reply = await client.call(
        "DELETE", "/openApi/swap/v2/trade/batchOrders", {"symbol": "ETH-USDT", "orderIdList": f"[{one},{two},5]"}
    )
    assert [o["orderId"] for o in reply.data["success"]] == [one, two]
    assert [(f["orderId"], f["errorCode"]) for f in reply.data["failed"]] == [(5, 80016)]
    await _rest(client, client_id="c1")
    by_client = await client.call(
        "DELETE", "/openApi/swap/v2/trade/batchOrders", {"symbol": "ETH-USDT", "clientOrderIDList": '["C1"]'}
    )
    assert [o["clientOrderId"] for o in by_client.data["success"]] == ["c1"]
    assert by_client.data["failed"] is None
    empty = await client.call("DELETE", "/openApi/swap/v2/trade/batchOrders", {"symbol": "ETH-USDT"})
    assert empty.body["code"] == 80014


@pytest.mark.anyio
async def test_cancel_all_with_and_without_symbol(client: SimClient) -> None:
    await _rest(client)
    await client.place(symbol="BTC-USDT", side="SELL", type="LIMIT", price="90000", quantity="0.001")
    eth = await client.call("DELETE", "/openApi/swap/v2/trade/allOpenOrders", {"symbol": "ETH-USDT"})
    assert [o["symbol"] for o in eth.data["success"]] == ["ETH-USDT"]
    rest = await client.call("DELETE", "/openApi/swap/v2/trade/allOpenOrders")
    assert [o["symbol"] for o in rest.data["success"]] == ["BTC-USDT"]
    assert (await client.call("GET", "/openApi/swap/v2/trade/openOrders")).data["orders"] == []


@pytest.mark.anyio
async def test_query_open_orders_and_history(client: SimClient) -> None:
    resting = await _rest(client, client_id="keep")
    filled = (await client.place(symbol="ETH-USDT", side="BUY", type="MARKET", quantity="1")).data["order"]["orderId"]
    cancelled = await _rest(client)
    await client.call("DELETE", ORDER, {"symbol": "ETH-USDT", "orderId": cancelled})

    query = await client.call("GET", ORDER, {"symbol": "ETH-USDT", "orderId": resting})
    order = query.data["order"]
    assert (order["status"], order["clientOrderId"], order["type"], order["side"]) == (
        "PENDING",
        "keep",
        "LIMIT",
        "BUY",
    )
    assert (order["positionSide"], order["leverage"], order["executedQty"]) == ("BOTH", "5X", "0.00")
    assert isinstance(order["time"], int)

    pending = await client.call("GET", "/openApi/swap/v2/trade/openOrder", {"symbol": "ETH-USDT", "orderId": resting})
    assert pending.data["order"]["orderId"] == resting
    done = await client.call("GET", "/openApi/swap/v2/trade/openOrder", {"symbol": "ETH-USDT", "orderId": filled})
    assert done.body["code"] == 80016

    opened = await client.call("GET", "/openApi/swap/v2/trade/openOrders", {"symbol": "ETH-USDT"})
    assert [o["orderId"] for o in opened.data["orders"]] == [resting]
    history = await client.call("GET", "/openApi/swap/v2/trade/allOrders", {"symbol": "ETH-USDT", "limit": 500})
    assert [(o["orderId"], o["status"]) for o in history.data["orders"]] == [
        (filled, "FILLED"),
        (cancelled, "CANCELLED"),
    ]
    full = await client.call("GET", "/openApi/swap/v1/trade/fullOrder", {"symbol": "ETH-USDT"})
    assert [o["orderId"] for o in full.data["orders"]] == [resting, filled, cancelled]

    now = client.clock.now_ms()
    too_long = await client.call(
        "GET",
        "/openApi/swap/v2/trade/allOrders",
        {"symbol": "ETH-USDT", "startTime": now - 8 * 86_400_000, "endTime": now},
    )
    assert too_long.body["code"] == 80014
    missing = await client.call("GET", ORDER, {"symbol": "ETH-USDT", "orderId": 42})
    assert missing.body["code"] == 80016
    bad_symbol = await client.call("GET", "/openApi/swap/v2/trade/openOrders", {"symbol": "XRP-USDT"})
    assert bad_symbol.body["code"] == 109425


@pytest.mark.anyio
async def test_fills_match_orders_and_balance(client: SimClient) -> None:
    await client.set_price("ETH-USDT", "3000")
    buy = (await client.place(symbol="ETH-USDT", side="BUY", type="MARKET", quantity="2", clientOrderID="Open")).data
    await client.set_price("ETH-USDT", "3100")
    sell = (await client.place(symbol="ETH-USDT", side="SELL", type="MARKET", quantity="2")).data
    fills = await client.all_fills()
    assert [(f["orderId"], f["volume"], f["price"]) for f in fills] == [
        (str(buy["order"]["orderId"]), "2.00", "3000.01"),
        (str(sell["order"]["orderId"]), "2.00", "3099.99"),
    ]
    assert fills[0]["clientOrderID"] == "open"
    assert (fills[0]["side"], fills[0]["type"], fills[1]["side"]) == ("BUY", "MARKET", "SELL")
    # As on BingX, this endpoint names no trade: trade ids and roles are fillHistory's.
    assert not {"tradeId", "role"} & set(fills[0])
    assert fills[0]["filledTm"].endswith("Z")
    assert fills[0]["commission"] == "-3.00001000"
    assert fills[1]["commission"] == "-3.09999000"
    one = await client.call(
        "GET", "/openApi/swap/v2/trade/allFillOrders", {"tradingUnit": "COIN", "orderId": buy["order"]["orderId"]}
    )
    assert len(one.data["fill_orders"]) == 1
    balance = (await client.call("GET", "/openApi/swap/v2/user/balance")).data["balance"]
    # 10000 + (3099.99 - 3000.01) x 2 - (3.00001 + 3.09999) of fees.
    assert balance["balance"] == "10193.86000000"
    assert balance["realisedProfit"] == "199.9600"


@pytest.mark.anyio
async def test_close_all_positions(client: SimClient) -> None:
    await client.place(symbol="ETH-USDT", side="SELL", type="MARKET", quantity="1")
    await client.place(symbol="BTC-USDT", side="BUY", type="MARKET", quantity="0.01")
    reply = await client.call("POST", "/openApi/swap/v2/trade/closeAllPositions", {"symbol": "ETH-USDT"})
    (order_id,) = reply.data["success"]
    assert isinstance(order_id, int)
    assert reply.data["failed"] is None
    positions = (await client.call("GET", "/openApi/swap/v2/user/positions")).data
    assert [p["symbol"] for p in positions] == ["BTC-USDT"]
    everything = await client.call("POST", "/openApi/swap/v2/trade/closeAllPositions")
    assert len(everything.data["success"]) == 1
    assert (await client.call("GET", "/openApi/swap/v2/user/positions")).data == []


@pytest.mark.anyio
async def test_fill_history_pages_with_trade_ids(client: SimClient) -> None:
    await client.set_price("ETH-USDT", "3000")
    for _ in range(3):
        await client.place(symbol="ETH-USDT", side="BUY", type="MARKET", quantity="1")
    client.clock.advance(1)
    page = (await client.call("GET", "/openApi/swap/v2/trade/fillHistory", {"pageSize": 2})).data
    assert page["total"] == 3
    first = page["fill_history_orders"]
    assert [(f["tradeId"], f["role"], f["side"], f["positionSide"]) for f in first] == [
        ("1", "taker", "buy", "both"),
        ("2", "taker", "buy", "both"),
    ]
    second = (await client.call("GET", "/openApi/swap/v2/trade/fillHistory", {"pageSize": 2, "pageIndex": 2})).data
    assert [f["tradeId"] for f in second["fill_history_orders"]] == ["3"]
    after = (await client.call("GET", "/openApi/swap/v2/trade/fillHistory", {"lastFillId": 2})).data
    assert [f["tradeId"] for f in after["fill_history_orders"]] == ["3"]
    bad = await client.call("GET", "/openApi/swap/v2/trade/fillHistory", {"pageSize": 5000})
    assert bad.body["code"] == 80014


@pytest.mark.anyio
async def test_cancel_all_after_dead_man_switch(client: SimClient) -> None:
    await _rest(client)
    armed = await client.call("POST", "/openApi/swap/v2/trade/cancelAllAfter", {"type": "ACTIVATE", "timeOut": 10})
    assert armed.data["status"] == "ACTIVATED"
    assert armed.data["triggerTime"] == (client.clock.now_ms() + 10_000) // 1000
    await client.control("clock", {"advance_ms": 9_000})
    assert len((await client.call("GET", "/openApi/swap/v2/trade/openOrders")).data["orders"]) == 1
    await client.control("clock", {"advance_ms": 1_000})
    assert (await client.call("GET", "/openApi/swap/v2/trade/openOrders")).data["orders"] == []
    await _rest(client)
    await client.call("POST", "/openApi/swap/v2/trade/cancelAllAfter", {"type": "ACTIVATE", "timeOut": 10})
    closed = await client.call("POST", "/openApi/swap/v2/trade/cancelAllAfter", {"type": "CLOSE"})
    assert closed.data["status"] == "CLOSED"
    await client.control("clock", {"advance_ms": 20_000})
    assert len((await client.call("GET", "/openApi/swap/v2/trade/openOrders")).data["orders"]) == 1
    bad = await client.call("POST", "/openApi/swap/v2/trade/cancelAllAfter", {"type": "ACTIVATE", "timeOut": 5})
    assert bad.body["code"] == 80014


@pytest.mark.anyio
async def test_malformed_integers_are_parameter_errors(client: SimClient) -> None:
    resting = await _rest(client)
    for params in (
        {"symbol": "ETH-USDT", "orderId": "--5"},
        {"symbol": "ETH-USDT", "orderId": "\u00b2"},
        {"symbol": "ETH-USDT", "orderId": "1" * 25},
    ):
        reply = await client.call("GET", ORDER, params)
        assert (reply.status, reply.body["code"]) == (200, 80014), params
    for limit in (0, -3, 1001, "x"):
        reply = await client.call("GET", "/openApi/swap/v2/trade/allOrders", {"limit": limit})
        assert reply.body["code"] == 80014, limit
    batch = await client.call(
        "DELETE", "/openApi/swap/v2/trade/batchOrders", {"symbol": "ETH-USDT", "orderIdList": f'["\u00b2",{resting}]'}
    )
    assert [o["orderId"] for o in batch.data["success"]] == [resting]
    assert [f["errorCode"] for f in batch.data["failed"]] == [80014]
