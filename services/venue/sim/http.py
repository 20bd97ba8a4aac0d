"""The REST pipeline every ``/openApi`` endpoint goes through.

Order per request: added latency, rate limits (and the rate-limit fault), an injected HTTP
error, signature/timestamp check, the handler (on a stale snapshot when that fault fires), and
for executing endpoints the "response dropped after execution" fault. Business errors are
answered HTTP 200 with BingX's envelope.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from services.common.logging import get_logger
from services.venue.sim.ratelimit import budgets_for
from services.venue.sim.runtime import Simulator
from services.venue.sim.signing import Params, SignedRequest, merge, verify
from services.venue.sim.state import State
from services.venue.sim.wire import ApiError, Code, envelope, error_body, json_response

__all__ = ["Call", "Endpoint", "Handler", "route"]

_log = get_logger(__name__)
_FORM = "application/x-www-form-urlencoded"


@dataclass(frozen=True, slots=True)
class Call:
    sim: Simulator
    params: Params
    # The state to read: the live one, or an older copy when "stale REST snapshots" fires.
    state: State
    request: web.Request


Handler = Callable[[Call], Awaitable[object]]


@dataclass(frozen=True, slots=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    signed: bool = True
    # Per-UID requests per second (None: no UID budget) and the IP group (1 market, 2/3 trade).
    uid_per_second: int | None = 5
    group: int = 2
    # Places or cancels: the "dropped after execution" fault applies.
    executes: bool = False
    # Reads account state: the "stale snapshot" fault applies.
    reads: bool = False
    # The handler's value is the whole body, not ``data`` of the envelope.
    bare: bool = False


async def _body_text(request: web.Request) -> str:
    if not request.can_read_body:
        return ""
    content_type = request.content_type
    if content_type not in {_FORM, "application/octet-stream", "text/plain"}:
        raise ApiError(Code.BAD_REQUEST, f"unsupported Content-Type {content_type}; send query or form parameters")
    return await request.text()


def _rate_limited(sim: Simulator, endpoint: Endpoint) -> web.Response:
    _log.info("rate_limited", path=endpoint.path, method=endpoint.method)
    if sim.settings.rate_limit_response == "http429":
        return json_response(error_body(Code.RATE_LIMITED, "Too Many Requests"), status=429)
    return json_response(error_body(Code.RATE_LIMITED, "The current system is busy, please try again later"))


async def _params(sim: Simulator, endpoint: Endpoint, request: web.Request) -> Params:
    query = request.rel_url.raw_query_string
    body = await _body_text(request)
    api_key = request.headers.get("X-BX-APIKEY")
    if not endpoint.signed:
        return merge(query, body)
    return verify(
        SignedRequest(query=query, body=body, api_key=api_key),
        api_key=sim.settings.api_key.get_secret_value(),
        secret=sim.settings.secret_key.get_secret_value(),
        now_ms=sim.clock.now_ms(),
        default_window_ms=sim.settings.recv_window_ms,
        max_window_ms=sim.settings.max_recv_window_ms,
        future_tolerance_ms=sim.settings.future_tolerance_ms,
    )


def _drop(request: web.Request, sim: Simulator, endpoint: Endpoint) -> web.Response:
    _log.info("response_dropped_after_execution", path=endpoint.path, mode=sim.faults.settings.drop_mode)
    if sim.faults.settings.drop_mode == "504":
        return web.Response(status=504, text="Gateway Time-out")
    if request.transport is not None:
        request.transport.close()
    # Nothing reaches the client: the transport is closed before aiohttp writes this.
    return web.Response(status=504)


def _gate(sim: Simulator, endpoint: Endpoint, request: web.Request) -> tuple[web.Response | None, dict[str, str]]:
    """Rate limits and injected errors, before anything is parsed: a refusal, and the limit headers."""
    faults = sim.faults
    headers: dict[str, str] = {}
    if sim.settings.rate_limits:
        budgets = budgets_for(
            path=endpoint.path,
            method=endpoint.method,
            ip=request.remote or "",
            uid_per_second=endpoint.uid_per_second if endpoint.signed else None,
            group=endpoint.group,
        )
        decision = sim.limiter.check(budgets, sim.clock.now_ms())
        if not decision.allowed:
            return _rate_limited(sim, endpoint), headers
        if budgets:
            headers = {
                "X-RateLimit-Requests-Remain": str(decision.remaining),
                "X-RateLimit-Requests-Expire": str(decision.expire_ms),
            }
    if faults.fires("rate_limit"):
        return _rate_limited(sim, endpoint), headers
    if faults.fires("http_error"):
        status = faults.settings.http_error_status
        _log.info("http_error_injected", path=endpoint.path, status=status)
        return web.Response(status=status, text=f"injected HTTP {status}"), headers
    return None, headers


def route(sim: Simulator, endpoint: Endpoint) -> web.RouteDef:
    """The aiohttp route of ``endpoint`` running the whole pipeline."""

    async def handle(request: web.Request) -> web.StreamResponse:
        faults = sim.faults
        if faults.settings.latency_ms:
            await asyncio.sleep(faults.settings.latency_ms / 1000)
        refusal, headers = _gate(sim, endpoint, request)
        if refusal is not None:
            return refusal
        try:
            params = await _params(sim, endpoint, request)
            state = sim.engine.state
            if endpoint.reads and sim.stale is not None and faults.fires("stale_read"):
                state = sim.stale
            value = await endpoint.handler(Call(sim=sim, params=params, state=state, request=request))
        except ApiError as error:
            _log.info("api_error", path=endpoint.path, code=error.code, msg=error.msg)
            return json_response(error_body(error.code, error.msg), headers=headers)
        if endpoint.executes and faults.fires("drop_after_execute"):
            return _drop(request, sim, endpoint)
        if isinstance(value, web.StreamResponse):
            return value
        body = value if endpoint.bare else envelope(value)
        return json_response(body, headers=headers)

    return web.route(endpoint.method, endpoint.path, handle)
