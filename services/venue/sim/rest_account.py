"""Account endpoints (API.md §5.13-5.21) and the listen-key lifecycle (§6.1)."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from services.venue.sim.http import Call, Endpoint
from services.venue.sim.requests import parse_bool
from services.venue.sim.signing import SignedRequest, verify
from services.venue.sim.views import balance_view, income_view, position_view
from services.venue.sim.wire import ApiError, Code, json_response

__all__ = ["ENDPOINTS"]


async def positions(call: Call) -> object:
    symbol = call.params.get("symbol")
    if symbol is not None:
        call.state.spec(symbol)
    found = [p for p in call.state.account.open_positions() if symbol is None or p.symbol == symbol]
    return [position_view(p, call.state) for p in sorted(found, key=lambda p: (p.symbol, p.side))]


async def balance_v2(call: Call) -> object:
    return {"balance": balance_view(call.state)}


async def balance_v3(call: Call) -> object:
    return [balance_view(call.state)]


async def income(call: Call) -> object:
    symbol = call.params.get("symbol")
    kind = call.params.get("incomeType")
    end = call.params.integer("endTime") or call.sim.clock.now_ms()
    start = call.params.integer("startTime") or end - 7 * 86_400_000
    limit = call.params.bounded("limit", default=100, low=1, high=1000)
    rows = [
        income_view(row)
        for row in call.state.incomes
        if (symbol is None or row.symbol == symbol)
        and (kind is None or row.income_type == kind)
        and start <= row.time <= end
    ]
    return rows[-limit:]


async def commission_rate(call: Call) -> object:
    settings = call.sim.settings
    # JSON numbers here, as BingX sends them (§5.16).
    return {
        "commission": {"takerCommissionRate": settings.taker_fee_rate, "makerCommissionRate": settings.maker_fee_rate}
    }


def _leverage_data(call: Call, symbol: str) -> dict[str, object]:
    spec = call.state.spec(symbol)
    account = call.state.account
    return {
        "symbol": symbol,
        "longLeverage": account.leverage_of(symbol, "LONG"),
        "shortLeverage": account.leverage_of(symbol, "SHORT"),
        "maxLongLeverage": spec.max_leverage,
        "maxShortLeverage": spec.max_leverage,
    }


async def get_leverage(call: Call) -> object:
    return _leverage_data(call, call.params.require("symbol"))


async def set_leverage(call: Call) -> object:
    symbol = call.params.require("symbol")
    side = call.params.require("side")
    leverage = call.params.integer("leverage")
    if leverage is None:
        raise ApiError(Code.INVALID_PARAMETER, "Invalid parameters, err:parameter leverage is must")
    call.sim.engine.set_leverage(symbol, side, leverage)
    data = _leverage_data(call, symbol)
    data["leverage"] = call.state.account.leverage_of(symbol, "SHORT" if side == "SHORT" else "LONG")
    return data


async def get_margin_type(call: Call) -> object:
    symbol = call.params.require("symbol")
    call.state.spec(symbol)
    return {"symbol": symbol, "marginType": call.state.account.margin_type.get(symbol, "CROSSED")}


async def set_margin_type(call: Call) -> object:
    symbol = call.params.require("symbol")
    margin_type = call.params.require("marginType")
    if margin_type not in {"CROSSED", "ISOLATED"}:
        raise ApiError(Code.INVALID_PARAMETER, "Invalid parameters, err:marginType must be ISOLATED or CROSSED")
    call.sim.engine.set_margin_type(symbol, "CROSSED" if margin_type == "CROSSED" else "ISOLATED")
    # No data: {"code":0,"msg":""} (§3.1).
    return {"code": 0, "msg": ""}


async def get_dual(call: Call) -> object:
    return {"dualSidePosition": "true" if call.state.account.dual_side else "false"}


async def set_dual(call: Call) -> object:
    dual = parse_bool("dualSidePosition", call.params.require("dualSidePosition"))
    call.sim.engine.set_dual_side(bool(dual))
    return {"dualSidePosition": "true" if dual else "false"}


def _check_key(call: Call) -> None:
    """Listen-key calls need the key header; a signature, when sent (ccxt signs), must be right."""
    request = call.request
    sent = request.headers.get("X-BX-APIKEY")
    settings = call.sim.settings
    if sent != settings.api_key.get_secret_value():
        raise ApiError(Code.BAD_API_KEY, "Incorrect apiKey" if sent else "Null apiKey")
    if call.params.get("signature") is not None:
        verify(
            SignedRequest(query=request.rel_url.raw_query_string, body="", api_key=sent),
            api_key=settings.api_key.get_secret_value(),
            secret=settings.secret_key.get_secret_value(),
            now_ms=call.sim.clock.now_ms(),
            default_window_ms=settings.recv_window_ms,
            max_window_ms=settings.max_recv_window_ms,
            future_tolerance_ms=settings.future_tolerance_ms,
        )


async def create_listen_key(call: Call) -> object:
    _check_key(call)
    return {"listenKey": call.sim.hub.create_key()}


def _on_listen_key(call: Call, act: Callable[[str], bool]) -> object:
    """Apply ``act`` to the request's listen key: 204 without one, 404 for one ``act`` does not know."""
    _check_key(call)
    key = call.params.get("listenKey")
    if key is None:
        return web.Response(status=204)
    if not act(key):
        return json_response({"code": 404, "msg": "listenKey does not exist"}, status=404)
    return json_response({})


async def extend_listen_key(call: Call) -> object:
    return _on_listen_key(call, call.sim.hub.extend_key)


async def delete_listen_key(call: Call) -> object:
    return _on_listen_key(call, call.sim.hub.delete_key)


_STREAM = "/openApi/user/auth/userDataStream"

ENDPOINTS = [
    Endpoint("GET", "/openApi/swap/v2/user/positions", positions, group=3, reads=True),
    Endpoint("GET", "/openApi/swap/v2/user/balance", balance_v2, uid_per_second=5, group=3, reads=True),
    Endpoint("GET", "/openApi/swap/v3/user/balance", balance_v3, group=3, reads=True),
    Endpoint("GET", "/openApi/swap/v2/user/income", income, group=2, reads=True),
    Endpoint("GET", "/openApi/swap/v2/user/commissionRate", commission_rate, group=2),
    Endpoint("GET", "/openApi/swap/v2/trade/leverage", get_leverage, group=2, reads=True),
    Endpoint("POST", "/openApi/swap/v2/trade/leverage", set_leverage, group=2),
    Endpoint("GET", "/openApi/swap/v2/trade/marginType", get_margin_type, uid_per_second=2, group=2, reads=True),
    Endpoint("POST", "/openApi/swap/v2/trade/marginType", set_margin_type, uid_per_second=2, group=2, bare=True),
    Endpoint("GET", "/openApi/swap/v1/positionSide/dual", get_dual, uid_per_second=2, group=2, reads=True),
    Endpoint("POST", "/openApi/swap/v1/positionSide/dual", set_dual, uid_per_second=2, group=2),
    Endpoint("POST", _STREAM, create_listen_key, signed=False, uid_per_second=None, group=0, bare=True),
    Endpoint("PUT", _STREAM, extend_listen_key, signed=False, uid_per_second=None, group=0, bare=True),
    Endpoint("DELETE", _STREAM, delete_listen_key, signed=False, uid_per_second=None, group=0, bare=True),
]
