"""Trade endpoints (API.md §5.2-5.12): place, test, batch, cancel, queries, fills."""

from __future__ import annotations

import json
import re
from decimal import Decimal

from services.venue.sim.http import Call, Endpoint
from services.venue.sim.orders import Order, Side
from services.venue.sim.requests import OrderRequest, parse_order
from services.venue.sim.signing import Params
from services.venue.sim.state import State
from services.venue.sim.views import fill_view, history_view, order_view, place_view
from services.venue.sim.wire import ApiError, Code

__all__ = ["ENDPOINTS"]

MAX_BATCH_PLACE = 5
MAX_BATCH_CANCEL = 10
SEVEN_DAYS_MS = 7 * 86_400_000
CANCEL_SPACING_MS = 1000
_ORDER_ID = re.compile(r"[0-9]{1,19}")


def _client_id(params: Params) -> str | None:
    value = params.first("clientOrderID", "clientOrderId", "origClientOrderId")
    return value.lower() if value is not None else None


async def place(call: Call) -> object:
    order = call.sim.engine.place(parse_order(call.params.values))
    return {"order": place_view(order, call.sim.engine.state)}


async def test_order(call: Call) -> object:
    engine = call.sim.engine
    return {"order": place_view(engine.draft(parse_order(call.params.values)), engine.state)}


def _json_list(params: Params, name: str) -> list[object]:
    raw = params.require(name)
    try:
        value = json.loads(raw, parse_float=Decimal)
    except json.JSONDecodeError as error:
        raise ApiError(Code.INVALID_PARAMETER, f"Invalid parameters, err:{name} is not valid JSON") from error
    if not isinstance(value, list):
        raise ApiError(Code.INVALID_PARAMETER, f"Invalid parameters, err:{name} must be a JSON array")
    return value


async def batch_place(call: Call) -> object:
    items = _json_list(call.params, "batchOrders")
    if not items or len(items) > MAX_BATCH_PLACE:
        raise ApiError(
            Code.INVALID_PARAMETER, f"Invalid parameters, err:batchOrders must hold 1-{MAX_BATCH_PLACE} orders"
        )
    placed: list[object] = []
    errors: list[str] = []
    for item in items:
        if not isinstance(item, dict):
            errors.append("each batch order must be a JSON object")
            continue
        try:
            order = call.sim.engine.place(parse_order(item))
        except ApiError as error:
            errors.append(f"{error.code}: {error.msg}")
            continue
        placed.append(place_view(order, call.sim.engine.state))
    if not placed:
        raise ApiError(Code.REQUEST_FAILED, "; ".join(errors))
    # Partial success: code 0 with the placed orders only (shape UNCONFIRMED, docs/simulator.md).
    return {"orders": placed}


def _spacing(call: Call, symbol: str, order_id: int | None, client_id: str | None) -> None:
    """BingX takes one cancel per order id / client id per second (109201)."""
    now = call.sim.clock.now_ms()
    key = f"{symbol}|{order_id}|{client_id}"
    last = call.sim.cancel_attempts.get(key)
    call.sim.cancel_attempts[key] = now
    if last is not None and now - last < CANCEL_SPACING_MS:
        raise ApiError(Code.CANCEL_REPEATED, "the same order can only be cancelled once per second")


async def cancel(call: Call) -> object:
    symbol = call.params.require("symbol")
    order_id = call.params.integer("orderId")
    client_id = _client_id(call.params)
    _spacing(call, symbol, order_id, client_id)
    race = call.sim.faults.fires("cancel_fill_race")
    order = call.sim.engine.cancel(symbol, order_id, client_id, race=race)
    return {"order": order_view(order, call.sim.engine.state)}


def _failed(order_id: int | None, client_id: str, error: ApiError) -> dict[str, object]:
    return {"orderId": order_id or 0, "clientOrderId": client_id, "errorCode": error.code, "errorMessage": error.msg}


def _cancel_one(call: Call, symbol: str, order_id: object, client_id: object) -> dict[str, object]:
    """One batch-cancel item: the cancelled order, or its ``failed`` entry."""
    text = str(order_id) if isinstance(order_id, int | str) and not isinstance(order_id, bool) else ""
    number = int(text) if _ORDER_ID.fullmatch(text) else None
    client = str(client_id).lower() if client_id is not None else None
    if number is None and client is None:
        error = ApiError(Code.INVALID_PARAMETER, f"Invalid parameters, err:bad order id {order_id!r}")
        return {"failed": _failed(None, "", error)}
    try:
        return order_view(call.sim.engine.cancel(symbol, number, client), call.sim.engine.state)
    except ApiError as error:
        return {"failed": _failed(number, client or "", error)}


