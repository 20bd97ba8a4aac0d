"""Public market-data endpoints (API.md §5.22-5.23) and server time."""

from __future__ import annotations

from decimal import Decimal

from services.venue.sim.config import SymbolSpec
from services.venue.sim.http import Call, Endpoint, Handler
from services.venue.sim.orders import ZERO
from services.venue.sim.prices import MINUTE_MS, Candle
from services.venue.sim.wire import ApiError, Code, dec

__all__ = ["ENDPOINTS"]

DAY_MS = 1440 * MINUTE_MS
FUNDING_PERIOD_MS = 8 * 3600 * 1000
INTERVALS_MIN = {
    "1m": 1, "3m": 3, "5m": 5, "15m": 15, "30m": 30, "1h": 60, "2h": 120, "4h": 240,
    "6h": 360, "8h": 480, "12h": 720, "1d": 1440, "3d": 4320, "1w": 10080,
}  # fmt: skip
DEPTH_LIMITS = (5, 10, 20, 50, 100, 500, 1000)
BOOK_QTY = Decimal(10)


def _specs(call: Call) -> list[SymbolSpec]:
    """The symbol asked for, or all of them when none is."""
    symbol = call.params.get("symbol")
    if symbol is None:
        return list(call.state.specs.values())
    return [call.state.spec(symbol)]


def _one_or_all(call: Call, items: list[dict[str, object]]) -> object:
    return items[0] if call.params.get("symbol") is not None else items


async def server_time(call: Call) -> object:
    return {"serverTime": call.sim.clock.now_ms()}


async def contracts(call: Call) -> object:
    settings = call.sim.settings
    return [
        {
            # Stable per symbol: its place in the configured list.
            "contractId": str(100 + list(call.state.specs).index(spec.symbol)),
            "symbol": spec.symbol,
            "size": "0",
            "quantityPrecision": spec.quantity_precision,
            "pricePrecision": spec.price_precision,
            "feeRate": settings.taker_fee_rate,
            "makerFeeRate": settings.maker_fee_rate,
            "takerFeeRate": settings.taker_fee_rate,
            "tradeMinLimit": 0,
            "tradeMinQuantity": spec.min_quantity,
            "tradeMinUSDT": spec.min_notional,
            "maxLongLeverage": spec.max_leverage,
            "maxShortLeverage": spec.max_leverage,
            "currency": "USDT",
            "asset": spec.asset,
            "status": 1,
            "apiStateOpen": "true",
            "apiStateClose": "true",
            "brokerState": "true",
            "launchTime": 1_586_275_200_000,
            "maintainTime": 0,
            "offTime": 0,
            "displayName": spec.symbol,
        }
        for spec in _specs(call)
    ]


async def price(call: Call) -> object:
    now = call.sim.clock.now_ms()
    items: list[dict[str, object]] = [
        {"symbol": spec.symbol, "price": dec(call.state.book.prices[spec.symbol]), "time": now} for spec in _specs(call)
    ]
    return _one_or_all(call, items)


def _day(call: Call, symbol: str) -> list[Candle]:
    now = call.sim.clock.now_ms()
    return [c for c in call.state.book.candles[symbol] if c.open_time > now - DAY_MS]


async def ticker(call: Call) -> object:
    now = call.sim.clock.now_ms()
    items: list[dict[str, object]] = []
    for spec in _specs(call):
        quote = call.state.book.quote(spec.symbol)
        day = _day(call, spec.symbol)
        open_price = day[0].open if day else quote.last
        change = quote.last - open_price
        volume = sum((c.volume for c in day), ZERO)
        items.append(
            {
                "symbol": spec.symbol,
                "priceChange": dec(change),
                "priceChangePercent": dec((change / open_price * 100).quantize(Decimal("0.01"))),
                "lastPrice": dec(quote.last),
                "lastQty": "0",
                "highPrice": dec(max((c.high for c in day), default=quote.last)),
                "lowPrice": dec(min((c.low for c in day), default=quote.last)),
                "volume": dec(volume),
                "quoteVolume": dec((volume * quote.last).quantize(Decimal("0.01"))),
                "openPrice": dec(open_price),
                "openTime": day[0].open_time if day else now,
                "closeTime": now,
                "askPrice": dec(quote.ask),
                "askQty": dec(BOOK_QTY),
                "bidPrice": dec(quote.bid),
                "bidQty": dec(BOOK_QTY),
            }
        )
    return _one_or_all(call, items)


async def depth(call: Call) -> object:
    spec = call.state.spec(call.params.require("symbol"))
    limit = call.params.bounded("limit", default=20, low=1, high=1000)
    if limit not in DEPTH_LIMITS:
        raise ApiError(Code.INVALID_PARAMETER, f"Invalid parameters, err:limit must be one of {DEPTH_LIMITS}")
    quote = call.state.book.quote(spec.symbol)
    bids = [[dec(quote.bid - i * spec.tick), dec(BOOK_QTY)] for i in range(limit) if quote.bid - i * spec.tick > 0]
    # BingX lists asks highest first (API.md §10.11).
    asks = [[dec(quote.ask + i * spec.tick), dec(BOOK_QTY)] for i in reversed(range(limit))]
    return {"T": call.sim.clock.now_ms(), "bids": bids, "asks": asks, "bidsCoin": bids, "asksCoin": asks}


