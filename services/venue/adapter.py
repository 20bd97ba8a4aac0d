"""The BingX adapter assembled: one session, the REST client, the streams and their tasks.

:meth:`Adapter.start` verifies the account (a signed balance read) and loads the instruments
before anything else; then it starts the supervised tasks: the user stream, the processing of
its order updates (one task, in order), the gap-fill loop, the mark prices and the instrument
refresher. :attr:`Adapter.ready` holds once the instruments are loaded and the user stream is
connected. :meth:`Adapter.stop` cancels and awaits every task, then closes the session.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from typing import Any, Final

import aiohttp
from opentelemetry.trace import Tracer

from services.common.config import ConfigError
from services.common.logging import get_logger
from services.common.proto import venue_event_pb2
from services.venue.account import Account
from services.venue.bingx.client import BingXClient, BingXError, OutcomeUnknownError, RateLimitedError
from services.venue.bingx.instruments import InstrumentCache, parse_contracts
from services.venue.bingx.ratelimit import RateBudget
from services.venue.bingx.wire import WireError, stream_update
from services.venue.config import VenueSettings
from services.venue.events import stream_event
from services.venue.executions import ExecutionLog
from services.venue.gapfill import GapFill
from services.venue.metrics import VenueMetrics
from services.venue.stream.market import MarkPrices
from services.venue.stream.user import UserStream
from services.venue.stream.ws import backoff
from services.venue.trading import Trading

__all__ = ["Adapter"]

log = get_logger(__name__)

CONTRACTS: Final = "/openApi/swap/v2/quote/contracts"
_FILLS = frozenset({venue_event_pb2.VENUE_EVENT_KIND_PARTIAL_FILL, venue_event_pb2.VENUE_EVENT_KIND_FILL})
_VENUE_ERRORS = (BingXError, OutcomeUnknownError, RateLimitedError, WireError)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def new_session(settings: VenueSettings) -> aiohttp.ClientSession:
    """The one HTTP session: connection reuse, a DNS cache, proxies from the environment if asked."""
    connector = aiohttp.TCPConnector(
        limit=64,
        ttl_dns_cache=settings.dns_cache_seconds,
        keepalive_timeout=settings.keepalive_timeout_seconds,
    )
    return aiohttp.ClientSession(
        connector=connector,
        trust_env=settings.trust_env,
        timeout=aiohttp.ClientTimeout(total=settings.request_timeout_seconds),
    )


class Adapter:
    def __init__(self, settings: VenueSettings, metrics: VenueMetrics, tracer: Tracer) -> None:
        self.settings = settings
        self.metrics = metrics
        api_key, secret_key = settings.credentials()
        self.session = new_session(settings)
        self.client = BingXClient(
            rest_root=settings.rest_root,
            api_key=api_key,
            secret_key=secret_key,
            timeout=settings.request_timeout_seconds,
            recv_window_ms=settings.recv_window_ms,
            read_retries=settings.read_retries,
            rate_limit_retries=settings.rate_limit_retries,
            budget=RateBudget(margin=settings.rate_margin_seconds),
            metrics=metrics,
            tracer=tracer,
            session=self.session,
        )
        self.instruments = InstrumentCache()
        self.executions = ExecutionLog(settings.execution_log_size, metrics)
        self.marks = MarkPrices(
            self.session,
            settings.ws_root,
            settings.symbols,
            metrics,
            idle_seconds=settings.stream_idle_seconds,
            backoff_initial=settings.reconnect_initial_seconds,
            backoff_cap=settings.reconnect_max_seconds,
        )
        self.user_stream = UserStream(
            self.client,
            settings.ws_root,
            metrics,
            on_order_update=self._queue_update,
            on_connected=self._connected,
            keepalive_seconds=settings.keepalive_seconds,
            idle_seconds=settings.stream_idle_seconds,
            backoff_initial=settings.reconnect_initial_seconds,
            backoff_cap=settings.reconnect_max_seconds,
        )
        self.trading = Trading(
            self.client,
            self.instruments,
            self.executions,
            self.marks.latest,
            metrics,
            hedge_mode=settings.hedge_mode,
            write_attempts=settings.write_attempts,
            ack_wait_seconds=settings.ack_wait_seconds,
            stream_connected=self.user_stream.connected.is_set,
        )
        self.account = Account(self.client)
        self.gap_fill = GapFill(
            self.client,
            self.trading,
            self.executions,
            metrics,
            every_seconds=settings.gap_fill_seconds,
            lookback_seconds=settings.startup_lookback_seconds,
        )
        # (receive time in ms, message): the receive time is taken when the stream delivers it.
        self._updates: asyncio.Queue[tuple[int, Mapping[str, Any]]] = asyncio.Queue()
        # The gap-fill run the latest (re)connect of the user stream asked for.
        self._connect_gap_fill = 0
        self._tasks: list[asyncio.Task[None]] = []

    # ------------------------------------------------------------------ life cycle

    async def start(self) -> None:
        """Verifies the account and loads instruments (raising if it cannot), then starts the tasks."""
        await self.account.balance()
        await self.refresh_instruments()
        missing = [symbol for symbol in self.settings.symbols if self.instruments.get(symbol) is None]
        if missing:
            raise ConfigError(f"PINK_VENUE_SYMBOLS: not listed by BingX: {', '.join(missing)}")
        log.info("venue_account_verified", environment=self.settings.environment, symbols=self.settings.symbols)
        for name, body in (
            ("user-stream", self.user_stream.run),
            ("order-updates", self._process_updates),
            ("gap-fill", self.gap_fill.loop),
            ("mark-prices", self.marks.run),
            ("instruments", self._refresh_instruments_loop),
        ):
            self._tasks.append(asyncio.create_task(self._supervise(name, body), name=f"venue-{name}"))

    @property
    def ready(self) -> bool:
        return self.instruments.loaded and self.user_stream.connected.is_set()

    async def wait_ready(self) -> None:
        """Until the user stream is connected and a first gap-fill has run (what it missed is in the log)."""
        await self.user_stream.connected.wait()
        await self.gap_fill.run("startup")

    async def wait_caught_up(self) -> None:
        """Until the gap-fill the latest (re)connect asked for has completed: what the stream missed is logged."""
        await self.gap_fill.wait_completed(self._connect_gap_fill)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await self.session.close()
        log.info("venue_adapter_stopped")

    async def _supervise(self, name: str, body: Callable[[], Awaitable[None]]) -> None:
        failures = 0
        while True:
            try:
                await body()
                log.error("venue_task_ended", task=name)
            except Exception:  # a supervisor outlives any bug: logged with its traceback, restarted
                log.exception("venue_task_failed", task=name)
            delay = backoff(failures, self.settings.reconnect_initial_seconds, self.settings.reconnect_max_seconds)
            failures += 1
            await asyncio.sleep(delay)

    # ------------------------------------------------------------------ instruments

    async def refresh_instruments(self) -> None:
        reply = await self.client.get(CONTRACTS, signed=False)
        table = parse_contracts(reply.data or [])
        self.instruments.replace(table, _now_ms())
        log.info("instruments_loaded", count=len(table))

    async def _refresh_instruments_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.instruments_refresh_seconds)
            try:
                await self.refresh_instruments()
            except _VENUE_ERRORS as error:
                log.warning(
                    "instruments_refresh_failed",
                    error=str(error),
                    kept_table_from_ms=self.instruments.loaded_ms,
                    action="tried again next period",
                )

    # ------------------------------------------------------------------ user stream

    def _connected(self) -> None:
        self._connect_gap_fill = self.gap_fill.request("connect")

    def _queue_update(self, message: Mapping[str, Any]) -> None:
        self._updates.put_nowait((_now_ms(), message))

    async def _process_updates(self) -> None:
        while True:
            received_ms, message = await self._updates.get()
            try:
                await self._apply(message, received_ms=received_ms)
            except _VENUE_ERRORS as error:
                log.exception("order_update_not_applied", error=str(error), action="gap-fill requested")
                self.gap_fill.request("update-failed")
            finally:
                self._updates.task_done()

    async def updates_settled(self) -> None:
        """Returns once every order update received so far has been applied."""
        await self._updates.join()

    async def _apply(self, message: Mapping[str, Any], *, received_ms: int) -> None:
        update = stream_update(message)
        event = stream_event(update, received_ms=received_ms)
        oid, cid = str(update.order_id), update.client_order_id
        if event is None:
            log.error(
                "order_update_incomplete",
                venue_order_id=oid,
                client_order_id=cid,
                execution=update.execution,
                status=update.raw_status,
                action="querying the order",
            )
            await self.trading.query(update.symbol, cid, oid, source="stream-query")
            return
        if event.kind == venue_event_pb2.VENUE_EVENT_KIND_UNKNOWN:
            self.metrics.unknown_status.inc()
            log.error(
                "order_update_unknown",
                venue_order_id=oid,
                client_order_id=cid,
                execution=update.execution,
                status=update.raw_status,
                venue_event_id=event.venue_event_id,
                action="UNKNOWN event, never taken as accepted; querying the order",
            )
            # The UNKNOWN first (the kernel queries too), then whatever the venue answers.
            self.executions.emit([event], source="stream")
            await self.trading.query(update.symbol, cid, oid, source="stream-query")
            return
        if self.executions.known(event.venue_event_id):
            self.metrics.duplicates.inc()
            return
        facts = self.executions.facts(client_order_id=cid, venue_order_id=oid)
        seen = facts.cumulative if facts is not None else Decimal(0)
        if event.kind in _FILLS:
            before = Decimal(event.cumulative_quantity.value) - Decimal(event.last_quantity.value)
            gap = before != seen or facts is None or not facts.accepted
        else:
            gap = event.HasField("cumulative_quantity") and Decimal(event.cumulative_quantity.value) != seen
        if gap:
            # Missing or out-of-order reports before this one: the order's truth first, in order.
            log.info("stream_gap_querying", venue_order_id=oid, client_order_id=cid, applied=str(seen))
            await self.trading.query(update.symbol, cid, oid, source="stream-query")
        self.executions.emit([event], source="stream")