async def batch_cancel(call: Call) -> object:
    symbol = call.params.require("symbol")
    call.state.spec(symbol)
    targets: list[tuple[object, object]]
    if call.params.get("orderIdList") is not None:
        targets = [(item, None) for item in _json_list(call.params, "orderIdList")]
    else:
        name = next((n for n in ("clientOrderIDList", "clientOrderIdList") if call.params.get(n) is not None), None)
        if name is None:
            raise ApiError(Code.INVALID_PARAMETER, "orderIdList & clientOrderIDList are both empty")
        targets = [(None, item) for item in _json_list(call.params, name)]
    if len(targets) > MAX_BATCH_CANCEL:
        raise ApiError(Code.INVALID_PARAMETER, f"Invalid parameters, err:at most {MAX_BATCH_CANCEL} orders per batch")
    results = [_cancel_one(call, symbol, order_id, client_id) for order_id, client_id in targets]
    success = [r for r in results if "failed" not in r]
    failed = [r["failed"] for r in results if "failed" in r]
    return {"success": success, "failed": failed or None}


async def cancel_all(call: Call) -> object:
    state = call.sim.engine.state
    orders = call.sim.engine.cancel_all(call.params.get("symbol"))
    return {"success": [order_view(order, state) for order in orders], "failed": None}


def _lookup(call: Call) -> Order:
    symbol = call.params.require("symbol")
    call.state.spec(symbol)
    return call.state.find(symbol, call.params.integer("orderId"), _client_id(call.params))


async def query_order(call: Call) -> object:
    order = _lookup(call)
    if not order.is_open and call.sim.faults.fires("query_miss"):
        # BingX has answered "order not exist" for finished orders; clients fall back to allOrders.
        raise ApiError(Code.ORDER_NOT_FOUND, "order not exist")
    return {"order": order_view(order, call.state)}


async def query_open_order(call: Call) -> object:
    order = _lookup(call)
    if not order.is_open:
        raise ApiError(Code.ORDER_NOT_FOUND, "order not exist")
    return {"order": order_view(order, call.state)}


def _symbol_filter(call: Call) -> str | None:
    symbol = call.params.get("symbol")
    if symbol is not None:
        call.state.spec(symbol)
    return symbol


async def open_orders(call: Call) -> object:
    orders = call.state.open_orders(_symbol_filter(call))
    return {"orders": [order_view(o, call.state) for o in sorted(orders, key=lambda o: o.order_id)]}


def _history(call: Call, state: State, *, finished_only: bool) -> list[object]:
    symbol = _symbol_filter(call)
    now = call.sim.clock.now_ms()
    end = call.params.integer("endTime") or now
    start = call.params.integer("startTime") or end - SEVEN_DAYS_MS
    if end - start > SEVEN_DAYS_MS:
        raise ApiError(Code.INVALID_PARAMETER, "Invalid parameters, err:the query range is more than seven days")
    after = call.params.integer("orderId") or 0
    limit = call.params.bounded("limit", default=500, low=1, high=1000)
    chosen = [
        o
        for o in state.orders.values()
        if (symbol is None or o.symbol == symbol)
        and start <= o.time <= end
        and o.order_id >= after
        and (not finished_only or not o.is_open)
    ]
    chosen.sort(key=lambda o: o.order_id)
    return [order_view(o, state) for o in chosen[:limit]]


async def all_orders(call: Call) -> object:
    return {"orders": _history(call, call.state, finished_only=True)}


async def full_order(call: Call) -> object:
    return {"orders": _history(call, call.state, finished_only=False)}


async def all_fill_orders(call: Call) -> object:
    symbol = _symbol_filter(call)
    order_id = call.params.integer("orderId")
    unit = call.params.get("tradingUnit") or "COIN"
    if unit not in {"COIN", "CONT"}:
        raise ApiError(Code.INVALID_PARAMETER, "Invalid parameters, err:tradingUnit must be COIN or CONT")
    end = call.params.integer("endTs") or call.sim.clock.now_ms()
    start = call.params.integer("startTs") or 0
    fills = [
        fill_view(f)
        for f in call.state.fills
        if (symbol is None or f.symbol == symbol)
        and (order_id is None or f.order_id == order_id)
        and start <= f.time <= end
    ]
    return {"fill_orders": fills}


