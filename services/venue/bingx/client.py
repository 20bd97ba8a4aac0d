"""The BingX REST client: one long-lived aiohttp session, signed requests, rate budget, outcomes.

Every request has a timeout. An answer is one of:

* the envelope's ``data`` (code 0) — :class:`Reply`;
* :class:`BingXError` — BingX refused it (a non-zero code): nothing was executed;
* :class:`OutcomeUnknownError` — timeout, dropped connection, HTTP 5xx/504 or an unreadable body:
  the request may or may not have been executed. Reads are retried (``read_retries``);
  placements and cancels are not: their callers query the order before anything is re-sent;
* :class:`RateLimitedError` — refused for rate (HTTP 429 or code 100410) more than
  ``rate_limit_retries`` times; each refusal pauses the endpoint with exponential backoff.

The key travels in the ``X-BX-APIKEY`` header only; neither it nor the secret is ever part
of a log line, an exception text or a span attribute (the query string carries the
signature and is never logged).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any, Final

import aiohttp
from opentelemetry.trace import Tracer
from pydantic import SecretStr

from services.common.logging import get_logger
from services.venue.bingx.ratelimit import RateBudget
from services.venue.bingx.signing import signed_query, text
from services.venue.metrics import VenueMetrics

__all__ = ["BingXClient", "BingXError", "OutcomeUnknownError", "RateLimitedError", "Reply"]

log = get_logger(__name__)

RATE_LIMIT_CODE: Final = 100410
_BACKOFF_INITIAL: Final = 0.25
_BACKOFF_CAP: Final = 5.0


class BingXError(Exception):
    """BingX answered with a non-zero code: the request was refused (nothing executed)."""

    def __init__(self, endpoint: str, code: int, msg: str, *, exchange_ms: int | None) -> None:
        super().__init__(f"{endpoint}: BingX code {code}: {msg}")
        self.endpoint = endpoint
        self.code = code
        self.msg = msg
        self.exchange_ms = exchange_ms


class OutcomeUnknownError(Exception):
    """No readable answer: the request may have been executed (timeout, drop, 5xx, 504)."""

    def __init__(self, endpoint: str, reason: str) -> None:
        super().__init__(f"{endpoint}: outcome unknown ({reason})")
        self.endpoint = endpoint
        self.reason = reason


class RateLimitedError(Exception):
    """Still refused for rate after every retry."""


@dataclass(frozen=True)
class Reply:
    data: Any
    #: Exchange time of the answer (its HTTP ``Date``, whole seconds), ms since the epoch.
    exchange_ms: int | None
    #: Local receive time, ms since the epoch.
    received_ms: int


def _date_ms(headers: Mapping[str, str]) -> int | None:
    value = headers.get("Date")
    if not value:
        return None
    try:
        return int(parsedate_to_datetime(value).timestamp() * 1000)
    except (TypeError, ValueError):
        log.warning("bingx_date_header_unreadable", value=value)
        return None


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class BingXClient:
    """Signed REST calls for one account (module docstring). Owns its aiohttp session."""

    def __init__(
        self,
        *,
        rest_root: str,
        api_key: SecretStr,
        secret_key: SecretStr,
        timeout: float,
        recv_window_ms: int,
        read_retries: int,
        rate_limit_retries: int,
        budget: RateBudget,
        metrics: VenueMetrics,
        tracer: Tracer,
        session: aiohttp.ClientSession,
    ) -> None:
        self._root = rest_root
        self._api_key = api_key
        self._secret = secret_key
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._recv_window = recv_window_ms
        self._read_retries = read_retries
        self._rate_retries = rate_limit_retries
        self._budget = budget
        self._metrics = metrics
        self._tracer = tracer
        self.session = session
        #: REST calls sent, by ``"METHOD path"`` (benchmarks and tests read it).
        self.calls: dict[str, int] = {}

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    async def get(self, path: str, params: Mapping[str, object] | None = None, *, signed: bool = True) -> Reply:
        """A read: retried after an unknown outcome (it changes nothing)."""
        attempt = 0
        while True:
            try:
                return await self.request("GET", path, params, signed=signed)
            except OutcomeUnknownError as error:
                if attempt >= self._read_retries:
                    raise
                attempt += 1
                log.warning("bingx_read_retry", endpoint=error.endpoint, reason=error.reason, attempt=attempt)

    async def request(
        self, method: str, path: str, params: Mapping[str, object] | None = None, *, signed: bool = True
    ) -> Reply:
        """One call (rate-limit refusals retried with backoff); see the module docstring for outcomes."""
        endpoint = f"{method} {path}"
        refusals = 0
        while True:
            try:
                async with self._budget.slot(endpoint) as waited:
                    if waited > 0:
                        self._metrics.rate_waits.observe(waited)
                    return await self._send(method, path, params or {}, signed=signed)
            except _RateRefusalError as refusal:
                self._metrics.rate_limited.inc()
                if refusals >= self._rate_retries:
                    raise RateLimitedError(f"{endpoint}: refused for rate {refusals + 1} times") from None
                delay = max(min(_BACKOFF_CAP, _BACKOFF_INITIAL * 2**refusals), refusal.expire_seconds)
                refusals += 1
                log.warning("bingx_rate_limited", endpoint=endpoint, attempt=refusals, delay_seconds=delay)
                self._budget.pause(endpoint, delay)

    async def _send(self, method: str, path: str, params: Mapping[str, object], *, signed: bool) -> Reply:
        endpoint = f"{method} {path}"
        headers = {"X-BX-APIKEY": self._api_key.get_secret_value()} if signed or "userDataStream" in path else {}
        if signed:
            values = {**params, "timestamp": _now_ms(), "recvWindow": self._recv_window}
            query = signed_query(values, self._secret.get_secret_value())
        else:
            query = "&".join(f"{key}={text(value)}" for key, value in params.items())
        url = f"{self._root}{path}" + (f"?{query}" if query else "")
        self.calls[endpoint] = self.calls.get(endpoint, 0) + 1
        loop = asyncio.get_running_loop()
        started = loop.time()
        outcome = "unknown"
        with self._tracer.start_as_current_span(f"bingx {endpoint}") as span:
            span.set_attribute("http.request.method", method)
            span.set_attribute("url.path", path)
            try:
                status, body, response_headers = await self._exchange(method, url, headers)
                reply = self._interpret(endpoint, status, body, response_headers)
            except _RateRefusalError:
                outcome = "rate_limited"
                raise
            except BingXError as error:
                outcome = "error"
                span.set_attribute("bingx.code", error.code)
                raise
            else:
                outcome = "ok"
                return reply
            finally:
                span.set_attribute("pink.outcome", outcome)
                self._metrics.rest_requests.labels(endpoint, outcome).inc()
                self._metrics.rest_latency.labels(endpoint).observe(loop.time() - started)

    async def _exchange(self, method: str, url: str, headers: Mapping[str, str]) -> tuple[int, str, Mapping[str, str]]:
        endpoint = url.split("?", 1)[0].removeprefix(self._root)
        try:
            async with self.session.request(method, url, headers=headers, timeout=self._timeout) as response:
                body = await response.text()
                return response.status, body, response.headers
        except TimeoutError:
            raise OutcomeUnknownError(f"{method} {endpoint}", "timeout") from None
        except aiohttp.ClientError as error:
            # The class name only: the text of some aiohttp errors carries the request (headers).
            raise OutcomeUnknownError(f"{method} {endpoint}", f"connection: {type(error).__name__}") from None

    def _interpret(self, endpoint: str, status: int, body: str, headers: Mapping[str, str]) -> Reply:
        received = _now_ms()
        exchange_ms = _date_ms(headers)
        if status == 429:
            raise _RateRefusalError(headers)
        if status >= 500:
            raise OutcomeUnknownError(endpoint, f"HTTP {status}")
        try:
            payload = json.loads(body, parse_float=Decimal) if body else None
        except json.JSONDecodeError:
            raise OutcomeUnknownError(endpoint, f"HTTP {status} with a body that is not JSON") from None
        if status == 404 and "userDataStream" in endpoint:
            raise BingXError(endpoint, 404, "listenKey does not exist", exchange_ms=exchange_ms)
        if status >= 400:
            raise BingXError(endpoint, status, f"HTTP {status}", exchange_ms=exchange_ms)
        if isinstance(payload, dict) and "code" in payload:
            code = int(payload["code"])
            if code == RATE_LIMIT_CODE:
                raise _RateRefusalError(headers)
            if code != 0:
                raise BingXError(endpoint, code, str(payload.get("msg", "")), exchange_ms=exchange_ms)
            return Reply(payload.get("data"), exchange_ms, received)
        # Listen-key calls answer without the envelope (API.md §3.1).
        return Reply(payload, exchange_ms, received)


class _RateRefusalError(Exception):
    def __init__(self, headers: Mapping[str, str]) -> None:
        super().__init__("refused for rate")
        expire = headers.get("X-RateLimit-Requests-Expire", "")
        self.expire_seconds = int(expire) / 1000 if expire.isdigit() else 0.0
