"""The control API under ``/_sim``: move prices and the clock, arm faults, break connections.

Plain JSON in and out (not BingX's envelope); a bad request is HTTP 400 ``{"error": ...}``.
Documented in docs/simulator.md.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from decimal import Decimal, InvalidOperation

from aiohttp import web
from pydantic import ValidationError

from services.common.logging import get_logger
from services.venue.sim.clock import ManualClock
from services.venue.sim.requests import MAX_NUMBER
from services.venue.sim.runtime import Simulator
from services.venue.sim.wire import ApiError, dec

__all__ = ["PREFIX", "routes"]

PREFIX = "/_sim"
MAX_TICKS = 100_000
_log = get_logger(__name__)


class ControlError(Exception):
    """A control request that cannot be carried out (answered HTTP 400)."""


def _reply(body: object, status: int = 200) -> web.Response:
    # Plain json: fault rates are floats (probabilities, not money); prices are already strings.
    return web.json_response(body, status=status)


async def _json(request: web.Request) -> dict[str, object]:
    if not request.can_read_body:
        return {}
    try:
        body = json.loads(await request.text(), parse_float=Decimal)
    except json.JSONDecodeError as error:
        raise ControlError(f"body is not JSON: {error}") from error
    if not isinstance(body, dict):
        raise ControlError("body must be a JSON object")
    return body


def _symbols(sim: Simulator, raw: object) -> list[str] | None:
    if raw is None:
        return None
    if not isinstance(raw, list) or not raw or not all(isinstance(s, str) for s in raw):
        raise ControlError("symbols must be a non-empty list of strings")
    unknown = [s for s in raw if s not in sim.engine.state.specs]
    if unknown:
        raise ControlError(f"unknown symbols: {', '.join(unknown)}")
    return [str(s) for s in raw]


def _state(sim: Simulator) -> dict[str, object]:
    state = sim.engine.state
    return {
        "time": sim.clock.now_ms(),
        "prices": {symbol: dec(price) for symbol, price in state.book.prices.items()},
        "fillFraction": dec(sim.engine.fill_fraction),
        "slippageBps": dec(sim.engine.slippage_bps),
        "wallet": dec(state.account.wallet),
        "dualSidePosition": state.account.dual_side,
        "openOrders": len(state.open_orders()),
        "positions": [
            {"symbol": p.symbol, "side": p.side, "amount": dec(p.amount), "cost": dec(p.cost)}
            for p in state.account.open_positions()
        ],
        "faults": {**sim.faults.settings.model_dump(mode="json"), **sim.faults.remaining()},
        "listenKeys": len(sim.hub.listen_keys),
        "connections": len(sim.hub.connections),
    }


Action = Callable[[Simulator, dict[str, object]], Awaitable[object]]


async def _set_price(sim: Simulator, body: dict[str, object]) -> object:
    symbol = body.get("symbol")
    if not isinstance(symbol, str):
        raise ControlError("symbol is required")
    try:
        price = Decimal(str(body.get("price")))
    except InvalidOperation as error:
        raise ControlError("price must be a decimal") from error
    if not price.is_finite() or not 0 < price < MAX_NUMBER:
        raise ControlError(f"price must be positive and below {MAX_NUMBER:f}")
    applied = sim.engine.set_price(symbol, price)
    sim.hub.price_tick([symbol])
    return {"symbol": symbol, "price": dec(applied)}


async def _advance(sim: Simulator, body: dict[str, object]) -> object:
    ticks = body.get("ticks", 1)
    if not isinstance(ticks, int) or not 0 < ticks <= MAX_TICKS:
        raise ControlError(f"ticks must be an integer 1..{MAX_TICKS}")
    symbols = _symbols(sim, body.get("symbols"))
    sim.engine.advance(ticks, symbols)
    sim.hub.price_tick(symbols or list(sim.engine.state.specs))
    return {"prices": {s: dec(p) for s, p in sim.engine.state.book.prices.items()}}


async def _move_clock(sim: Simulator, body: dict[str, object]) -> object:
    step = body.get("advance_ms")
    if not isinstance(sim.clock, ManualClock):
        raise ControlError("the clock is the wall clock; only a manual clock can be moved")
    if not isinstance(step, int) or step < 0:
        raise ControlError("advance_ms must be a non-negative integer")
    sim.clock.advance(step)
    return {"time": sim.clock.now_ms(), "expiredListenKeys": len(await sim.housekeeping())}


def _setting(body: dict[str, object], name: str, high: Decimal, *, zero_allowed: bool) -> Decimal | None:
    """An optional decimal of ``body`` in ``(0, high]``, or ``[0, high]`` when ``zero_allowed``."""
    raw = body.get(name)
    if raw is None:
        return None
    try:
        value = Decimal(str(raw))
    except InvalidOperation as error:
        raise ControlError(f"{name} must be a decimal") from error
    if not value.is_finite() or not (value >= 0 if zero_allowed else value > 0) or value > high:
        raise ControlError(f"{name} must be in {'[' if zero_allowed else '('}0, {high}]")
    return value


async def _matching(sim: Simulator, body: dict[str, object]) -> object:
    """Change how orders fill from now on: ``fill_fraction`` (0, 1] and ``slippage_bps`` [0, 500]."""
    unknown = sorted(set(body) - {"fill_fraction", "slippage_bps"})
    if unknown:
        raise ControlError(f"unknown matching settings: {', '.join(unknown)}")
    fraction = _setting(body, "fill_fraction", Decimal(1), zero_allowed=False)
    slippage = _setting(body, "slippage_bps", Decimal(500), zero_allowed=True)
    engine = sim.engine
    engine.fill_fraction = fraction if fraction is not None else engine.fill_fraction
    engine.slippage_bps = slippage if slippage is not None else engine.slippage_bps
    _log.info("matching_changed", fill_fraction=str(engine.fill_fraction), slippage_bps=str(engine.slippage_bps))
    return {"fill_fraction": dec(engine.fill_fraction), "slippage_bps": dec(engine.slippage_bps)}


async def _faults(sim: Simulator, body: dict[str, object]) -> object:
    try:
        armed = sim.faults.update(body)
    except ValidationError as error:
        raise ControlError(str(error)) from error
    if "fill_delay_ticks" in body:
        sim.engine.fill_delay_ticks = armed.fill_delay_ticks
    if "stale_read_count" in body:
        sim.arm_stale_reads()
    _log.info("faults_armed", changes=sorted(body))
    return {**armed.model_dump(mode="json"), **sim.faults.remaining()}


async def _reset_faults(sim: Simulator, _body: dict[str, object]) -> object:
    sim.faults.reset()
    sim.engine.fill_delay_ticks = 0
    sim.stale = None
    return sim.faults.settings.model_dump(mode="json")


async def _disconnect(sim: Simulator, body: dict[str, object]) -> object:
    user = body.get("user", True)
    market = body.get("market", True)
    abort = body.get("abort", False)
    if not all(isinstance(flag, bool) for flag in (user, market, abort)):
        raise ControlError("user, market and abort must be booleans")
    closed = await sim.hub.disconnect(user=bool(user), market=bool(market), abort=bool(abort))
    return {"closed": closed}


async def _expire_keys(sim: Simulator, body: dict[str, object]) -> object:
    key = body.get("listenKey")
    if key is not None and not isinstance(key, str):
        raise ControlError("listenKey must be a string")
    return {"expired": len(sim.hub.expire([key] if key is not None else None))}


async def _get_state(sim: Simulator, _body: dict[str, object]) -> object:
    return _state(sim)


_POSTS: dict[str, Action] = {
    "price": _set_price,
    "advance": _advance,
    "clock": _move_clock,
    "faults": _faults,
    "matching": _matching,
    "ws/disconnect": _disconnect,
    "listen-keys/expire": _expire_keys,
}


def _wrapped(sim: Simulator, action: Action) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        try:
            return _reply(await action(sim, await _json(request)))
        except (ControlError, ApiError) as error:
            _log.info("control_rejected", path=request.path, error=str(error))
            return _reply({"error": str(error)}, status=400)

    return handle


def routes(sim: Simulator) -> list[web.RouteDef]:
    """The control routes of ``sim``."""
    defs = [
        web.get(f"{PREFIX}/state", _wrapped(sim, _get_state)),
        web.delete(f"{PREFIX}/faults", _wrapped(sim, _reset_faults)),
    ]
    defs.extend(web.post(f"{PREFIX}/{name}", _wrapped(sim, action)) for name, action in _POSTS.items())
    return defs