async def book_ticker(call: Call) -> object:
    spec = call.state.spec(call.params.require("symbol"))
    quote = call.state.book.quote(spec.symbol)
    # Numbers, snake_case (§5.23).
    return {
        "book_ticker": {
            "symbol": spec.symbol,
            "bid_price": quote.bid,
            "bid_qty": BOOK_QTY,
            "ask_price": quote.ask,
            "ask_qty": BOOK_QTY,
        }
    }


async def trades(call: Call) -> object:
    spec = call.state.spec(call.params.require("symbol"))
    limit = call.params.bounded("limit", default=500, low=1, high=1000)
    recent = call.state.trades[spec.symbol][-limit:]
    return [
        {
            "time": t.time,
            "isBuyerMaker": t.buyer_maker,
            "price": dec(t.price),
            "qty": dec(t.quantity),
            "quoteQty": dec(t.price * t.quantity),
        }
        for t in reversed(recent)
    ]


def _next_funding(now: int) -> int:
    return now - now % FUNDING_PERIOD_MS + FUNDING_PERIOD_MS


async def premium_index(call: Call) -> object:
    now = call.sim.clock.now_ms()
    items: list[dict[str, object]] = [
        {
            "symbol": spec.symbol,
            "markPrice": dec(call.state.book.prices[spec.symbol]),
            "indexPrice": dec(call.state.book.prices[spec.symbol]),
            "lastFundingRate": "0.00000000",
            "nextFundingTime": _next_funding(now),
        }
        for spec in _specs(call)
    ]
    return _one_or_all(call, items)


async def funding_rate(call: Call) -> object:
    call.state.spec(call.params.require("symbol"))
    # Funding is not modelled: no history.
    return []


async def klines(call: Call) -> object:
    spec = call.state.spec(call.params.require("symbol"))
    interval = call.params.require("interval")
    minutes = INTERVALS_MIN.get(interval)
    if minutes is None:
        raise ApiError(Code.INVALID_PARAMETER, f"Invalid parameters, err:interval {interval} is not supported")
    size = minutes * MINUTE_MS
    start = call.params.integer("startTime") or 0
    end = call.params.integer("endTime") or call.sim.clock.now_ms()
    limit = call.params.bounded("limit", default=500, low=1, high=1440)
    buckets: dict[int, Candle] = {}
    for candle in call.state.book.candles[spec.symbol]:
        if not start <= candle.open_time <= end:
            continue
        key = candle.open_time - candle.open_time % size
        found = buckets.get(key)
        if found is None:
            buckets[key] = Candle(key, candle.open, candle.high, candle.low, candle.close, candle.volume)
        else:
            found.high = max(found.high, candle.high)
            found.low = min(found.low, candle.low)
            found.close = candle.close
            found.volume += candle.volume
    rows = sorted(buckets.values(), key=lambda c: c.open_time)[-limit:]
    return [
        {
            "open": dec(c.open),
            "close": dec(c.close),
            "high": dec(c.high),
            "low": dec(c.low),
            "volume": dec(c.volume),
            "time": c.open_time,
        }
        for c in rows
    ]


async def open_interest(call: Call) -> object:
    spec = call.state.spec(call.params.require("symbol"))
    held = sum((abs(p.amount) for p in call.state.account.open_positions() if p.symbol == spec.symbol), ZERO)
    return {"openInterest": dec(held), "symbol": spec.symbol, "time": call.sim.clock.now_ms()}


def _public(path: str, handler: Handler, group: int = 1) -> Endpoint:
    return Endpoint("GET", path, handler, signed=False, uid_per_second=None, group=group)


ENDPOINTS = [
    _public("/openApi/swap/v2/server/time", server_time, group=0),
    _public("/openApi/swap/v2/quote/contracts", contracts),
    _public("/openApi/swap/v1/ticker/price", price),
    _public("/openApi/swap/v2/quote/price", price),
    _public("/openApi/swap/v2/quote/ticker", ticker),
    _public("/openApi/swap/v2/quote/depth", depth),
    _public("/openApi/swap/v2/quote/bookTicker", book_ticker),
    _public("/openApi/swap/v2/quote/trades", trades),
    _public("/openApi/swap/v2/quote/premiumIndex", premium_index),
    _public("/openApi/swap/v2/quote/fundingRate", funding_rate),
    _public("/openApi/swap/v3/quote/klines", klines),
    _public("/openApi/swap/v2/quote/klines", klines),
    _public("/openApi/swap/v2/quote/openInterest", open_interest),
]
