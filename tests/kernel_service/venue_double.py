"""A test double of ``pink.v1.VenueService`` on a loopback port (tests only, never a product path).

It keeps a tiny venue book so the kernel service can be driven end to end without BingX:

* **Orders** by client order id. ``PlaceOrder`` answers ORDER_ACCEPTED (venue order id
  ``v<n>``, event id ``ack-<cid>``); in ``auto`` mode (the default) a MARKET order also fills at
  once at ``prices[symbol]`` with a fee of ``fee_rate`` x notional (event id ``fill-<cid>-<n>``).
  LIMIT orders rest until the test calls :meth:`VenueDouble.fill`. Every answer is stored by
  idempotency key: the same key always gets the same answer and never a second order.
* ``CancelOrder``: CANCELLED (cumulative = filled, event id ``cxl-<cid>``) for a working order,
  CANCEL_REJECTED otherwise. ``QueryOrder``: every event of the order so far, or
  ORDER_REJECTED with reason ``not found`` (event id ``notfound-<cid>``).
* ``ListOpenOrders``, ``ListPositions`` (net per symbol, one-way mode), ``GetBalance`` (wallet =
  initial balance - fees + realized PnL) from its own book; ``GetInstruments``: BTC-USDT (step
  0.001, tick 0.1, min 0.001) and ETH-USDT (0.01, 0.01, 0.01).
* ``StreamExecutions``: every order event (acks, fills, cancels, rejections) with positions
  ``"000001"``, ``"000002"``, ...; resumable after a position (empty: from now).
  ``StreamMarkPrices``: the prices the test feeds with :meth:`VenueDouble.mark`.

Fault injection: :meth:`fail_next` (abort the next calls before executing), :meth:`delay` (sleep
after executing, before answering), :meth:`drop_responses` (execute, then answer UNAVAILABLE: the
lost answer), :meth:`disconnect_streams`, :meth:`replay_on_next_subscription` (a resumed stream
repeats earlier events, as an at-least-once feed may), :meth:`hold` (calls wait for the test's
go-ahead). Every request is recorded
(:attr:`received`, :meth:`requests_of`), and :meth:`wait_for` waits for a condition on the
double without sleeping.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeAlias, TypeVar

import grpc
import grpc.aio
from google.protobuf import timestamp_pb2
from google.protobuf.message import Message

from services.common.proto import (
    kernel_input_pb2,
    slot_pb2,
    types_pb2,
    venue_event_pb2,
    venue_service_pb2,
    venue_service_pb2_grpc,
)

__all__ = ["BTC", "ETH", "METHODS", "DoubleOrder", "VenueDouble"]

BTC = "BTC-USDT"
ETH = "ETH-USDT"
METHODS = (
    "PlaceOrder",
    "CancelOrder",
    "QueryOrder",
    "ListOpenOrders",
    "ListPositions",
    "GetBalance",
    "GetInstruments",
    "StreamExecutions",
    "StreamMarkPrices",
)
_PRICE_PLACES = Decimal("0.00000001")
_OPEN = (slot_pb2.ORDER_STATUS_ACCEPTED, slot_pb2.ORDER_STATUS_PARTIALLY_FILLED)

Context: TypeAlias = grpc.aio.ServicerContext[Any, Any]
M = TypeVar("M", bound=Message)
Kind: TypeAlias = venue_event_pb2.VenueEventKind.ValueType


def _d(value: Decimal) -> types_pb2.Decimal:
    return types_pb2.Decimal(value=f"{value:f}")


def _now() -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(time.time_ns())
    return stamp


@dataclass
class DoubleOrder:
    """One order of the double's book."""

    client_order_id: str
    venue_order_id: str
    symbol: str
    side: types_pb2.OrderSide.ValueType
    order_type: types_pb2.OrderType.ValueType
    quantity: Decimal
    limit_price: Decimal | None
    reduce_only: bool
    status: slot_pb2.OrderStatus.ValueType
    filled: Decimal = Decimal(0)
    notional: Decimal = Decimal(0)
    fills: int = 0
    #: Every fact about the order, in order (what QueryOrder answers).
    events: list[venue_event_pb2.VenueEvent] = field(default_factory=list)

    @property
    def average_price(self) -> Decimal | None:
        return (self.notional / self.filled).quantize(_PRICE_PLACES) if self.filled else None


