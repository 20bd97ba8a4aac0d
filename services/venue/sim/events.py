"""WebSocket payloads as BingX writes them (API.md §6.3-6.5 user stream, §7 market data)."""

from __future__ import annotations

from decimal import Decimal

from services.venue.sim.prices import Quote
from services.venue.sim.state import AccountEvent, ConfigEvent, OrderEvent, PublicTrade, State
from services.venue.sim.views import avg_price_text, entry_price_text, wire_position_side
from services.venue.sim.wire import dec, dumps

__all__ = [
    "account_config_update",
    "account_update",
    "book_ticker_frame",
    "last_price_frame",
    "mark_price_frame",
    "order_trade_update",
    "trade_frame",
]

# The WebSocket spells the order states the other way from REST (§8.1): NEW, CANCELED.
WS_STATUS = {
    "NEW": "NEW",
    "PARTIALLY_FILLED": "PARTIALLY_FILLED",
    "FILLED": "FILLED",
    "CANCELED": "CANCELED",
    "EXPIRED": "EXPIRED",
}
# The synthetic size quoted at the best bid and ask.
BOOK_QTY = "10"


def order_trade_update(event: OrderEvent, state: State) -> str:
    order = event.order
    price = order.price if order.price is not None else event.last_price or state.book.prices[order.symbol]
    payload = {
        "e": "ORDER_TRADE_UPDATE",
        "E": event.time,
        "T": order.update_time,
        "o": {
            "s": order.symbol,
            "c": order.client_id,
            "i": order.order_id,
            "S": order.side,
            "o": order.type,
            "q": dec(order.quantity),
            "p": dec(price),
            "sp": "0",
            "ap": avg_price_text(order, state.specs[order.symbol].price_precision),
            "x": event.execution,
            "X": WS_STATUS[order.status],
            "N": "USDT",
            "n": dec(event.commission),
            "T": event.time if event.execution == "TRADE" else 0,
            "wt": "MARK_PRICE",
            "ps": order.position_side,
            "rp": dec(event.realized_pnl),
            "z": dec(order.executed),
            "l": dec(event.last_qty),
            "L": dec(event.last_price),
            "ro": order.reduce_only,
            "sg": "false",
        },
    }
    return dumps(payload)


def account_update(event: AccountEvent, state: State) -> str:
    account = state.account
    positions = []
    for pos in event.positions:
        mark = state.book.prices[pos.symbol]
        isolated = account.margin_type.get(pos.symbol, "CROSSED") == "ISOLATED"
        positions.append(
            {
                "s": pos.symbol,
                "pa": dec(abs(pos.amount)),
                "ep": entry_price_text(pos, state.specs[pos.symbol].price_precision) if pos.amount else "0",
                "up": dec(pos.unrealized(mark)),
                "mt": "isolated" if isolated else "cross",
                "iw": dec(account.position_margin(pos)) if isolated and pos.amount else "0",
                "ps": wire_position_side(pos),
                "cr": dec(pos.realised),
            }
        )
    payload = {
        "e": "ACCOUNT_UPDATE",
        "E": event.time,
        "T": event.time,
        "a": {
            "m": event.reason,
            "B": [{"a": "USDT", "wb": dec(event.wallet), "cw": dec(event.wallet), "bc": dec(event.change)}],
            "P": positions,
        },
    }
    return dumps(payload)


def account_config_update(event: ConfigEvent) -> str:
    mode = "isolated" if event.margin_type == "ISOLATED" else "cross"
    return dumps(
        {
            "e": "ACCOUNT_CONFIG_UPDATE",
            "E": event.time,
            "ac": {"s": event.symbol, "l": event.long_leverage, "S": event.short_leverage, "mt": mode},
        }
    )


def trade_frame(trade: PublicTrade) -> str:
    item = {
        "q": dec(trade.quantity),
        "p": dec(trade.price),
        "T": trade.time,
        "m": trade.buyer_maker,
        "s": trade.symbol,
    }
    return dumps({"code": 0, "dataType": f"{trade.symbol}@trade", "data": [item]})


def mark_price_frame(symbol: str, price: Decimal, now: int) -> str:
    data = {"e": "markPriceUpdate", "E": now, "s": symbol, "p": dec(price)}
    return dumps({"code": 0, "dataType": f"{symbol}@markPrice", "data": data})


def last_price_frame(symbol: str, price: Decimal, now: int) -> str:
    data = {"e": "lastPriceUpdate", "E": now, "s": symbol, "c": dec(price)}
    return dumps({"code": 0, "dataType": f"{symbol}@lastPrice", "data": data})


def book_ticker_frame(symbol: str, quote: Quote, now: int, seq: int) -> str:
    data = {
        "e": "bookTicker",
        "u": seq,
        "E": now,
        "T": now,
        "s": symbol,
        "b": dec(quote.bid),
        "B": BOOK_QTY,
        "a": dec(quote.ask),
        "A": BOOK_QTY,
    }
    return dumps({"code": 0, "dataType": f"{symbol}@bookTicker", "data": data})
