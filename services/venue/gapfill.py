"""REST gap-fill: what the user stream missed, after every (re)connect and on a schedule.

Two reads per run — open orders and the fills since the previous run (with an overlap) —
then a query of each order whose state the log does not match: open orders it never saw
acknowledged or whose filled quantity differs, orders with fills it has not finished, and
orders it believes working that are no longer open. Whatever those queries find is appended
to the execution log, which drops what it already holds. One run at a time: a request while a
run is in flight shares that run. Runs are numbered as they start: :meth:`request` answers the
number of the first run that starts after it, and :meth:`wait_completed` waits until that run
(or a later one) has completed.
"""

from __future__ import annotations

import asyncio
import time
from typing import Final

from services.common.logging import get_logger
from services.common.proto import venue_event_pb2
from services.venue.bingx.client import BingXClient, BingXError, OutcomeUnknownError, RateLimitedError
from services.venue.bingx.wire import OrderRecord, WireError, fill_record, order_record
from services.venue.executions import ExecutionLog
from services.venue.metrics import VenueMetrics
from services.venue.trading import FILLS, Trading

__all__ = ["GapFill"]

log = get_logger(__name__)

OPEN_ORDERS: Final = "/openApi/swap/v2/trade/openOrders"
_OVERLAP_MS: Final = 5_000


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class GapFill:
    def __init__(
        self,
        client: BingXClient,
        trading: Trading,
        executions: ExecutionLog,
        metrics: VenueMetrics,
        *,
        every_seconds: float,
        lookback_seconds: float,
    ) -> None:
        self._client = client
        self._trading = trading
        self._log = executions
        self._metrics = metrics
        self._every = every_seconds
        self._since_ms = _now_ms() - int(lookback_seconds * 1000)
        self._wanted = asyncio.Event()
        self._reason = "connect"
        self._running: asyncio.Future[int] | None = None
        #: Completed runs (:meth:`wait_runs` waits on it).
        self.runs = 0
        self._started = 0  # number of the newest run started
        self._completed = 0  # number of the newest run completed
        self._ran = asyncio.Event()

    def request(self, reason: str) -> int:
        """Asks the loop for a run now (after a (re)connect); the number of the run that will serve it.

        A run of the loop already in flight may have read too early: the loop runs again after
        it (it clears the request before each run), and that next run is the one answered.
        """
        self._reason = reason
        self._wanted.set()
        return self._started + 1

    async def wait_completed(self, number: int) -> None:
        """Returns once run ``number`` (from :meth:`request`) or a later one has completed."""
        while self._completed < number:
            await self._ran.wait()

    async def wait_runs(self, count: int) -> None:
        """Returns once ``count`` runs have completed."""
        while self.runs < count:
            await self._ran.wait()

    async def loop(self) -> None:
        """Runs on request and every ``every_seconds``, for ever."""
        while True:
            try:
                await asyncio.wait_for(self._wanted.wait(), self._every)
                reason = self._reason
            except TimeoutError:
                reason = "schedule"
            self._wanted.clear()
            try:
                await self.run(reason)
            except (BingXError, OutcomeUnknownError, RateLimitedError, WireError) as error:
                log.exception("gap_fill_failed", reason=reason, error=str(error), action="tried again next round")

    async def run(self, reason: str) -> int:
        """One run (or the one in flight); the number of reports it added."""
        if self._running is None or self._running.done():
            self._running = asyncio.ensure_future(self._run(reason))
        return await asyncio.shield(self._running)

    async def _run(self, reason: str) -> int:
        self._started += 1
        number = self._started
        started = _now_ms()
        self._metrics.gap_fills.labels(reason).inc()
        opened = await self._client.get(OPEN_ORDERS)
        open_orders = {record.order_id: record for record in map(order_record, opened.data.get("orders") or [])}
        fills = await self._client.get(
            FILLS, {"tradingUnit": "COIN", "startTs": self._since_ms - _OVERLAP_MS, "endTs": started + 1000}
        )
        filled: dict[int, tuple[str, str]] = {}
        for item in fills.data.get("fill_orders") or []:
            fill = fill_record(item)
            filled[fill.order_id] = (str(item.get("symbol", "")), str(item.get("clientOrderID") or ""))
        added = 0
        for record in open_orders.values():
            facts = self._log.facts(client_order_id=record.client_order_id, venue_order_id=str(record.order_id))
            if facts is None or not facts.accepted or facts.cumulative != record.executed:
                added += self._emit(await self._trading.truth(record))
        for order_id, (symbol, cid) in filled.items():
            facts = self._log.facts(client_order_id=cid, venue_order_id=str(order_id))
            if order_id in open_orders or (facts is not None and facts.terminal):
                continue
            added += await self._query(symbol, cid, str(order_id))
        for facts in self._log.working_orders():
            if int(facts.venue_order_id) not in open_orders and int(facts.venue_order_id) not in filled:
                added += await self._query(facts.symbol, facts.client_order_id, facts.venue_order_id)
        self._since_ms = started
        self.runs += 1
        self._completed = max(self._completed, number)
        ran, self._ran = self._ran, asyncio.Event()
        ran.set()
        log.info("gap_fill_done", reason=reason, added=added, open_orders=len(open_orders), fills=len(filled))
        return added

    async def _query(self, symbol: str, cid: str, order_id: str) -> int:
        record: OrderRecord | None = await self._trading.find(symbol, cid, order_id)
        if record is None:
            log.warning("gap_fill_order_not_found", client_order_id=cid, venue_order_id=order_id)
            return 0
        return self._emit(await self._trading.truth(record))

    def _emit(self, events: list[venue_event_pb2.VenueEvent]) -> int:
        added = self._log.emit(events, source="gapfill")
        if added:
            self._metrics.gap_fill_events.inc(len(added))
        return len(added)
