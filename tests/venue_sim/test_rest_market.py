"""Public market data over HTTP (API.md §5.22-5.23), prices moved through the control API."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.venue_sim.helpers import SimClient, running, settings_for_tests


@pytest.mark.anyio
async def test_contracts_carry_precision_and_minimums(client: SimClient) -> None:
    contracts = (await client.public("/openApi/swap/v2/quote/contracts")).data
    btc = next(c for c in contracts if c["symbol"] == "BTC-USDT")
    assert (btc["pricePrecision"], btc["quantityPrecision"]) == (1, 4)
    # JSON numbers here, as BingX sends them.
    assert (btc["tradeMinQuantity"], btc["tradeMinUSDT"]) == (Decimal("0.0001"), 2)
    assert (btc["takerFeeRate"], btc["makerFeeRate"]) == (Decimal("0.0005"), Decimal("0.0002"))
    assert (btc["apiStateOpen"], btc["apiStateClose"], btc["status"]) == ("true", "true", 1)
    one = (await client.public("/openApi/swap/v2/quote/contracts", {"symbol": "ETH-USDT"})).data
    assert [c["symbol"] for c in one] == ["ETH-USDT"]
    assert (await client.public("/openApi/swap/v2/quote/contracts", {"symbol": "X-USDT"})).body["code"] == 109425


@pytest.mark.anyio
async def test_prices_tickers_and_premium_index(client: SimClient) -> None:
    await client.set_price("BTC-USDT", "61234.5")
    price = (await client.public("/openApi/swap/v1/ticker/price", {"symbol": "BTC-USDT"})).data
    assert (price["symbol"], price["price"], price["time"]) == ("BTC-USDT", "61234.5", client.clock.now_ms())
    both = (await client.public("/openApi/swap/v2/quote/price")).data
    assert {p["symbol"] for p in both} == {"BTC-USDT", "ETH-USDT"}
    ticker = (await client.public("/openApi/swap/v2/quote/ticker", {"symbol": "BTC-USDT"})).data
    assert (ticker["lastPrice"], ticker["bidPrice"], ticker["askPrice"]) == ("61234.5", "61234.4", "61234.6")
    premium = (await client.public("/openApi/swap/v2/quote/premiumIndex", {"symbol": "BTC-USDT"})).data
    assert premium["markPrice"] == "61234.5"
    assert premium["nextFundingTime"] > client.clock.now_ms()
    book = (await client.public("/openApi/swap/v2/quote/bookTicker", {"symbol": "BTC-USDT"})).data["book_ticker"]
    assert (book["bid_price"], book["ask_price"]) == (Decimal("61234.4"), Decimal("61234.6"))
    assert (await client.public("/openApi/swap/v2/quote/fundingRate", {"symbol": "BTC-USDT"})).data == []
    interest = (await client.public("/openApi/swap/v2/quote/openInterest", {"symbol": "BTC-USDT"})).data
    assert interest["openInterest"] == "0"


@pytest.mark.anyio
async def test_depth_levels(client: SimClient) -> None:
    await client.set_price("ETH-USDT", "3000")
    depth = (await client.public("/openApi/swap/v2/quote/depth", {"symbol": "ETH-USDT", "limit": 5})).data
    assert [level[0] for level in depth["bids"]] == ["2999.99", "2999.98", "2999.97", "2999.96", "2999.95"]
    # Asks highest first, as BingX lists them.
    assert [level[0] for level in depth["asks"]][-1] == "3000.01"
    assert (await client.public("/openApi/swap/v2/quote/depth", {"symbol": "ETH-USDT", "limit": 7})).body[
        "code"
    ] == 80014


@pytest.mark.anyio
async def test_seeded_walk_is_reproducible_and_moves_in_ticks(client: SimClient) -> None:
    before = Decimal((await client.public("/openApi/swap/v1/ticker/price", {"symbol": "ETH-USDT"})).data["price"])
    moved = await client.control("advance", {"ticks": 50, "symbols": ["ETH-USDT"]})
    after = Decimal(moved["prices"]["ETH-USDT"])
    assert after != before
    assert after == after.quantize(Decimal("0.01"))
    # The same seed walks the same path.
    walked_prices = []
    for _ in range(2):
        async with running(settings_for_tests(seed=7)) as other:
            walked = await other.control("advance", {"ticks": 50, "symbols": ["ETH-USDT"]})
            walked_prices.append(walked["prices"]["ETH-USDT"])
    assert walked_prices == [moved["prices"]["ETH-USDT"]] * 2


@pytest.mark.anyio
async def test_trades_and_klines(client: SimClient) -> None:
    await client.set_price("ETH-USDT", "3000")
    await client.place(symbol="ETH-USDT", side="BUY", type="MARKET", quantity="2")
    trades = (await client.public("/openApi/swap/v2/quote/trades", {"symbol": "ETH-USDT"})).data
    assert [(t["price"], t["qty"], t["isBuyerMaker"]) for t in trades] == [("3000.01", "2.00", False)]
    client.clock.advance(60_000)
    await client.set_price("ETH-USDT", "3050")
    await client.set_price("ETH-USDT", "2990")
    candles = (await client.public("/openApi/swap/v3/quote/klines", {"symbol": "ETH-USDT", "interval": "1m"})).data
    assert [(c["open"], c["high"], c["low"], c["close"], c["volume"]) for c in candles][-1] == (
        "3050.00",
        "3050.00",
        "2990.00",
        "2990.00",
        "0",
    )
    assert candles[0]["volume"] == "2.00"
    hourly = (await client.public("/openApi/swap/v3/quote/klines", {"symbol": "ETH-USDT", "interval": "1h"})).data
    assert len(hourly) == 1
    assert hourly[0]["high"] == "3050.00"
    # The older v2 path answers the same list.
    v2 = (await client.public("/openApi/swap/v2/quote/klines", {"symbol": "ETH-USDT", "interval": "1h"})).data
    assert v2 == hourly
    bad_limit = await client.public(
        "/openApi/swap/v3/quote/klines", {"symbol": "ETH-USDT", "interval": "1m", "limit": 0}
    )
    assert bad_limit.body["code"] == 80014
    bad = await client.public("/openApi/swap/v3/quote/klines", {"symbol": "ETH-USDT", "interval": "7m"})
    assert bad.body["code"] == 80014


@pytest.mark.anyio
async def test_server_time_and_unknown_routes(client: SimClient) -> None:
    assert (await client.public("/openApi/swap/v2/server/time")).data["serverTime"] == client.clock.now_ms()
    assert (await client.public("/openApi/swap/v9/nothing")).status == 404