@dataclass
class _Position:
    size: Decimal = Decimal(0)  # signed: > 0 long, < 0 short
    entry_price: Decimal = Decimal(0)


class VenueDouble(venue_service_pb2_grpc.VenueServiceServicer):
    """The double (see the module docstring). All state lives on the test's event loop."""

    def __init__(
        self,
        *,
        auto: bool = True,
        prices: dict[str, Decimal] | None = None,
        fee_rate: Decimal = Decimal("0.0005"),
        balance: Decimal = Decimal(10000),
        asset: str = "USDT",
    ) -> None:
        #: MARKET orders fill at once (``prices[symbol]``); False: every order only gets its ack.
        self.auto = auto
        self.prices = prices if prices is not None else {BTC: Decimal(50000), ETH: Decimal(2500)}
        self.fee_rate = fee_rate
        self.asset = asset
        self.balance = balance
        self.instruments: dict[str, kernel_input_pb2.Instrument] = {
            BTC: _instrument(BTC, "0.001", "0.1", "0.001"),
            ETH: _instrument(ETH, "0.01", "0.01", "0.01"),
        }
        #: The book: every order ever placed, by client order id.
        self.orders: dict[str, DoubleOrder] = {}
        self.positions: dict[str, _Position] = {}
        self.leverage: dict[str, Decimal] = {}
        #: Every request received, in order, with its method name (failed and dropped ones too).
        self.received: list[tuple[str, Message]] = []
        #: The execution stream: every order event with its position ``f"{index + 1:06d}"``.
        self.executions: list[venue_service_pb2.StreamExecutionsResponse] = []
        # Answers by idempotency key: the same key always gets the same answer.
        self._placed: dict[str, venue_service_pb2.PlaceOrderResponse] = {}
        self._cancels: dict[str, venue_service_pb2.CancelOrderResponse] = {}
        self._marks: deque[kernel_input_pb2.MarkPrice] = deque()
        self._failures: dict[str, deque[grpc.StatusCode]] = {}
        self._delays: dict[str, float] = {}
        self._drops: dict[str, int] = {}
        self._holds: dict[str, asyncio.Event] = {}
        self._replay = 0
        self._epoch = 0
        self._changed = asyncio.Event()
        self._server: grpc.aio.Server | None = None
        self.port = 0

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> int:
        """Serves the double on 127.0.0.1 (an ephemeral port); returns the port."""
        if self._server is not None:
            raise RuntimeError("the venue double is already started")
        server = grpc.aio.server()
        venue_service_pb2_grpc.add_VenueServiceServicer_to_server(self, server)
        self.port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        self._server = server
        return self.port

    async def stop(self, grace: float = 0.5) -> None:
        """Ends open streams and stops the server."""
        self.disconnect_streams()
        if self._server is not None:
            await self._server.stop(grace)
            self._server = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    # ------------------------------------------------------------------ test API

    def requests_of(self, kind: type[M]) -> list[M]:
        """The requests of one message type received so far (e.g. ``PlaceOrderRequest``), in order."""
        return [request for _, request in self.received if isinstance(request, kind)]

    async def wait_for(self, predicate: Callable[[], bool], seconds: float = 5.0) -> None:
        """Returns once ``predicate()`` holds (checked after every request and book change).

        Raises ``TimeoutError`` when it does not hold within ``seconds``.
        """
        async with asyncio.timeout(seconds):
            while True:
                changed = self._changed
                if predicate():
                    return
                await changed.wait()

    def fail_next(self, method: str, code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE, times: int = 1) -> None:
        """The next ``times`` calls of ``method`` fail with ``code`` before doing anything."""
        _check(method)
        self._failures.setdefault(method, deque()).extend([code] * times)

    def delay(self, method: str, seconds: float) -> None:
        """Calls of ``method`` sleep ``seconds`` after executing, before answering (0: no delay)."""
        _check(method)
        self._delays[method] = seconds

    def hold(self, method: str) -> asyncio.Event:
        """Calls of ``method`` wait, once recorded, until the returned event is set."""
        _check(method)
        gate = asyncio.Event()
        self._holds[method] = gate
        return gate

    def drop_responses(self, method: str, times: int = 1) -> None:
        """The next ``times`` calls of ``method`` execute, then answer UNAVAILABLE (the answer is lost)."""
        _check(method)
        self._drops[method] = self._drops.get(method, 0) + times

    def disconnect_streams(self) -> None:
        """Every open stream ends with UNAVAILABLE."""
        self._epoch += 1
        self._notify()

    def replay_on_next_subscription(self, count: int) -> None:
        """The next resumed StreamExecutions starts ``count`` events before the position asked for."""
        self._replay = count

    def mark(self, symbol: str, price: Decimal | str) -> None:
        """Queues a mark price for the StreamMarkPrices subscribers (one of them takes it)."""
        mark = kernel_input_pb2.MarkPrice(symbol=symbol, price=_d(Decimal(price)), exchange_time=_now())
        self._marks.append(mark)
        self._notify()

    def fill(self, client_order_id: str, quantity: Decimal | str, price: Decimal | str) -> venue_event_pb2.VenueEvent:
        """Executes ``quantity`` of a working order at ``price`` (PARTIAL_FILL, or FILL when complete)."""
        order = self.orders[client_order_id]
        if order.status not in _OPEN:
            raise ValueError(f"{client_order_id} is not working ({slot_pb2.OrderStatus.Name(order.status)})")
        return self._fill(order, Decimal(quantity), Decimal(price))

    def set_position(
        self, symbol: str, side: types_pb2.Side.ValueType, size: Decimal | str, entry: Decimal | str
    ) -> None:
        """Puts a position in the book directly (one the kernel does not know about)."""
        signed = Decimal(size) if side == types_pb2.SIDE_LONG else -Decimal(size)
        self.positions[symbol] = _Position(signed, Decimal(entry))
        self._notify()

    @property
    def last_position(self) -> str:
        """Position of the newest execution event ("" when there is none)."""
        return self.executions[-1].position if self.executions else ""

    # ------------------------------------------------------------------ book

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def _event(self, kind: Kind, order: DoubleOrder, event_id: str, **fields: Any) -> venue_event_pb2.VenueEvent:
        return venue_event_pb2.VenueEvent(
            kind=kind,
            client_order_id=order.client_order_id,
            venue_order_id=order.venue_order_id,
            venue_event_id=event_id,
            symbol=order.symbol,
            exchange_time=_now(),
            **fields,
        )

    def _record(self, order: DoubleOrder, event: venue_event_pb2.VenueEvent) -> venue_event_pb2.VenueEvent:
        """A fact about an order: kept with the order and published on the execution stream."""
        order.events.append(event)
        position = f"{len(self.executions) + 1:06d}"
        self.executions.append(venue_service_pb2.StreamExecutionsResponse(event=event, position=position))
        self._notify()
        return event

    def _place(self, request: venue_service_pb2.PlaceOrderRequest) -> list[venue_event_pb2.VenueEvent]:
        spec = request.order
        cid = spec.client_order_id or request.idempotency_key
        if cid in self.orders:
            # A new key for a known client order id: BingX refuses a duplicate clientOrderID.
            rejected = venue_event_pb2.VenueEvent(
                kind=venue_event_pb2.VENUE_EVENT_KIND_ORDER_REJECTED,
                client_order_id=cid,
                venue_event_id=f"dup-{request.idempotency_key}",
                reason="duplicate client order id",
                exchange_time=_now(),
            )
            return [rejected]
        order = DoubleOrder(
            client_order_id=cid,
            venue_order_id=f"v{len(self.orders) + 1}",
            symbol=spec.symbol,
            side=spec.side,
            order_type=spec.order_type,
            quantity=Decimal(spec.quantity.value or "0"),
            limit_price=Decimal(spec.limit_price.value) if spec.limit_price.value else None,
            reduce_only=spec.reduce_only,
            status=slot_pb2.ORDER_STATUS_ACCEPTED,
        )
        self.orders[cid] = order
        if spec.leverage.value:
            self.leverage[spec.symbol] = Decimal(spec.leverage.value)
        if spec.symbol not in self.instruments or order.quantity <= 0:
            order.status = slot_pb2.ORDER_STATUS_REJECTED
            reason = "unknown symbol" if spec.symbol not in self.instruments else "invalid quantity"
            return [
                self._record(
                    order,
                    self._event(venue_event_pb2.VENUE_EVENT_KIND_ORDER_REJECTED, order, f"rej-{cid}", reason=reason),
                )
            ]
        events = [
            self._record(order, self._event(venue_event_pb2.VENUE_EVENT_KIND_ORDER_ACCEPTED, order, f"ack-{cid}"))
        ]
        if self.auto and order.order_type == types_pb2.ORDER_TYPE_MARKET:
            events.append(self._fill(order, order.quantity, self.prices[order.symbol]))
        return events

    def _fill(self, order: DoubleOrder, quantity: Decimal, price: Decimal) -> venue_event_pb2.VenueEvent:
        order.fills += 1
        order.filled += quantity
        order.notional += quantity * price
        complete = order.filled >= order.quantity
        order.status = slot_pb2.ORDER_STATUS_FILLED if complete else slot_pb2.ORDER_STATUS_PARTIALLY_FILLED
        fee = quantity * price * self.fee_rate
        self.balance -= fee
        self._trade(order.symbol, quantity if order.side == types_pb2.ORDER_SIDE_BUY else -quantity, price)
        kind = venue_event_pb2.VENUE_EVENT_KIND_FILL if complete else venue_event_pb2.VENUE_EVENT_KIND_PARTIAL_FILL
        average = order.average_price
        event = self._event(
            kind,
            order,
            f"fill-{order.client_order_id}-{order.fills}",
            last_quantity=_d(quantity),
            cumulative_quantity=_d(order.filled),
            last_price=_d(price),
            fee=_d(fee),
            fee_asset=self.asset,
        )
        if average is not None:
            event.average_price.CopyFrom(_d(average))
        return self._record(order, event)

    def _trade(self, symbol: str, signed: Decimal, price: Decimal) -> None:
        """Nets a fill into the symbol's one-way position, realizing PnL on the reduced part."""
        position = self.positions.setdefault(symbol, _Position())
        if position.size == 0 or (position.size > 0) == (signed > 0):
            total = abs(position.size) + abs(signed)
            position.entry_price = ((abs(position.size) * position.entry_price + abs(signed) * price) / total).quantize(
                _PRICE_PLACES
            )
            position.size += signed
            return
        closed = min(abs(signed), abs(position.size))
        direction = 1 if position.size > 0 else -1
        self.balance += closed * (price - position.entry_price) * direction
        position.size += signed
        if position.size == 0:
            position.entry_price = Decimal(0)
        elif (position.size > 0) != (direction > 0):
            position.entry_price = price

    def _cancel(self, request: venue_service_pb2.CancelOrderRequest) -> list[venue_event_pb2.VenueEvent]:
        cid = request.order.client_order_id
        order = self.orders.get(cid)
        if order is None or order.status not in _OPEN:
            reason = "not found" if order is None else f"order is {slot_pb2.OrderStatus.Name(order.status)}"
            rejected = venue_event_pb2.VenueEvent(
                kind=venue_event_pb2.VENUE_EVENT_KIND_CANCEL_REJECTED,
                client_order_id=cid,
                venue_order_id=order.venue_order_id if order is not None else "",
                venue_event_id=f"cxlrej-{request.idempotency_key}",
                reason=reason,
                exchange_time=_now(),
            )
            return [rejected]
        order.status = slot_pb2.ORDER_STATUS_CANCELLED
        cancelled = self._event(
            venue_event_pb2.VENUE_EVENT_KIND_CANCELLED, order, f"cxl-{cid}", cumulative_quantity=_d(order.filled)
        )
        return [self._record(order, cancelled)]

    def _query(self, request: venue_service_pb2.QueryOrderRequest) -> list[venue_event_pb2.VenueEvent]:
        cid = request.order.client_order_id
        order = self.orders.get(cid)
        if order is None:
            missing = venue_event_pb2.VenueEvent(
                kind=venue_event_pb2.VENUE_EVENT_KIND_ORDER_REJECTED,
                client_order_id=cid,
                venue_event_id=f"notfound-{cid}",
                reason="not found",
                exchange_time=_now(),
            )
            return [missing]
        return list(order.events)

    # ------------------------------------------------------------------ fault plumbing

    async def _enter(self, method: str, request: Message, context: Context) -> None:
        self.received.append((method, request))
        self._notify()
        gate = self._holds.get(method)
        if gate is not None:
            await gate.wait()
        failures = self._failures.get(method)
        if failures:
            code = failures.popleft()
            await context.abort(code, f"injected {code.name}")

    async def _leave(self, method: str, context: Context) -> None:
        seconds = self._delays.get(method, 0.0)
        if seconds > 0:
            await asyncio.sleep(seconds)
        if self._drops.get(method, 0) > 0:
            self._drops[method] -= 1
            await context.abort(grpc.StatusCode.UNAVAILABLE, "injected: answer lost after execution")

    # ------------------------------------------------------------------ VenueService

    async def PlaceOrder(  # noqa: N802 - gRPC method name
        self, request: venue_service_pb2.PlaceOrderRequest, context: Context
    ) -> venue_service_pb2.PlaceOrderResponse:
        await self._enter("PlaceOrder", request, context)
        answer = self._placed.get(request.idempotency_key)
        if answer is None:
            answer = venue_service_pb2.PlaceOrderResponse(events=self._place(request))
            self._placed[request.idempotency_key] = answer
        await self._leave("PlaceOrder", context)
        return answer

    async def CancelOrder(  # noqa: N802 - gRPC method name
        self, request: venue_service_pb2.CancelOrderRequest, context: Context
    ) -> venue_service_pb2.CancelOrderResponse:
        await self._enter("CancelOrder", request, context)
        answer = self._cancels.get(request.idempotency_key)
        if answer is None:
            answer = venue_service_pb2.CancelOrderResponse(events=self._cancel(request))
            self._cancels[request.idempotency_key] = answer
        await self._leave("CancelOrder", context)
        return answer

    async def QueryOrder(  # noqa: N802 - gRPC method name
        self, request: venue_service_pb2.QueryOrderRequest, context: Context
    ) -> venue_service_pb2.QueryOrderResponse:
        await self._enter("QueryOrder", request, context)
        answer = venue_service_pb2.QueryOrderResponse(events=self._query(request))
        await self._leave("QueryOrder", context)
        return answer

    async def ListOpenOrders(  # noqa: N802 - gRPC method name
        self, request: venue_service_pb2.ListOpenOrdersRequest, context: Context
    ) -> venue_service_pb2.ListOpenOrdersResponse:
        await self._enter("ListOpenOrders", request, context)
        wanted = set(request.symbols)
        answer = venue_service_pb2.ListOpenOrdersResponse(
            orders=[
                _venue_order(order)
                for order in self.orders.values()
                if order.status in _OPEN and (not wanted or order.symbol in wanted)
            ]
        )
        await self._leave("ListOpenOrders", context)
        return answer

    async def ListPositions(  # noqa: N802 - gRPC method name
        self, request: venue_service_pb2.ListPositionsRequest, context: Context
    ) -> venue_service_pb2.ListPositionsResponse:
        await self._enter("ListPositions", request, context)
        wanted = set(request.symbols)
        answer = venue_service_pb2.ListPositionsResponse(
            positions=[
                venue_service_pb2.VenuePosition(
                    symbol=symbol,
                    side=types_pb2.SIDE_LONG if position.size > 0 else types_pb2.SIDE_SHORT,
                    size=_d(abs(position.size)),
                    entry_price=_d(position.entry_price),
                    unrealized_pnl=_d(Decimal(0)),
                    leverage=_d(self.leverage.get(symbol, Decimal(1))),
                )
                for symbol, position in sorted(self.positions.items())
                if position.size != 0 and (not wanted or symbol in wanted)
            ]
        )
        await self._leave("ListPositions", context)
        return answer

    async def GetBalance(  # noqa: N802 - gRPC method name
        self, request: venue_service_pb2.GetBalanceRequest, context: Context
    ) -> venue_service_pb2.GetBalanceResponse:
        await self._enter("GetBalance", request, context)
        answer = venue_service_pb2.GetBalanceResponse(
            asset=self.asset, wallet_balance=_d(self.balance), available_margin=_d(self.balance)
        )
        await self._leave("GetBalance", context)
        return answer

    async def GetInstruments(  # noqa: N802 - gRPC method name
        self, request: venue_service_pb2.GetInstrumentsRequest, context: Context
    ) -> venue_service_pb2.GetInstrumentsResponse:
        await self._enter("GetInstruments", request, context)
        symbols: Iterable[str] = request.symbols or sorted(self.instruments)
        answer = venue_service_pb2.GetInstrumentsResponse(
            instruments=[self.instruments[symbol] for symbol in symbols if symbol in self.instruments]
        )
        await self._leave("GetInstruments", context)
        return answer

    async def StreamExecutions(  # noqa: N802 - gRPC method name
        self, request: venue_service_pb2.StreamExecutionsRequest, context: Context
    ) -> AsyncIterator[venue_service_pb2.StreamExecutionsResponse]:
        await self._enter("StreamExecutions", request, context)
        await self._leave("StreamExecutions", context)
        after = request.after_position
        if not after:
            index = len(self.executions)
        elif after.isdigit() and int(after) <= len(self.executions):
            index = int(after)
        else:
            await context.abort(grpc.StatusCode.OUT_OF_RANGE, f"unknown position {after!r}")
        if after and self._replay:
            index, self._replay = max(0, index - self._replay), 0
        epoch = self._epoch
        while True:
            changed = self._changed
            while index < len(self.executions):
                yield self.executions[index]
                index += 1
            if self._epoch != epoch:
                await context.abort(grpc.StatusCode.UNAVAILABLE, "injected: stream disconnected")
            if index == len(self.executions):
                await changed.wait()

    async def StreamMarkPrices(  # noqa: N802 - gRPC method name
        self, request: venue_service_pb2.StreamMarkPricesRequest, context: Context
    ) -> AsyncIterator[venue_service_pb2.StreamMarkPricesResponse]:
        await self._enter("StreamMarkPrices", request, context)
        await self._leave("StreamMarkPrices", context)
        wanted = set(request.symbols)
        epoch = self._epoch
        while True:
            changed = self._changed
            while self._marks:
                mark = self._marks.popleft()
                if not wanted or mark.symbol in wanted:
                    yield venue_service_pb2.StreamMarkPricesResponse(mark_price=mark)
            if self._epoch != epoch:
                await context.abort(grpc.StatusCode.UNAVAILABLE, "injected: stream disconnected")
            if not self._marks:
                await changed.wait()


def _check(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"unknown VenueService method {method!r}; one of {METHODS}")


def _instrument(symbol: str, step: str, tick: str, minimum: str) -> kernel_input_pb2.Instrument:
    return kernel_input_pb2.Instrument(
        symbol=symbol,
        quantity_step=types_pb2.Decimal(value=step),
        price_tick=types_pb2.Decimal(value=tick),
        min_quantity=types_pb2.Decimal(value=minimum),
    )


def _venue_order(order: DoubleOrder) -> venue_service_pb2.VenueOrder:
    listed = venue_service_pb2.VenueOrder(
        client_order_id=order.client_order_id,
        venue_order_id=order.venue_order_id,
        symbol=order.symbol,
        side=order.side,
        order_type=order.order_type,
        quantity=_d(order.quantity),
        status=order.status,
        filled_quantity=_d(order.filled),
        reduce_only=order.reduce_only,
    )
    if order.limit_price is not None:
        listed.limit_price.CopyFrom(_d(order.limit_price))
    if order.average_price is not None:
        listed.average_price.CopyFrom(_d(order.average_price))
    return listed
