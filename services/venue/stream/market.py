"""Mark prices from the market WebSocket (``<symbol>@markPrice``, API.md §7), fanned out.

One connection subscribes every configured symbol; each update becomes a ``MarkPrice`` for
every subscriber's queue and the latest price per symbol (the notional check of MARKET
orders). A new subscriber gets the latest mark of each symbol first. A subscriber that falls
behind loses its oldest prices, with a warning: a newer mark supersedes an older one.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Final

import aiohttp

from services.common.logging import get_logger
from services.common.proto import kernel_input_pb2
from services.venue.bingx.wire import WireError, decimal_or_none
from services.venue.events import dec, timestamp
from services.venue.metrics import VenueMetrics
from services.venue.stream.ws import StreamClosedError, backoff, messages

__all__ = ["MarkPrices"]

log = get_logger(__name__)

_QUEUE: Final = 10_000


class MarkPrices:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        ws_root: str,
        symbols: list[str],
        metrics: VenueMetrics,
        *,
        idle_seconds: float,
        backoff_initial: float,
        backoff_cap: float,
    ) -> None:
        self._session = session
        self._ws_root = ws_root
        self._symbols = symbols
        self._metrics = metrics
        self._idle = idle_seconds
        self._backoff = (backoff_initial, backoff_cap)
        #: Latest mark price per symbol (and as sent, for new subscribers).
        self.latest: dict[str, Decimal] = {}
        self._marks: dict[str, kernel_input_pb2.MarkPrice] = {}
        self.connected = asyncio.Event()
        self._subscribers: set[asyncio.Queue[kernel_input_pb2.MarkPrice]] = set()

    @contextlib.contextmanager
    def subscribe(self) -> Iterator[asyncio.Queue[kernel_input_pb2.MarkPrice]]:
        queue: asyncio.Queue[kernel_input_pb2.MarkPrice] = asyncio.Queue(_QUEUE)
        # The latest mark of every symbol first: a new subscriber need not wait for a move.
        for symbol in sorted(self._marks):
            queue.put_nowait(self._marks[symbol])
        self._subscribers.add(queue)
        try:
            yield queue
        finally:
            self._subscribers.discard(queue)

    async def run(self) -> None:
        failures = 0
        while True:
            try:
                await self._read()
            except (aiohttp.ClientError, TimeoutError, StreamClosedError) as error:
                detail = str(error) if isinstance(error, StreamClosedError) else type(error).__name__
                log.warning("mark_stream_lost", error=detail)
            finally:
                self.connected.clear()
            self._metrics.reconnects.labels("market").inc()
            delay = backoff(failures, *self._backoff)
            failures += 1
            await asyncio.sleep(delay)

    async def _read(self) -> None:
        async with self._session.ws_connect(self._ws_root, autoping=True) as ws:
            for symbol in self._symbols:
                await ws.send_json({"id": uuid.uuid4().hex, "reqType": "sub", "dataType": f"{symbol}@markPrice"})
            self.connected.set()
            log.info("mark_stream_connected", symbols=self._symbols)
            async for message in messages(ws, self._idle):
                topic = str(message.get("dataType") or "")
                if topic.endswith("@markPrice"):
                    self._publish(message.get("data"))
                elif message.get("code") not in (0, None):
                    log.error("mark_subscription_refused", code=message.get("code"), msg=message.get("msg"))

    def _publish(self, data: object) -> None:
        if not isinstance(data, dict):
            log.error("mark_price_without_data")
            return
        try:
            price = decimal_or_none(data.get("p"))
        except WireError as error:
            log.exception("mark_price_malformed", error=str(error))
            return
        event_ms = data.get("E")
        symbol = str(data.get("s") or "")
        if price is None or price <= 0 or not isinstance(event_ms, int) or not symbol:
            log.error("mark_price_incomplete", symbol=symbol)
            return
        self.latest[symbol] = price
        mark = kernel_input_pb2.MarkPrice(symbol=symbol, price=dec(price), exchange_time=timestamp(event_ms))
        self._marks[symbol] = mark
        for queue in self._subscribers:
            if queue.full():
                queue.get_nowait()
                log.warning("mark_subscriber_behind", symbol=symbol, action="oldest mark dropped")
            queue.put_nowait(mark)