async def fill_history(call: Call) -> object:
    """``fillHistory``: paged fills with trade ids and roles, oldest first (§5.12)."""
    symbol = _symbol_filter(call)
    order_id = call.params.integer("orderId")
    after = call.params.integer("lastFillId") or 0
    page = call.params.bounded("pageIndex", default=1, low=1, high=1_000_000)
    size = call.params.bounded("pageSize", default=50, low=1, high=1000)
    end = call.params.integer("endTs") or call.sim.clock.now_ms()
    start = call.params.integer("startTs") or end - SEVEN_DAYS_MS
    if end - start > SEVEN_DAYS_MS:
        raise ApiError(Code.INVALID_PARAMETER, "Invalid parameters, err:the query range is more than seven days")
    chosen = [
        f
        for f in call.state.fills
        if (symbol is None or f.symbol == symbol)
        and (order_id is None or f.order_id == order_id)
        and f.trade_id > after
        and start < f.time <= end
    ]
    return {
        "fill_history_orders": [history_view(f) for f in chosen[(page - 1) * size : page * size]],
        "total": len(chosen),
    }


async def cancel_all_after(call: Call) -> object:
    """Dead-man switch: ACTIVATE (re)arms a cancel of every open order ``timeOut`` s from now; CLOSE disarms."""
    kind = call.params.require("type")
    sim = call.sim
    if kind == "CLOSE":
        sim.cancel_deadline = None
        return {"triggerTime": 0, "status": "CLOSED", "note": "cancelAllAfter is closed"}
    if kind != "ACTIVATE":
        raise ApiError(Code.INVALID_PARAMETER, "Invalid parameters, err:type must be ACTIVATE or CLOSE")
    timeout = call.params.integer("timeOut")
    if timeout is None or not 10 <= timeout <= 120:
        raise ApiError(Code.INVALID_PARAMETER, "Invalid parameters, err:timeOut must be 10-120 seconds")
    sim.cancel_deadline = sim.clock.now_ms() + timeout * 1000
    # triggerTime is in seconds (§4).
    return {"triggerTime": sim.cancel_deadline // 1000, "status": "ACTIVATED", "note": ""}


async def close_all_positions(call: Call) -> object:
    """Market-close every position (of ``symbol`` when given); ids of the closing orders."""
    symbol = call.params.get("symbol")
    state = call.sim.engine.state
    if symbol is not None:
        state.spec(symbol)
    success: list[int] = []
    failed: list[object] = []
    for pos in [p for p in state.account.open_positions() if symbol is None or p.symbol == symbol]:
        closing_side: Side = "SELL" if pos.amount > 0 else "BUY"
        request = OrderRequest(
            symbol=pos.symbol,
            side=closing_side,
            type="MARKET",
            quantity=abs(pos.amount),
            price=None,
            position_side=None if pos.side == "BOTH" else pos.side,
            time_in_force="GTC",
            reduce_only=True if pos.side == "BOTH" else None,
            client_id="",
            working_type="MARK_PRICE",
        )
        try:
            success.append(call.sim.engine.place(request).order_id)
        except ApiError as error:
            failed.append({"symbol": pos.symbol, "errorCode": error.code, "errorMessage": error.msg})
    return {"success": success, "failed": failed or None}


ENDPOINTS = [
    Endpoint("POST", "/openApi/swap/v2/trade/order", place, group=3, executes=True),
    Endpoint("POST", "/openApi/swap/v2/trade/order/test", test_order, group=2),
    Endpoint("POST", "/openApi/swap/v2/trade/batchOrders", batch_place, group=3, executes=True),
    Endpoint("DELETE", "/openApi/swap/v2/trade/order", cancel, group=3, executes=True),
    Endpoint("DELETE", "/openApi/swap/v2/trade/batchOrders", batch_cancel, group=3, executes=True),
    Endpoint("DELETE", "/openApi/swap/v2/trade/allOpenOrders", cancel_all, group=2, executes=True),
    Endpoint("POST", "/openApi/swap/v2/trade/cancelAllAfter", cancel_all_after, uid_per_second=2, group=2),
    Endpoint("POST", "/openApi/swap/v2/trade/closeAllPositions", close_all_positions, group=2, executes=True),
    Endpoint("GET", "/openApi/swap/v2/trade/order", query_order, group=2, reads=True),
    Endpoint("GET", "/openApi/swap/v2/trade/openOrder", query_open_order, group=2, reads=True),
    Endpoint("GET", "/openApi/swap/v2/trade/openOrders", open_orders, group=3, reads=True),
    Endpoint("GET", "/openApi/swap/v2/trade/allOrders", all_orders, group=3, reads=True),
    Endpoint("GET", "/openApi/swap/v1/trade/fullOrder", full_order, group=2, reads=True),
    Endpoint("GET", "/openApi/swap/v2/trade/allFillOrders", all_fill_orders, group=2, reads=True),
    Endpoint("GET", "/openApi/swap/v2/trade/fillHistory", fill_history, group=2, reads=True),
]
