"""How the simulator's state looks on BingX's wire (REST objects, API.md §5)."""

from __future__ import annotations

import datetime as dt
import zlib
from decimal import ROUND_HALF_UP, Decimal

from services.venue.sim.orders import ZERO, Fill, Income, Order, Position
from services.venue.sim.state import State
from services.venue.sim.wire import dec

__all__ = [
    "REST_STATUS",
    "avg_price_text",
    "balance_view",
    "entry_price_text",
    "fill_view",
    "history_view",
    "income_view",
    "order_view",
    "place_view",
    "position_view",
    "wire_position_side",
]

REST_STATUS = {
    "NEW": "PENDING",
    "PARTIALLY_FILLED": "PARTIALLY_FILLED",
    "FILLED": "FILLED",
    "CANCELED": "CANCELLED",
    # REST never spells EXPIRED in the captures API.md cites; an IOC/FOK remainder reads as cancelled.
    "EXPIRED": "CANCELLED",
}
_MONEY = Decimal("1e-4")
_UID = "100000001"
# Stable per (symbol, side) so a position keeps its id across queries and restarts.
_POSITION_IDS = 1_800_000_000_000_000_000


def _money(value: Decimal) -> str:
    return dec(value.quantize(_MONEY, rounding=ROUND_HALF_UP))


def avg_price_text(order: Order, precision: int) -> str:
    """The average fill price: at least the tick's decimals, up to two more ("0.0" before any fill)."""
    if not order.executed:
        return "0.0"
    tick = Decimal(1).scaleb(-precision)
    value = order.avg_price.quantize(tick / 100, rounding=ROUND_HALF_UP).normalize()
    if value.as_tuple().exponent > -precision:  # type: ignore[operator]  # finite: an int exponent
        value = value.quantize(tick)
    return dec(value)


def order_view(order: Order, state: State) -> dict[str, object]:
    """The order object of query/cancel/open/history answers (§5.1)."""
    spec = state.specs[order.symbol]
    price = order.price if order.price is not None else ZERO
    return {
        "symbol": order.symbol,
        "orderId": order.order_id,
        "side": order.side,
        "positionSide": order.position_side,
        "type": order.type,
        "origQty": dec(order.quantity),
        "price": dec(price),
        "executedQty": dec(order.executed.quantize(spec.step)),
        "avgPrice": avg_price_text(order, spec.price_precision),
        # BingX rounds cumQuote to an integer (API.md §10.7).
        "cumQuote": dec(order.cum_quote.quantize(Decimal(1), rounding=ROUND_HALF_UP)),
        "stopPrice": "",
        "profit": _money(order.profit),
        "commission": dec(order.commission),
        "status": REST_STATUS[order.status],
        "time": order.time,
        "updateTime": order.update_time,
        "clientOrderId": order.client_id,
        "leverage": f"{order.leverage}X",
        "takeProfit": {"type": "", "quantity": 0, "stopPrice": 0, "price": 0, "workingType": ""},
        "stopLoss": {"type": "", "quantity": 0, "stopPrice": 0, "price": 0, "workingType": ""},
        "advanceAttr": 0,
        "positionID": 0,
        "takeProfitEntrustPrice": 0,
        "stopLossEntrustPrice": 0,
        "orderType": "",
        "workingType": "MARK_PRICE",
        "onlyOnePosition": order.one_way,
        "reduceOnly": order.reduce_only,
        "postOnly": order.time_in_force == "PostOnly",
        "stopGuaranteed": "false",
        "triggerOrderId": 0,
        "timeInForce": order.time_in_force,
    }


def place_view(order: Order, state: State) -> dict[str, object]:
    """The place-order answer: the request echoed (numbers as numbers) plus the fill state (§5.2)."""
    spec = state.specs[order.symbol]
    return {
        "orderId": order.order_id,
        "symbol": order.symbol,
        "positionSide": order.position_side,
        "side": order.side,
        "type": order.type,
        "price": order.price if order.price is not None else 0,
        "quantity": order.quantity,
        "stopPrice": 0,
        "workingType": "MARK_PRICE",
        "clientOrderID": order.client_id,
        "clientOrderId": order.client_id,
        "timeInForce": order.time_in_force,
        "priceRate": 0,
        "stopLoss": "",
        "takeProfit": "",
        "reduceOnly": order.reduce_only,
        "activationPrice": 0,
        "closePosition": "",
        "stopGuaranteed": "",
        "status": REST_STATUS[order.status],
        "avgPrice": avg_price_text(order, spec.price_precision),
        "executedQty": dec(order.executed.quantize(spec.step)),
    }


def entry_price_text(pos: Position, price_precision: int) -> str:
    """A position's entry price: the tick's decimals plus two, as REST and the stream both write it."""
    entry = pos.entry_price().quantize(Decimal(1).scaleb(-price_precision - 2), rounding=ROUND_HALF_UP)
    return dec(entry.normalize())


