"""Orders at BingX: place, cancel and query with explicit outcomes and at-most-once placement.

* **Place.** The kernel's client order id is BingX's ``clientOrderID`` (checked: lower-case,
  1-40 of ``[a-z0-9_.-]``, since BingX lower-cases it). Quantity and price are checked against
  the instrument (step, tick, minimum quantity and notional) and refused locally with the
  reason. Leverage of an entry is set first, as its own step with its own error. After a lost
  answer (timeout, drop, 5xx/504) the order is *queried by clientOrderID before anything is
  re-sent*; a duplicate refusal (101481) is answered with the order found. One intent can
  never become two orders. The answer is what the log holds about the order once the
  stream's acknowledgement arrived (or, without it, a query).
* **Cancel.** Cancelled (with any fills first), already filled (with the fills), not found,
  or unknown: BingX's refusals 80018/80016/109414/109201 and lost answers lead to a query, so a
  cancel is never reported as rejected when the order is in fact cancelled or filled.
* **Query.** ``trade/order`` by client order id (falling back to ``fullOrder`` when BingX
  says "not exist" for a finished order, API.md §10.6) plus the order's fills.

Every event also goes into the execution log, so the stream carries every fact once.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal
from typing import Any, Final

from services.common.logging import get_logger
from services.common.proto import command_pb2, types_pb2, venue_event_pb2
from services.venue import events as ev
from services.venue.bingx.client import BingXClient, BingXError, OutcomeUnknownError
from services.venue.bingx.instruments import InstrumentCache, OrderCheckError
from services.venue.bingx.wire import OrderRecord, WireError, fill_record, order_record
from services.venue.executions import ExecutionLog
from services.venue.metrics import VenueMetrics

__all__ = ["InvalidRequestError", "Trading"]

log = get_logger(__name__)

ORDER: Final = "/openApi/swap/v2/trade/order"
FULL_ORDER: Final = "/openApi/swap/v1/trade/fullOrder"
FILLS: Final = "/openApi/swap/v2/trade/allFillOrders"
LEVERAGE: Final = "/openApi/swap/v2/trade/leverage"
CLIENT_ORDER_ID: Final = re.compile(r"^[a-z0-9_.\-]{1,40}$")
DECIMAL_TEXT: Final = re.compile(r"^-?[0-9]{1,28}(\.[0-9]{1,18})?$")
VENUE_ORDER_ID: Final = re.compile(r"^[0-9]{1,20}$")
#: "The order does not exist" in its several spellings (API.md §3.3).
NOT_FOUND: Final = frozenset({80016, 109414, 109421, 80001})
ALREADY_FILLED: Final = 80018
DUPLICATE_CLIENT_ID: Final = 101481
CANCEL_REPEATED: Final = 109201
_TIME_IN_FORCE: Final = {
    types_pb2.TIME_IN_FORCE_UNSPECIFIED: "GTC",
    types_pb2.TIME_IN_FORCE_GTC: "GTC",
    types_pb2.TIME_IN_FORCE_IOC: "IOC",
    types_pb2.TIME_IN_FORCE_FOK: "FOK",
    types_pb2.TIME_IN_FORCE_POST_ONLY: "PostOnly",
}
_ANSWER_MEMORY: Final = 10_000

Events = list[venue_event_pb2.VenueEvent]


class InvalidRequestError(ValueError):
    """A request that breaks the contract (the caller's bug): INVALID_ARGUMENT."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _decimal(value: types_pb2.Decimal, field: str) -> Decimal:
    """The contract's decimal grammar (types.proto): digits, an optional fraction, no exponent."""
    text = value.value
    if not DECIMAL_TEXT.match(text):
        raise InvalidRequestError(field, f"not a decimal: {text[:40]!r}")
    return Decimal(text)


def _answer_time(exchange_ms: int | None, what: str) -> int:
    """BingX's time of an answer (its Date header); local time, said so, when it sent none."""
    if exchange_ms is not None:
        return exchange_ms
    log.warning("exchange_time_missing", what=what, action="receive time used for this refusal")
    return _now_ms()


def _client_order_id(cid: str, field: str) -> str:
    if not CLIENT_ORDER_ID.match(cid):
        raise InvalidRequestError(field, "must be 1-40 of a-z 0-9 _ . - (BingX clientOrderID)")
    return cid


class Trading:
    def __init__(
        self,
        client: BingXClient,
        instruments: InstrumentCache,
        executions: ExecutionLog,
        marks: dict[str, Decimal],
        metrics: VenueMetrics,
        *,
        hedge_mode: bool,
        write_attempts: int,
        ack_wait_seconds: float,
        stream_connected: Callable[[], bool],
    ) -> None:
        self._client = client
        self._instruments = instruments
        self._log = executions
        self._marks = marks
        self._metrics = metrics
        self._hedge = hedge_mode
        self._attempts = write_attempts
        self._ack_wait = ack_wait_seconds
        self._stream_connected = stream_connected
        self._leverage: dict[tuple[str, str], int] = {}
        # Answers by idempotency key: a repeated key shares the first call (in flight or done).
        self._answers: OrderedDict[str, asyncio.Future[Events]] = OrderedDict()

    async def once(self, key: str, work: Callable[[], Awaitable[Events]]) -> Events:
        """``work()`` once per idempotency key; repeats get the same answer (a failure is not kept)."""
        known = self._answers.get(key)
        if known is not None:
            return list(await asyncio.shield(known))
        future: asyncio.Future[Events] = asyncio.get_running_loop().create_future()
        self._answers[key] = future
        while len(self._answers) > _ANSWER_MEMORY:
            self._answers.popitem(last=False)
        try:
            result = await work()
        except BaseException as error:
            self._answers.pop(key, None)
            if not isinstance(error, asyncio.CancelledError):
                future.set_exception(error)
                future.exception()  # retrieved: waiters see it, nobody else must
            else:
                future.cancel()
            raise
        future.set_result(result)
        return list(result)

    # ------------------------------------------------------------------ place

    async def place(self, key: str, order: command_pb2.PlaceOrder) -> Events:
        cid = _client_order_id(order.client_order_id or key, "order.client_order_id")
        return await self.once(f"place:{cid}", lambda: self._place(cid, order))

    def _local_reject(self, cid: str, symbol: str, reason: str) -> Events:
        log.warning("order_refused_locally", client_order_id=cid, symbol=symbol, reason=reason)
        # A local decision: its time is this service's (no exchange was involved).
        now = _now_ms()
        event = ev.rejected(cid, symbol, reason, exchange_ms=now, received_ms=now)
        self._log.emit([event], source="local")
        return [event]

    def _params(self, cid: str, order: command_pb2.PlaceOrder) -> dict[str, object]:
        instrument = self._instruments.get(order.symbol)
        if instrument is None:
            raise OrderCheckError(f"unknown symbol {order.symbol} (not a BingX USDT-M contract)")
        if not instrument.tradable:
            raise OrderCheckError(f"{order.symbol} is not open for API trading")
        if order.side not in (types_pb2.ORDER_SIDE_BUY, types_pb2.ORDER_SIDE_SELL):
            raise InvalidRequestError("order.side", "must be BUY or SELL")
        quantity = _decimal(order.quantity, "order.quantity")
        params: dict[str, object] = {
            "symbol": order.symbol,
            "side": "BUY" if order.side == types_pb2.ORDER_SIDE_BUY else "SELL",
            "quantity": instrument.quantity_text(quantity),
            "clientOrderID": cid,
            "positionSide": self._position_side(order),
        }
        if order.order_type == types_pb2.ORDER_TYPE_LIMIT:
            if not order.limit_price.value:
                raise InvalidRequestError("order.limit_price", "required for LIMIT")
            price = _decimal(order.limit_price, "order.limit_price")
            time_in_force = _TIME_IN_FORCE.get(order.time_in_force)
            if time_in_force is None:
                raise InvalidRequestError("order.time_in_force", f"unknown value {order.time_in_force}")
            params.update(type="LIMIT", price=instrument.price_text(price), timeInForce=time_in_force)
            instrument.check_notional(quantity, price)
        elif order.order_type == types_pb2.ORDER_TYPE_MARKET:
            if order.limit_price.value:
                raise InvalidRequestError("order.limit_price", "must be empty for MARKET")
            params["type"] = "MARKET"
            mark = self._marks.get(order.symbol)
            if mark is not None:
                instrument.check_notional(quantity, mark)
        else:
            raise InvalidRequestError("order.order_type", "must be MARKET or LIMIT")
        if order.reduce_only and not self._hedge:
            params["reduceOnly"] = True
        return params

    def _position_side(self, order: command_pb2.PlaceOrder) -> str:
        if not self._hedge:
            return "BOTH"
        if order.position_side == types_pb2.SIDE_LONG:
            return "LONG"
        if order.position_side == types_pb2.SIDE_SHORT:
            return "SHORT"
        raise InvalidRequestError("order.position_side", "required in hedge mode")

    async def _place(self, cid: str, order: command_pb2.PlaceOrder) -> Events:  # noqa: PLR0911 - one return per outcome
        try:
            params = self._params(cid, order)
        except OrderCheckError as error:
            return self._local_reject(cid, order.symbol, str(error))
        refusal = await self._ensure_leverage(order, params)
        if refusal is not None:
            return self._local_reject(cid, order.symbol, refusal)
        for attempt in range(1, self._attempts + 1):
            try:
                reply = await self._client.request("POST", ORDER, params)
            except BingXError as error:
                if error.code == DUPLICATE_CLIENT_ID:
                    log.warning("place_duplicate_client_id", client_order_id=cid, note="answered with the order found")
                    found = await self.query(order.symbol, cid, "", source="place")
                    if found is not None:
                        return found
                reason = f"BingX {error.code}: {error.msg}"
                refused = ev.rejected(
                    cid,
                    order.symbol,
                    reason,
                    exchange_ms=_answer_time(error.exchange_ms, "place"),
                    received_ms=_now_ms(),
                )
                log.warning("order_rejected", client_order_id=cid, symbol=order.symbol, code=error.code, msg=error.msg)
                self._log.emit([refused], source="place")
                return [refused]
            except OutcomeUnknownError as error:
                log.warning("place_outcome_unknown", client_order_id=cid, reason=error.reason, attempt=attempt)
                found = await self.query(order.symbol, cid, "", source="place")
                if found is not None:
                    return found
                log.info("place_not_at_venue_resending", client_order_id=cid, attempt=attempt)
                continue
            return await self._placed(cid, order.symbol, reply.data)
        log.error("place_outcome_unresolved", client_order_id=cid, attempts=self._attempts)
        return []

    async def _placed(self, cid: str, symbol: str, data: Any) -> Events:
        try:
            order_id = str(int(data["order"]["orderId"]))
        except (KeyError, TypeError, ValueError):
            log.exception("place_answer_without_order_id", client_order_id=cid, note="querying the order")
            return await self.query(symbol, cid, "", source="place") or []

        def acknowledged() -> bool:
            facts = self._log.facts(client_order_id=cid)
            return facts is not None and facts.accepted

        with self._metrics.ack_wait.time():
            streamed = self._stream_connected() and await self._log.wait_for(acknowledged, self._ack_wait)
        if not streamed:
            log.info("ack_not_streamed_querying", client_order_id=cid, venue_order_id=order_id)
            return await self.query(symbol, cid, order_id, source="place") or []
        facts = self._log.facts(client_order_id=cid)
        return list(facts.events) if facts is not None else []

    async def _ensure_leverage(self, order: command_pb2.PlaceOrder, params: dict[str, object]) -> str | None:
        """Sets the trade's leverage before an entry (its own step); the reason when BingX refuses."""
        if order.purpose != types_pb2.ORDER_PURPOSE_ENTRY or not order.leverage.value:
            return None
        leverage = _decimal(order.leverage, "order.leverage")
        if leverage != leverage.to_integral_value() or not 1 <= leverage <= 1000:
            return f"leverage {order.leverage.value} is not a whole number >= 1"
        side = str(params["positionSide"])
        key = (order.symbol, side)
        if self._leverage.get(key) == int(leverage):
            return None
        try:
            await self._client.request(
                "POST", LEVERAGE, {"symbol": order.symbol, "side": side, "leverage": int(leverage)}
            )
        except BingXError as error:
            return f"leverage {int(leverage)} not set (order not sent): BingX {error.code}: {error.msg}"
        except OutcomeUnknownError as error:
            return f"leverage {int(leverage)} not confirmed (order not sent): {error.reason}"
        self._leverage[key] = int(leverage)
        return None

    # ------------------------------------------------------------------ query

    async def find(self, symbol: str, cid: str, order_id: str) -> OrderRecord | None:
        """The order by client order id (or venue id); None when BingX has no such order."""
        params: dict[str, object] = {"symbol": symbol}
        if cid:
            params["clientOrderId"] = cid
        else:
            params["orderId"] = order_id
        try:
            reply = await self._client.get(ORDER, params)
            return order_record(reply.data["order"])
        except BingXError as error:
            if error.code not in NOT_FOUND:
                raise
        # BingX has answered "not exist" for finished orders: look in the history too.
        reply = await self._client.get(FULL_ORDER, {"symbol": symbol, "limit": 1000})
        for item in reply.data.get("orders") or []:
            record = order_record(item)
            if (cid and record.client_order_id == cid) or (not cid and str(record.order_id) == order_id):
                return record
        return None

    async def truth(self, record: OrderRecord) -> Events:
        """The order's events from REST (its fills fetched when it has any)."""
        fills = []
        if record.executed > 0:
            start = (record.time_ms or 0) - 1000
            reply = await self._client.get(
                FILLS,
                {
                    "symbol": record.symbol,
                    "orderId": record.order_id,
                    "tradingUnit": "COIN",
                    "startTs": max(start, 0),
                    "endTs": _now_ms() + 60_000,
                },
            )
            fills = [fill_record(item) for item in reply.data.get("fill_orders") or []]
            fills = [fill for fill in fills if fill.order_id == record.order_id]
            if sum((fill.quantity for fill in fills), Decimal(0)) != record.executed:
                log.warning(
                    "fills_do_not_add_up",
                    venue_order_id=record.order_id,
                    executed=str(record.executed),
                    fills=len(fills),
                )
        if record.status is None:
            self._metrics.unknown_status.inc()
            log.error(
                "order_status_unknown",
                venue_order_id=record.order_id,
                client_order_id=record.client_order_id,
                status=record.raw_status,
                action="UNKNOWN event (and the fills), never an acceptance or a guessed state",
            )
        # Received when the last REST answer about the order (the order or its fills) arrived.
        return ev.order_events(record, fills, received_ms=_now_ms())

    async def query(self, symbol: str, cid: str, order_id: str, *, source: str) -> Events | None:
        """The order's truth (also appended to the log); None when the venue has no such order."""
        try:
            record = await self.find(symbol, cid, order_id)
            if record is None:
                return None
            events = await self.truth(record)
        except WireError as error:
            log.exception("order_answer_malformed", client_order_id=cid, venue_order_id=order_id, error=str(error))
            raise
        self._log.emit(events, source=source)
        return events

    async def query_order(self, order: command_pb2.QueryOrder) -> Events:
        symbol = self._symbol_of(order.symbol, order.client_order_id, order.venue_order_id)
        found = await self.query(symbol, order.client_order_id, order.venue_order_id, source="query")
        if found is not None:
            return found
        now = _now_ms()
        return [
            ev.rejected(order.client_order_id, symbol, "not found", exchange_ms=now, received_ms=now, suffix="notfound")
        ]

    def _symbol_of(self, symbol: str, cid: str, order_id: str) -> str:
        if cid:
            _client_order_id(cid, "order.client_order_id")
        if order_id and not VENUE_ORDER_ID.match(order_id):
            raise InvalidRequestError("order.venue_order_id", "must be BingX's numeric order id")
        if symbol:
            if self._instruments.get(symbol) is None:
                raise InvalidRequestError("order.symbol", f"{symbol[:40]!r} is not a BingX USDT-M contract")
            return symbol
        facts = self._log.facts(client_order_id=cid, venue_order_id=order_id)
        if facts is None:
            raise InvalidRequestError("order.symbol", "required (BingX needs the symbol to find an order)")
        return facts.symbol

    # ------------------------------------------------------------------ cancel

    async def cancel(self, key: str, order: command_pb2.CancelOrder) -> Events:
        if not order.client_order_id and not order.venue_order_id:
            raise InvalidRequestError("order.client_order_id", "client_order_id or venue_order_id is required")
        symbol = self._symbol_of(order.symbol, order.client_order_id, order.venue_order_id)
        return await self.once(f"cancel:{key}", lambda: self._cancel(key, symbol, order))

    async def _cancel(self, key: str, symbol: str, order: command_pb2.CancelOrder) -> Events:
        cid, order_id = order.client_order_id, order.venue_order_id
        params: dict[str, object] = {"symbol": symbol}
        params.update({"clientOrderID": cid} if cid else {"orderId": order_id})
        for attempt in range(1, self._attempts + 1):
            try:
                reply = await self._client.request("DELETE", ORDER, params)
            except BingXError as error:
                return await self._cancel_refused(key, symbol, cid, order_id, error)
            except OutcomeUnknownError as error:
                log.warning("cancel_outcome_unknown", client_order_id=cid, reason=error.reason, attempt=attempt)
                found = await self.query(symbol, cid, order_id, source="cancel")
                if found is None:
                    return self._cancel_rejection(key, cid, symbol, "not found", _now_ms())
                if _finished(found):
                    return found
                continue
            record = order_record(reply.data["order"])
            events = await self.truth(record)
            self._log.emit(events, source="cancel")
            return events
        log.error("cancel_outcome_unresolved", client_order_id=cid, attempts=self._attempts)
        return []

    async def _cancel_refused(self, key: str, symbol: str, cid: str, order_id: str, error: BingXError) -> Events:
        if error.code not in NOT_FOUND | {ALREADY_FILLED, CANCEL_REPEATED}:
            reason = f"BingX {error.code}: {error.msg}"
            return self._cancel_rejection(key, cid, symbol, reason, _answer_time(error.exchange_ms, "cancel"))
        # Filled first, cancelled already, or a cancel still in progress: the order's truth says which.
        found = await self.query(symbol, cid, order_id, source="cancel")
        if found is None:
            return self._cancel_rejection(key, cid, symbol, "not found", _answer_time(error.exchange_ms, "cancel"))
        if _finished(found) or error.code == CANCEL_REPEATED:
            log.info("cancel_resolved_by_query", client_order_id=cid, code=error.code, events=len(found))
            return found
        reason = f"BingX {error.code}: {error.msg} (order still working)"
        refusal = self._cancel_rejection(key, cid, symbol, reason, _answer_time(error.exchange_ms, "cancel"))
        return [*found, *refusal]

    def _cancel_rejection(self, key: str, cid: str, symbol: str, reason: str, exchange_ms: int) -> Events:
        event = ev.cancel_rejected(key, cid, symbol, reason, exchange_ms=exchange_ms, received_ms=_now_ms())
        log.warning("cancel_rejected", client_order_id=cid, symbol=symbol, reason=reason)
        self._log.emit([event], source="cancel")
        return [event]


def _finished(events: Sequence[venue_event_pb2.VenueEvent]) -> bool:
    return any(
        event.kind
        in (
            venue_event_pb2.VENUE_EVENT_KIND_FILL,
            venue_event_pb2.VENUE_EVENT_KIND_CANCELLED,
            venue_event_pb2.VENUE_EVENT_KIND_EXPIRED,
            venue_event_pb2.VENUE_EVENT_KIND_ORDER_REJECTED,
        )
        for event in events
    )
