"""Placing orders over HTTP: fills, time in force, fees, client ids and every rejection (API.md §5.2-5.4)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.venue_sim.helpers import SimClient, running, settings_for_tests

ORDER = "/openApi/swap/v2/trade/order"
QUERY = "/openApi/swap/v2/trade/order"


async def _order(client: SimClient, order_id: int) -> dict[str, object]:
    reply = await client.call("GET", QUERY, {"symbol": "BTC-USDT", "orderId": order_id})
    order = reply.data["order"]
    assert isinstance(order, dict)
    return order


@pytest.mark.anyio
async def test_market_buy_fills_at_the_ask_with_fee(client: SimClient) -> None:
    await client.set_price("BTC-USDT", "60000")
    reply = await client.place(symbol="BTC-USDT", side="BUY", type="MARKET", positionSide="BOTH", quantity="0.01")
    assert reply.status == 200
    placed = reply.data["order"]
    order_id = placed["orderId"]
    # 19-digit ids above 2**53, sent as JSON integers.
    assert isinstance(order_id, int)
    assert order_id > 2**53
    assert placed["status"] == "FILLED"
    assert placed["executedQty"] == "0.0100"
    assert placed["clientOrderID"] == placed["clientOrderId"] == ""
    assert placed["quantity"] == Decimal("0.01")
    order = await _order(client, order_id)
    # Ask = 60000 + one tick; taker fee 0.05 % charged, reported negative.
    assert order["avgPrice"] == "60000.1"
    assert order["commission"] == "-0.30000050"
    assert order["status"] == "FILLED"
    assert order["cumQuote"] == "600"
    assert order["origQty"] == "0.0100"


@pytest.mark.anyio
async def test_market_slippage_moves_against_the_taker() -> None:
    async with running(settings_for_tests(slippage_bps=Decimal(10))) as client:
        await client.set_price("BTC-USDT", "60000")
        reply = await client.place(symbol="BTC-USDT", side="SELL", type="MARKET", quantity="0.01")
        order = await _order(client, reply.data["order"]["orderId"])
        # Bid 59999.9 less 10 bps, truncated to the tick (never better than the touch).
        assert order["avgPrice"] == "59939.9"


@pytest.mark.anyio
async def test_limit_rests_pending_then_fills_as_maker_when_crossed(client: SimClient) -> None:
    """[E25] a LIMIT order rests, then fills at its price when the market crosses it."""
    await client.set_price("BTC-USDT", "60000")
    reply = await client.place(
        symbol="BTC-USDT", side="BUY", type="LIMIT", price="59000", quantity="0.01", positionSide="BOTH"
    )
    order_id = reply.data["order"]["orderId"]
    assert reply.data["order"]["status"] == "PENDING"
    assert (await _order(client, order_id))["status"] == "PENDING"
    await client.set_price("BTC-USDT", "59500")
    assert (await _order(client, order_id))["status"] == "PENDING"
    await client.set_price("BTC-USDT", "58800")
    order = await _order(client, order_id)
    # Filled at its own price (never worse than the limit) with the maker fee.
    assert order["status"] == "FILLED"
    assert order["avgPrice"] == "59000.0"
    assert order["commission"] == "-0.11800000"


@pytest.mark.anyio
async def test_crossing_limit_takes_at_the_touch(client: SimClient) -> None:
    await client.set_price("ETH-USDT", "3000")
    reply = await client.place(symbol="ETH-USDT", side="BUY", type="LIMIT", price="3100", quantity="1")
    assert reply.data["order"]["status"] == "FILLED"
    assert reply.data["order"]["avgPrice"] == "3000.01"


@pytest.mark.anyio
async def test_ioc_and_fok_never_rest(client: SimClient) -> None:
    await client.set_price("ETH-USDT", "3000")
    ioc = await client.place(symbol="ETH-USDT", side="BUY", type="LIMIT", price="2900", quantity="1", timeInForce="IOC")
    assert ioc.data["order"]["status"] == "CANCELLED"
    fok = await client.place(symbol="ETH-USDT", side="BUY", type="LIMIT", price="2900", quantity="1", timeInForce="FOK")
    assert fok.data["order"]["status"] == "CANCELLED"
    opened = await client.call("GET", "/openApi/swap/v2/trade/openOrders", {"symbol": "ETH-USDT"})
    assert opened.data["orders"] == []


@pytest.mark.anyio
async def test_partial_fills_when_configured() -> None:
    """[E25] a resting LIMIT order fills in parts, one per crossing price move."""
    async with running(settings_for_tests(fill_fraction=Decimal("0.25"))) as client:
        await client.set_price("ETH-USDT", "3000")
        reply = await client.place(symbol="ETH-USDT", side="SELL", type="LIMIT", price="3010", quantity="1")
        order_id = reply.data["order"]["orderId"]
        await client.set_price("ETH-USDT", "3020")
        order = (await client.call("GET", QUERY, {"symbol": "ETH-USDT", "orderId": order_id})).data["order"]
        assert (order["status"], order["executedQty"]) == ("PARTIALLY_FILLED", "0.25")
        # Each matching pass that finds the order crossed fills another quarter.
        executed = []
        for price in ("3021", "3005", "3022", "3023"):
            await client.set_price("ETH-USDT", price)
            order = (await client.call("GET", QUERY, {"symbol": "ETH-USDT", "orderId": order_id})).data["order"]
            executed.append((order["status"], order["executedQty"]))
        assert executed == [
            ("PARTIALLY_FILLED", "0.50"),
            ("PARTIALLY_FILLED", "0.50"),
            ("PARTIALLY_FILLED", "0.75"),
            ("FILLED", "1.00"),
        ]
        # FOK cannot be filled whole at once: nothing fills.
        fok = await client.place(
            symbol="ETH-USDT", side="BUY", type="LIMIT", price="3100", quantity="1", timeInForce="FOK"
        )
        assert (fok.data["order"]["status"], fok.data["order"]["executedQty"]) == ("CANCELLED", "0.00")
        ioc = await client.place(
            symbol="ETH-USDT", side="BUY", type="LIMIT", price="3100", quantity="1", timeInForce="IOC"
        )
        assert (ioc.data["order"]["status"], ioc.data["order"]["executedQty"]) == ("CANCELLED", "0.25")


@pytest.mark.anyio
async def test_post_only_that_would_take_is_rejected(client: SimClient) -> None:
    await client.set_price("ETH-USDT", "3000")
    reply = await client.place(
        symbol="ETH-USDT", side="BUY", type="LIMIT", price="3001", quantity="1", timeInForce="PostOnly"
    )
    assert (reply.status, reply.body["code"]) == (200, 101215)
    ok = await client.place(
        symbol="ETH-USDT", side="BUY", type="LIMIT", price="2999", quantity="1", timeInForce="PostOnly"
    )
    assert ok.data["order"]["status"] == "PENDING"


@pytest.mark.anyio
async def test_client_order_id_lowercased_unique_and_bounded(client: SimClient) -> None:
    first = await client.place(
        symbol="ETH-USDT", side="BUY", type="LIMIT", price="2000", quantity="1", clientOrderID="My-Order-1"
    )
    assert first.data["order"]["clientOrderID"] == "my-order-1"
    # Query by either spelling, any case.
    found = await client.call("GET", QUERY, {"symbol": "ETH-USDT", "clientOrderId": "MY-ORDER-1"})
    assert found.data["order"]["orderId"] == first.data["order"]["orderId"]
    assert found.data["order"]["clientOrderId"] == "my-order-1"
    again = await client.place(
        symbol="ETH-USDT", side="BUY", type="LIMIT", price="2000", quantity="1", clientOrderId="my-order-1"
    )
    assert again.body["code"] == 101481
    too_long = await client.place(
        symbol="ETH-USDT", side="BUY", type="LIMIT", price="2000", quantity="1", clientOrderID="x" * 41
    )
    assert too_long.body["code"] == 80014


@pytest.mark.anyio
async def test_size_rules_and_truncation(client: SimClient) -> None:
    small = await client.place(symbol="BTC-USDT", side="BUY", type="MARKET", quantity="0.00001")
    assert small.body["code"] == 101400
    await client.set_price("ETH-USDT", "100")
    tiny_notional = await client.place(symbol="ETH-USDT", side="BUY", type="LIMIT", price="1", quantity="1")
    assert tiny_notional.body["code"] == 101400
    truncated = await client.place(symbol="ETH-USDT", side="BUY", type="LIMIT", price="90.129", quantity="1.239")
    order = await client.call("GET", QUERY, {"symbol": "ETH-USDT", "orderId": truncated.data["order"]["orderId"]})
    assert (order.data["order"]["price"], order.data["order"]["origQty"]) == ("90.12", "1.23")


@pytest.mark.anyio
async def test_parameter_errors(client: SimClient) -> None:
    assert (await client.place(side="BUY", type="MARKET", quantity="1")).body["code"] == 80014
    assert (await client.place(symbol="ETH-USDT", side="BUY", type="LIMIT", quantity="1")).body["code"] == 80014
    assert (await client.place(symbol="ETH-USDT", side="UP", type="MARKET", quantity="1")).body["code"] == 80014
    assert (await client.place(symbol="ETH-USDT", side="BUY", type="MARKET", quantity="x")).body["code"] == 80014
    bad_symbol = await client.place(symbol="DOGE-USDT", side="BUY", type="MARKET", quantity="1")
    assert (bad_symbol.body["code"], bad_symbol.body["msg"]) == (109425, "DOGE-USDT not exist")
    trailing = await client.place(symbol="ETH-USDT", side="BUY", type="TRAILING_STOP_MARKET", quantity="1")
    assert trailing.body["code"] == 109400


@pytest.mark.anyio
async def test_insufficient_margin() -> None:
    async with running(settings_for_tests(initial_balance=Decimal(100))) as client:
        await client.set_price("ETH-USDT", "3000")
        # 1 ETH at 5x needs 600 USDT of margin.
        reply = await client.place(symbol="ETH-USDT", side="BUY", type="MARKET", quantity="1")
        assert (reply.status, reply.body["code"]) == (200, 101204)
        ok = await client.place(symbol="ETH-USDT", side="BUY", type="MARKET", quantity="0.1")
        assert ok.data["order"]["status"] == "FILLED"


@pytest.mark.anyio
async def test_one_way_position_side_and_reduce_only(client: SimClient) -> None:
    wrong = await client.place(symbol="ETH-USDT", side="BUY", type="MARKET", quantity="1", positionSide="LONG")
    assert wrong.body["code"] == 109400
    nothing = await client.place(symbol="ETH-USDT", side="SELL", type="MARKET", quantity="1", reduceOnly="true")
    assert nothing.body["code"] == 101290
    await client.place(symbol="ETH-USDT", side="BUY", type="MARKET", quantity="1")
    grow = await client.place(symbol="ETH-USDT", side="BUY", type="MARKET", quantity="1", reduceOnly="true")
    assert grow.body["code"] == 101290
    close = await client.place(symbol="ETH-USDT", side="SELL", type="MARKET", quantity="1", reduceOnly="true")
    assert close.data["order"]["status"] == "FILLED"


@pytest.mark.anyio
async def test_hedge_mode_rules(client: SimClient) -> None:
    dual = await client.call("POST", "/openApi/swap/v1/positionSide/dual", {"dualSidePosition": "true"})
    assert dual.data == {"dualSidePosition": "true"}
    both = await client.place(symbol="ETH-USDT", side="BUY", type="MARKET", quantity="1", positionSide="BOTH")
    assert both.body["code"] == 109400
    reduce = await client.place(
        symbol="ETH-USDT", side="BUY", type="MARKET", quantity="1", positionSide="LONG", reduceOnly="false"
    )
    assert reduce.body["code"] == 109400
    close_nothing = await client.place(symbol="ETH-USDT", side="SELL", type="MARKET", quantity="1", positionSide="LONG")
    assert close_nothing.body["code"] == 101205
    long = await client.place(symbol="ETH-USDT", side="BUY", type="MARKET", quantity="1", positionSide="LONG")
    short = await client.place(symbol="ETH-USDT", side="SELL", type="MARKET", quantity="2", positionSide="SHORT")
    assert long.data["order"]["status"] == short.data["order"]["status"] == "FILLED"
    positions = (await client.call("GET", "/openApi/swap/v2/user/positions", {"symbol": "ETH-USDT"})).data
    assert sorted((p["positionSide"], p["positionAmt"], p["onlyOnePosition"]) for p in positions) == [
        ("LONG", "1.00", False),
        ("SHORT", "2.00", False),
    ]


@pytest.mark.anyio
async def test_test_order_executes_nothing(client: SimClient) -> None:
    reply = await client.call(
        "POST",
        "/openApi/swap/v2/trade/order/test",
        {"symbol": "ETH-USDT", "side": "BUY", "type": "MARKET", "quantity": "1", "clientOrderID": "T1"},
    )
    assert reply.data["order"]["clientOrderID"] == "t1"
    assert client.sim.engine.state.orders == {}
    assert (await client.call("GET", "/openApi/swap/v2/user/positions")).data == []
    rejected = await client.call(
        "POST",
        "/openApi/swap/v2/trade/order/test",
        {"symbol": "ETH-USDT", "side": "BUY", "type": "MARKET", "quantity": "0.001"},
    )
    assert rejected.body["code"] == 101400


@pytest.mark.anyio
async def test_batch_place(client: SimClient) -> None:
    good = '{"symbol":"ETH-USDT","side":"BUY","type":"LIMIT","price":2000,"quantity":1,"clientOrderID":"B1"}'
    bad = '{"symbol":"ETH-USDT","side":"BUY","type":"LIMIT","price":2000,"quantity":0.001}'
    reply = await client.call("POST", "/openApi/swap/v2/trade/batchOrders", {"batchOrders": f"[{good},{bad}]"})
    orders = reply.data["orders"]
    assert [o["clientOrderId"] for o in orders] == ["b1"]
    all_bad = await client.call("POST", "/openApi/swap/v2/trade/batchOrders", {"batchOrders": f"[{bad}]"})
    assert all_bad.body["code"] == 80001
    assert "101400" in all_bad.body["msg"]
    six = "[" + ",".join([bad] * 6) + "]"
    assert (await client.call("POST", "/openApi/swap/v2/trade/batchOrders", {"batchOrders": six})).body["code"] == 80014
    not_json = await client.call("POST", "/openApi/swap/v2/trade/batchOrders", {"batchOrders": "[{"})
    assert not_json.body["code"] == 80014


@pytest.mark.anyio
async def test_unmodelled_features_are_refused_not_ignored(client: SimClient) -> None:
    tp = '{"type":"TAKE_PROFIT_MARKET","stopPrice":4000,"price":4000,"workingType":"MARK_PRICE"}'
    for extra in ({"takeProfit": tp}, {"stopPrice": "2500"}, {"closePosition": "true"}):
        reply = await client.place(symbol="ETH-USDT", side="BUY", type="MARKET", quantity="1", **extra)
        assert reply.body["code"] == 109400, extra
    assert client.sim.engine.state.orders == {}


@pytest.mark.anyio
async def test_open_order_limit() -> None:
    async with running(settings_for_tests(max_open_orders=2)) as client:
        for _ in range(2):
            await client.place(symbol="ETH-USDT", side="BUY", type="LIMIT", price="1000", quantity="1")
        third = await client.place(symbol="ETH-USDT", side="BUY", type="LIMIT", price="1000", quantity="1")
        assert third.body["code"] == 80013


@pytest.mark.anyio
async def test_json_body_is_refused(client: SimClient) -> None:
    query = client.signed_query({"symbol": "ETH-USDT", "side": "BUY", "type": "MARKET", "quantity": "1"})
    reply = await client.raw(
        "POST",
        "/openApi/swap/v2/trade/order",
        query=query,
        body='{"symbol": "ETH-USDT"}',
        headers={"X-BX-APIKEY": client.api_key, "Content-Type": "application/json"},
    )
    assert (reply.status, reply.body["code"]) == (200, 100400)
    assert client.sim.engine.state.orders == {}


@pytest.mark.anyio
async def test_hostile_numbers_are_refused_with_bingx_codes(client: SimClient) -> None:
    for quantity, price in (("1e30", "3000"), ("1", "1e999"), ("1", "NaN"), ("-1", "3000"), ("1", "Infinity")):
        reply = await client.place(symbol="ETH-USDT", side="BUY", type="LIMIT", price=price, quantity=quantity)
        assert (reply.status, reply.body["code"]) == (200, 80014), (quantity, price)
    assert client.sim.engine.state.orders == {}


@pytest.mark.anyio
async def test_reduce_only_left_without_a_position_expires_at_once(client: SimClient) -> None:
    await client.set_price("ETH-USDT", "3000")
    await client.place(symbol="ETH-USDT", side="BUY", type="MARKET", quantity="2")
    closing = await client.place(
        symbol="ETH-USDT", side="SELL", type="LIMIT", price="3010", quantity="2", reduceOnly="true"
    )
    # Another order halves the position while the reduce-only order rests.
    await client.place(symbol="ETH-USDT", side="SELL", type="MARKET", quantity="1")
    await client.set_price("ETH-USDT", "3020")
    order = (await client.call("GET", QUERY, {"symbol": "ETH-USDT", "orderId": closing.data["order"]["orderId"]})).data[
        "order"
    ]
    # It closed what was left and the rest lapsed: it neither rests nor opens a short.
    assert (order["status"], order["executedQty"]) == ("CANCELLED", "1.00")
    assert (await client.call("GET", "/openApi/swap/v2/trade/openOrders")).data["orders"] == []
    assert (await client.call("GET", "/openApi/swap/v2/user/positions")).data == []