def wire_position_side(pos: Position) -> str:
    """One-way positions are reported LONG or SHORT by direction, sizes positive (UNCONFIRMED, docs/simulator.md)."""
    if pos.side != "BOTH":
        return pos.side
    return "LONG" if pos.amount >= 0 else "SHORT"


def position_view(pos: Position, state: State) -> dict[str, object]:
    mark = state.book.prices[pos.symbol]
    account = state.account
    margin = account.position_margin(pos)
    unrealized = pos.unrealized(mark)
    spec = state.specs[pos.symbol]
    return {
        "positionId": str(_POSITION_IDS + zlib.crc32(f"{pos.symbol}:{pos.side}".encode())),
        "symbol": pos.symbol,
        "currency": "USDT",
        "positionAmt": dec(abs(pos.amount)),
        "availableAmt": dec(abs(pos.amount)),
        "positionSide": wire_position_side(pos),
        "isolated": account.margin_type.get(pos.symbol, "CROSSED") == "ISOLATED",
        "avgPrice": entry_price_text(pos, spec.price_precision),
        "initialMargin": _money(margin),
        "margin": _money(margin),
        "leverage": account.position_leverage(pos),
        "unrealizedProfit": _money(unrealized),
        "realisedProfit": _money(pos.realised),
        "liquidationPrice": 0,
        "pnlRatio": _money(unrealized / margin) if margin else "0",
        "maxMarginReduction": "0.0000",
        "riskRate": "0.0000",
        "markPrice": dec(mark),
        "positionValue": _money(abs(pos.amount) * mark),
        "onlyOnePosition": pos.side == "BOTH",
        "updateTime": pos.update_time,
    }


def balance_view(state: State) -> dict[str, object]:
    account = state.account
    marks = state.marks()
    unrealized = account.unrealized(marks)
    used = account.used_margin()
    frozen = state.frozen_margin()
    realised = sum((pos.realised for pos in account.positions.values()), ZERO)
    return {
        "userId": _UID,
        "asset": "USDT",
        "balance": dec(account.wallet),
        "equity": dec(account.wallet + unrealized),
        "unrealizedProfit": dec(unrealized),
        "realisedProfit": dec(realised),
        "availableMargin": _money(max(state.available_margin(), ZERO)),
        "usedMargin": _money(used),
        "freezedMargin": _money(frozen),
        "shortUid": _UID,
    }


def _iso(ms: int, *, zone: str) -> str:
    moment = dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)
    if zone == "Z":
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    # BingX labels the same wall-clock digits +0800 (API.md §4); kept for fidelity.
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}+0800"


def fill_view(fill: Fill) -> dict[str, object]:
    """An ``allFillOrders`` entry (§5.12), quantities in coin.

    The captured fields plus those of the docs' table (side, type, positionSide, workingType); no
    trade id or maker role, which BingX gives only in ``fillHistory``.
    """
    return {
        "filledTm": _iso(fill.time, zone="Z"),
        "volume": dec(fill.quantity),
        "price": dec(fill.price),
        "amount": dec(fill.quote),
        "commission": dec(fill.commission),
        "currency": "USDT",
        "orderId": str(fill.order_id),
        "liquidatedPrice": "",
        "liquidatedMarginRatio": "",
        "filledTime": _iso(fill.time, zone="+0800"),
        "clientOrderID": fill.client_id,
        "symbol": fill.symbol,
        "side": fill.side,
        "positionSide": fill.position_side,
        "type": fill.order_type,
        "workingType": "MARK_PRICE",
        "onlyOnePosition": fill.one_way,
    }


def history_view(fill: Fill) -> dict[str, object]:
    """A ``fillHistory`` entry: trade id and role, side and position side in lower case (§5.12)."""
    return {
        "filledTm": _iso(fill.time, zone="Z"),
        "volume": dec(fill.quantity),
        "price": dec(fill.price),
        "qty": dec(fill.quantity),
        "quoteQty": dec(fill.quote),
        "commission": dec(fill.commission),
        "commissionAsset": "USDT",
        "orderId": str(fill.order_id),
        "tradeId": str(fill.trade_id),
        "filledTime": _iso(fill.time, zone="+0800"),
        "symbol": fill.symbol,
        "role": "maker" if fill.maker else "taker",
        "side": fill.side.lower(),
        "positionSide": fill.position_side.lower(),
    }


def income_view(income: Income) -> dict[str, object]:
    return {
        "symbol": income.symbol,
        "incomeType": income.income_type,
        "income": dec(income.amount),
        "asset": "USDT",
        "info": income.info,
        "time": income.time,
        "tranId": str(income.tran_id),
        "tradeId": str(income.trade_id) if income.trade_id is not None else "",
    }
