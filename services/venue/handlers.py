"""``pink.v1.VenueService`` over the adapter: requests in, VenueEvents and venue views out.

Status codes: a request that breaks the contract is INVALID_ARGUMENT (field violations); a
venue that refuses for rate is RESOURCE_EXHAUSTED and one that cannot be read UNAVAILABLE
(the kernel retries both with the same key); a resume position of another life of the log
is OUT_OF_RANGE. Venue answers (rejections included) are events, not errors.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, NoReturn, TypeAlias, TypeVar

import grpc
import grpc.aio

from services.common.errors import abort_invalid_argument, abort_with
from services.common.logging import get_logger
from services.common.proto import venue_service_pb2, venue_service_pb2_grpc
from services.venue.adapter import Adapter
from services.venue.bingx.client import BingXError, OutcomeUnknownError, RateLimitedError
from services.venue.bingx.wire import WireError
from services.venue.executions import InvalidPositionError, PositionLostError
from services.venue.trading import InvalidRequestError

__all__ = ["VenueServicer"]

log = get_logger(__name__)

Context: TypeAlias = grpc.aio.ServicerContext[Any, Any]
R = TypeVar("R")


async def _fail(context: Context, method: str, error: Exception) -> NoReturn:
    if isinstance(error, InvalidRequestError):
        await abort_invalid_argument(context, f"{method}: {error}", [(error.field, error.problem)])
    if isinstance(error, RateLimitedError):
        await abort_with(context, grpc.StatusCode.RESOURCE_EXHAUSTED, str(error), reason="VENUE_RATE_LIMITED")
    if isinstance(error, OutcomeUnknownError | BingXError):
        await abort_with(context, grpc.StatusCode.UNAVAILABLE, str(error), reason="VENUE_UNAVAILABLE")
    if isinstance(error, WireError):
        log.error("venue_answer_malformed", method=method, error=str(error))
        await abort_with(
            context, grpc.StatusCode.UNAVAILABLE, f"malformed venue answer: {error}", reason="VENUE_MALFORMED"
        )
    raise error


def _idempotency_key(request: venue_service_pb2.PlaceOrderRequest | venue_service_pb2.CancelOrderRequest) -> str:
    """The request's idempotency key: required, since a retry must not place or cancel twice."""
    if not request.idempotency_key:
        raise InvalidRequestError("idempotency_key", "required")
    return request.idempotency_key


class VenueServicer(venue_service_pb2_grpc.VenueServiceServicer):
    def __init__(self, adapter: Adapter) -> None:
        self._adapter = adapter
        self._metrics = adapter.metrics

    async def _serve(self, method: str, context: Context, work: Callable[[], Awaitable[R]]) -> R:
        if not self._adapter.instruments.loaded:
            await abort_with(context, grpc.StatusCode.UNAVAILABLE, "venue not ready", reason="VENUE_NOT_READY")
        with self._metrics.rpc_latency.labels(method).time():
            try:
                return await work()
            except (InvalidRequestError, RateLimitedError, OutcomeUnknownError, BingXError, WireError) as error:
                await _fail(context, method, error)

    async def PlaceOrder(  # noqa: N802 - gRPC method name
        self, request: venue_service_pb2.PlaceOrderRequest, context: Context
    ) -> venue_service_pb2.PlaceOrderResponse:
        async def work() -> venue_service_pb2.PlaceOrderResponse:
            events = await self._adapter.trading.place(_idempotency_key(request), request.order)
            return venue_service_pb2.PlaceOrderResponse(events=events)

        return await self._serve("PlaceOrder", context, work)

    async def CancelOrder(  # noqa: N802 - gRPC method name
        self, request: venue_service_pb2.CancelOrderRequest, context: Context
    ) -> venue_service_pb2.CancelOrderResponse:
        async def work() -> venue_service_pb2.CancelOrderResponse:
            events = await self._adapter.trading.cancel(_idempotency_key(request), request.order)
            return venue_service_pb2.CancelOrderResponse(events=events)

        return await self._serve("CancelOrder", context, work)

    async def QueryOrder(  # noqa: N802 - gRPC method name
        self, request: venue_service_pb2.QueryOrderRequest, context: Context
    ) -> venue_service_pb2.QueryOrderResponse:
        async def work() -> venue_service_pb2.QueryOrderResponse:
            if not request.order.client_order_id and not request.order.venue_order_id:
                raise InvalidRequestError("order.client_order_id", "client_order_id or venue_order_id is required")
            events = await self._adapter.trading.query_order(request.order)
            return venue_service_pb2.QueryOrderResponse(events=events)

        return await self._serve("QueryOrder", context, work)

    async def ListOpenOrders(  # noqa: N802 - gRPC method name
        self, request: venue_service_pb2.ListOpenOrdersRequest, context: Context
    ) -> venue_service_pb2.ListOpenOrdersResponse:
        async def work() -> venue_service_pb2.ListOpenOrdersResponse:
            orders = await self._adapter.account.open_orders(list(request.symbols))
            return venue_service_pb2.ListOpenOrdersResponse(orders=orders)

        return await self._serve("ListOpenOrders", context, work)

    async def ListPositions(  # noqa: N802 - gRPC method name
        self, request: venue_service_pb2.ListPositionsRequest, context: Context
    ) -> venue_service_pb2.ListPositionsResponse:
        async def work() -> venue_service_pb2.ListPositionsResponse:
            positions = await self._adapter.account.positions(list(request.symbols))
            return venue_service_pb2.ListPositionsResponse(positions=positions)

        return await self._serve("ListPositions", context, work)

    async def GetBalance(  # noqa: N802 - gRPC method name
        self, request: venue_service_pb2.GetBalanceRequest, context: Context
    ) -> venue_service_pb2.GetBalanceResponse:
        return await self._serve("GetBalance", context, self._adapter.account.balance)

    async def GetInstruments(  # noqa: N802 - gRPC method name
        self, request: venue_service_pb2.GetInstrumentsRequest, context: Context
    ) -> venue_service_pb2.GetInstrumentsResponse:
        async def work() -> venue_service_pb2.GetInstrumentsResponse:
            cache = self._adapter.instruments
            chosen = [cache.get(symbol) for symbol in request.symbols] if request.symbols else cache.all()
            return venue_service_pb2.GetInstrumentsResponse(
                instruments=[instrument.to_proto() for instrument in chosen if instrument is not None]
            )

        return await self._serve("GetInstruments", context, work)

    async def StreamExecutions(  # noqa: N802 - gRPC method name
        self, request: venue_service_pb2.StreamExecutionsRequest, context: Context
    ) -> AsyncIterator[venue_service_pb2.StreamExecutionsResponse]:
        try:
            async for response in self._adapter.executions.follow(request.after_position):
                yield response
        except PositionLostError as error:
            await abort_with(context, grpc.StatusCode.OUT_OF_RANGE, str(error), reason="POSITION_LOST")
        except InvalidPositionError as error:
            await abort_invalid_argument(context, str(error), [("after_position", str(error))])

    async def StreamMarkPrices(  # noqa: N802 - gRPC method name
        self, request: venue_service_pb2.StreamMarkPricesRequest, context: Context
    ) -> AsyncIterator[venue_service_pb2.StreamMarkPricesResponse]:
        wanted = set(request.symbols)
        with self._adapter.marks.subscribe() as queue:
            while True:
                mark = await queue.get()
                if not wanted or mark.symbol in wanted:
                    yield venue_service_pb2.StreamMarkPricesResponse(mark_price=mark)
