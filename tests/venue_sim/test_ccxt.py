"""A third-party BingX client — ccxt's ``bingx`` — runs against the simulator unchanged but for its URLs.

ccxt signs, encodes and parses exactly as it does against BingX (docs/simulator-ccxt.md lists
every request it sends here and what the simulator answers). The scenario: load the markets,
set the leverage, buy BTC at market, rest a BTC limit order away from the price, query it,
list it, cancel it, query it again, rest an ETH limit sell that fills when the price is moved
through it, then read positions, balance and fills. Every figure is checked against what the
configured prices and fee rates imply.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import pytest
from ccxt.base.errors import AuthenticationError
from pydantic import SecretStr

from services.venue.sim.config import SimSettings
from tests.venue_sim.ccxt_helpers import bingx_client, dec, running_simulator, set_price

BTC = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"
INITIAL_BALANCE = Decimal(10_000)
MAKER = Decimal("0.0002")
TAKER = Decimal("0.0005")
BTC_PRICE = Decimal("60000.0")
ETH_PRICE = Decimal("3000.00")
DEFAULT_LEVERAGE = 5


def _money(value: Decimal) -> Decimal:
    """A margin figure as the simulator writes it: 4 places, half up."""
    return value.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)


def _fee(quantity: Decimal, price: Decimal, rate: Decimal) -> Decimal:
    """A fill's commission: notional times rate, to 8 places half up (BingX writes "-0.30000050")."""
    return (quantity * price * rate).quantize(Decimal("1e-8"), rounding=ROUND_HALF_UP)


def _settings() -> SimSettings:
    # Prices move only through the control API; one tick of half-spread either side of the price.
    return SimSettings(
        seed=7,
        initial_balance=INITIAL_BALANCE,
        maker_fee_rate=MAKER,
        taker_fee_rate=TAKER,
        slippage_bps=Decimal(0),
        half_spread_ticks=1,
        fill_fraction=Decimal(1),
        default_leverage=DEFAULT_LEVERAGE,
        tick_seconds=0.0,
    )


