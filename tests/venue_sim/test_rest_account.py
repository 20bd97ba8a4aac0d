"""Account endpoints over HTTP (API.md §5.13-5.19): positions, balance, income, leverage, modes."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.venue_sim.helpers import SimClient

LEVERAGE = "/openApi/swap/v2/trade/leverage"
MARGIN = "/openApi/swap/v2/trade/marginType"
DUAL = "/openApi/swap/v1/positionSide/dual"


@pytest.mark.anyio
async def test_position_and_balance_follow_the_mark(client: SimClient) -> None:
    await client.set_price("ETH-USDT", "3000")
    await client.place(symbol="ETH-USDT", side="SELL", type="MARKET", quantity="1")
    await client.set_price("ETH-USDT", "2900")
    (position,) = (await client.call("GET", "/openApi/swap/v2/user/positions")).data
    assert position["symbol"] == "ETH-USDT"
    assert (position["positionSide"], position["positionAmt"], position["avgPrice"]) == ("SHORT", "1.00", "2999.99")
    assert position["unrealizedProfit"] == "99.9900"
    assert position["markPrice"] == "2900.00"
    assert position["leverage"] == 5
    assert position["isolated"] is False
    assert position["onlyOnePosition"] is True
    assert isinstance(position["positionId"], str)
    v3 = (await client.call("GET", "/openApi/swap/v3/user/balance")).data
    assert isinstance(v3, list)
    (usdt,) = v3
    fee = Decimal("2999.99") * Decimal("0.0005")
    assert Decimal(usdt["balance"]) == Decimal(10_000) - fee.quantize(Decimal("1e-8"))
    assert Decimal(usdt["equity"]) == Decimal(usdt["balance"]) + Decimal("99.99")
    assert usdt["usedMargin"] == "599.9980"
    assert usdt["asset"] == "USDT"
    v2 = (await client.call("GET", "/openApi/swap/v2/user/balance")).data["balance"]
    assert v2 == usdt


@pytest.mark.anyio
async def test_income_records_fees_and_realized_pnl(client: SimClient) -> None:
    await client.set_price("ETH-USDT", "3000")
    await client.place(symbol="ETH-USDT", side="BUY", type="MARKET", quantity="1")
    await client.set_price("ETH-USDT", "3100")
    await client.place(symbol="ETH-USDT", side="SELL", type="MARKET", quantity="1")
    rows = (await client.call("GET", "/openApi/swap/v2/user/income")).data
    assert [(r["incomeType"], r["income"]) for r in rows] == [
        ("TRADING_FEE", "-1.50000500"),
        ("TRADING_FEE", "-1.54999500"),
        ("REALIZED_PNL", "99.9800"),
    ]
    fees = (await client.call("GET", "/openApi/swap/v2/user/income", {"incomeType": "TRADING_FEE"})).data
    assert len(fees) == 2
    balance = (await client.call("GET", "/openApi/swap/v2/user/balance")).data["balance"]
    assert Decimal(balance["balance"]) == Decimal(10_000) + sum(Decimal(r["income"]) for r in rows)


@pytest.mark.anyio
async def test_commission_rate_as_numbers(client: SimClient) -> None:
    reply = await client.call("GET", "/openApi/swap/v2/user/commissionRate")
    assert reply.data == {
        "commission": {"takerCommissionRate": Decimal("0.0005"), "makerCommissionRate": Decimal("0.0002")}
    }


@pytest.mark.anyio
async def test_leverage_get_set_and_limits(client: SimClient) -> None:
    got = (await client.call("GET", LEVERAGE, {"symbol": "BTC-USDT"})).data
    assert (got["longLeverage"], got["shortLeverage"], got["maxLongLeverage"]) == (5, 5, 125)
    set_reply = (await client.call("POST", LEVERAGE, {"symbol": "BTC-USDT", "side": "BOTH", "leverage": 20})).data
    assert (set_reply["leverage"], set_reply["symbol"]) == (20, "BTC-USDT")
    assert (await client.call("POST", LEVERAGE, {"symbol": "BTC-USDT", "side": "LONG", "leverage": 3})).body[
        "code"
    ] == 109400
    too_high = await client.call("POST", LEVERAGE, {"symbol": "BTC-USDT", "side": "BOTH", "leverage": 126})
    assert too_high.body["code"] == 101414
    assert (await client.call("POST", LEVERAGE, {"symbol": "NOPE-USDT", "side": "BOTH", "leverage": 2})).body[
        "code"
    ] == 109425
    assert (await client.call("POST", LEVERAGE, {"symbol": "BTC-USDT", "side": "BOTH", "leverage": "x"})).body[
        "code"
    ] == 80014
    await client.call("POST", DUAL, {"dualSidePosition": "true"})
    await client.call("POST", LEVERAGE, {"symbol": "BTC-USDT", "side": "SHORT", "leverage": 7})
    got = (await client.call("GET", LEVERAGE, {"symbol": "BTC-USDT"})).data
    assert (got["longLeverage"], got["shortLeverage"]) == (20, 7)
    # An order carries the leverage of its side; its margin follows it.
    await client.place(symbol="BTC-USDT", side="SELL", type="MARKET", quantity="0.01", positionSide="SHORT")
    (position,) = (await client.call("GET", "/openApi/swap/v2/user/positions")).data
    assert position["leverage"] == 7


@pytest.mark.anyio
async def test_margin_type_non_standard_envelope(client: SimClient) -> None:
    assert (await client.call("GET", MARGIN, {"symbol": "ETH-USDT"})).data["marginType"] == "CROSSED"
    reply = await client.call("POST", MARGIN, {"symbol": "ETH-USDT", "marginType": "ISOLATED"})
    assert reply.body == {"code": 0, "msg": ""}
    assert (await client.call("GET", MARGIN, {"symbol": "ETH-USDT"})).data == {
        "symbol": "ETH-USDT",
        "marginType": "ISOLATED",
    }
    bad = await client.call("POST", MARGIN, {"symbol": "ETH-USDT", "marginType": "WHATEVER"})
    assert bad.body["code"] == 80014
    await client.place(symbol="ETH-USDT", side="BUY", type="MARKET", quantity="1")
    blocked = await client.call("POST", MARGIN, {"symbol": "ETH-USDT", "marginType": "CROSSED"})
    assert blocked.body["code"] == 109400


@pytest.mark.anyio
async def test_position_mode_switch_needs_a_flat_account(client: SimClient) -> None:
    assert (await client.call("GET", DUAL)).data == {"dualSidePosition": "false"}
    await client.place(symbol="ETH-USDT", side="BUY", type="LIMIT", price="1000", quantity="1")
    blocked = await client.call("POST", DUAL, {"dualSidePosition": "true"})
    assert blocked.body["code"] == 109401
    await client.call("DELETE", "/openApi/swap/v2/trade/allOpenOrders")
    assert (await client.call("POST", DUAL, {"dualSidePosition": "true"})).data == {"dualSidePosition": "true"}
    assert (await client.call("GET", DUAL)).data == {"dualSidePosition": "true"}
    assert (await client.call("POST", DUAL, {"dualSidePosition": "yes"})).body["code"] == 80014