@pytest.mark.anyio
async def test_ccxt_bingx_trades_against_the_simulator() -> None:
    """[E25, L8, O6] a real client over real HTTP: MARKET and resting LIMIT orders, fills, cancel."""
    settings = _settings()
    async with running_simulator(settings) as base_url, bingx_client(base_url, settings) as exchange:
        # Every API base URL is the simulator's: nothing can reach an exchange.
        assert set(exchange.urls["api"].values()) == {f"{base_url}/openApi"}
        await set_price(base_url, "BTC-USDT", BTC_PRICE)
        await set_price(base_url, "ETH-USDT", ETH_PRICE)

        # load_markets: the USDT-M contracts; no spot symbols, no coin-M contracts, no wallet coins.
        markets = await exchange.load_markets()
        assert sorted(markets) == [BTC, ETH]
        btc_market = markets[BTC]
        assert (btc_market["id"], btc_market["type"], btc_market["settle"]) == ("BTC-USDT", "swap", "USDT")
        assert btc_market["linear"] is True
        assert btc_market["active"] is True
        assert dec(btc_market["precision"]["amount"]) == Decimal("0.0001")
        assert dec(btc_market["precision"]["price"]) == Decimal("0.1")
        assert dec(btc_market["limits"]["amount"]["min"]) == Decimal("0.0001")
        assert dec(btc_market["limits"]["cost"]["min"]) == Decimal(2)
        assert dec(markets[ETH]["precision"]["amount"]) == Decimal("0.01")

        # set_leverage: one-way mode, so side BOTH.
        leverage = await exchange.set_leverage(10, BTC, {"side": "BOTH"})
        assert leverage["code"] in (0, "0")
        assert int(leverage["data"]["leverage"]) == 10
        assert leverage["data"]["symbol"] == "BTC-USDT"

        # MARKET buy: a taker fill at the ask, one tick above the price.
        btc_ask = BTC_PRICE + Decimal("0.1")
        market_order = await exchange.create_order(BTC, "market", "buy", 0.01)
        assert market_order["id"]
        assert market_order["symbol"] == BTC
        assert (market_order["type"], market_order["side"]) == ("market", "buy")
        market_fill = await exchange.fetch_order(market_order["id"], BTC)
        assert market_fill["status"] == "closed"
        assert dec(market_fill["amount"]) == Decimal("0.01")
        assert dec(market_fill["filled"]) == Decimal("0.01")
        assert dec(market_fill["average"]) == btc_ask
        btc_fee = _fee(Decimal("0.01"), btc_ask, TAKER)
        assert dec(market_fill["fee"]["cost"]) == btc_fee
        assert market_fill["fee"]["currency"] == "USDT"

        # LIMIT buy well below the price: rests.
        resting = await exchange.create_order(BTC, "limit", "buy", 0.01, 55000)
        assert (resting["type"], resting["side"]) == ("limit", "buy")
        queried = await exchange.fetch_order(resting["id"], BTC)
        assert queried["id"] == resting["id"]
        assert queried["status"] == "open"
        assert dec(queried["price"]) == Decimal(55000)
        assert dec(queried["amount"]) == Decimal("0.01")
        assert dec(queried["filled"]) == 0
        open_orders = await exchange.fetch_open_orders(BTC)
        assert [order["id"] for order in open_orders] == [resting["id"]]
        assert open_orders[0]["status"] == "open"

        canceled = await exchange.cancel_order(resting["id"], BTC)
        assert canceled["id"] == resting["id"]
        assert canceled["status"] == "canceled"
        after_cancel = await exchange.fetch_order(resting["id"], BTC)
        assert after_cancel["status"] == "canceled"
        assert dec(after_cancel["filled"]) == 0
        assert await exchange.fetch_open_orders(BTC) == []

        # LIMIT sell above the price rests, then fills (maker, at its limit) when the price passes it.
        eth_limit = Decimal("3010.00")
        eth_sell = await exchange.create_order(ETH, "limit", "sell", 0.1, 3010)
        assert (await exchange.fetch_order(eth_sell["id"], ETH))["status"] == "open"
        eth_mark = Decimal("3020.00")
        await set_price(base_url, "ETH-USDT", eth_mark)
        eth_filled = await exchange.fetch_order(eth_sell["id"], ETH)
        assert eth_filled["status"] == "closed"
        assert dec(eth_filled["filled"]) == Decimal("0.1")
        assert dec(eth_filled["average"]) == eth_limit
        eth_fee = _fee(Decimal("0.1"), eth_limit, MAKER)
        assert dec(eth_filled["fee"]["cost"]) == eth_fee
        assert await exchange.fetch_open_orders(ETH) == []

        # Positions: long BTC from the market order, short ETH from the limit fill.
        positions = {position["symbol"]: position for position in await exchange.fetch_positions([BTC, ETH])}
        assert sorted(positions) == [BTC, ETH]
        btc_position = positions[BTC]
        assert btc_position["side"] == "long"
        assert dec(btc_position["contracts"]) == Decimal("0.01")
        assert dec(btc_position["entryPrice"]) == btc_ask
        assert dec(btc_position["leverage"]) == 10
        btc_unrealized = Decimal("0.01") * (BTC_PRICE - btc_ask)
        assert dec(btc_position["unrealizedPnl"]) == btc_unrealized
        eth_position = positions[ETH]
        assert eth_position["side"] == "short"
        assert dec(eth_position["contracts"]) == Decimal("0.1")
        assert dec(eth_position["entryPrice"]) == eth_limit
        eth_unrealized = Decimal("0.1") * (eth_limit - eth_mark)
        assert dec(eth_position["unrealizedPnl"]) == eth_unrealized

        # Balance: the wallet paid exactly the two fees; ccxt's total is free + used.
        balance = await exchange.fetch_balance()
        wallet = INITIAL_BALANCE - btc_fee - eth_fee
        usdt_info = next(item for item in balance["info"]["data"] if item["asset"] == "USDT")
        assert Decimal(usdt_info["balance"]) == wallet
        equity = wallet + btc_unrealized + eth_unrealized
        assert Decimal(usdt_info["equity"]) == equity
        # Margins go out to 4 places (BingX's format): used = entry notional / leverage per position,
        # nothing frozen (no open order), available = equity - used.
        margin = Decimal("0.01") * btc_ask / 10 + Decimal("0.1") * eth_limit / DEFAULT_LEVERAGE
        assert Decimal(usdt_info["freezedMargin"]) == 0
        free, used, total = (dec(balance["USDT"][key]) for key in ("free", "used", "total"))
        assert used == _money(margin)
        assert free == _money(equity - margin)
        assert total == free + used

        # Fills, with the fee each paid.
        btc_trades = await exchange.fetch_my_trades(BTC)
        assert len(btc_trades) == 1
        btc_trade = btc_trades[0]
        assert btc_trade["order"] == market_order["id"]
        assert btc_trade["side"] == "buy"
        assert (dec(btc_trade["amount"]), dec(btc_trade["price"])) == (Decimal("0.01"), btc_ask)
        # filledTm is UTC to the second: the fill time the order reports, truncated.
        assert btc_trade["timestamp"] == market_fill["lastTradeTimestamp"] // 1000 * 1000
        assert dec(btc_trade["fee"]["cost"]) == btc_fee
        assert btc_trade["fee"]["currency"] == "USDT"
        eth_trades = await exchange.fetch_my_trades(ETH)
        assert len(eth_trades) == 1
        eth_trade = eth_trades[0]
        assert eth_trade["order"] == eth_sell["id"]
        assert eth_trade["side"] == "sell"
        assert (dec(eth_trade["amount"]), dec(eth_trade["price"])) == (Decimal("0.1"), eth_limit)
        assert dec(eth_trade["fee"]["cost"]) == eth_fee


@pytest.mark.anyio
async def test_ccxt_with_a_wrong_secret_is_refused() -> None:
    # The wallet endpoint load_markets calls first is signed like every other private route.
    settings = _settings()
    wrong_secret = settings.model_copy(update={"secret_key": SecretStr("not-the-simulator-secret")})
    async with running_simulator(settings) as base_url, bingx_client(base_url, wrong_secret) as exchange:
        with pytest.raises(AuthenticationError, match="100001"):
            await exchange.load_markets()
