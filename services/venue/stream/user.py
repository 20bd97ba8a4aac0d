"""The user-data stream: the primary source of execution reports (API.md §6).

One supervised loop: create a listenKey, connect ``<ws>?listenKey=<key>``, read until the
connection ends, delete the key, reconnect with exponential backoff. A ``listenKeyExpired``
event (or a keepalive that finds the key gone) rotates to a new key at once, without backoff.
The key is kept alive every ``keepalive_seconds`` while connected. ``on_connected`` runs after
every (re)connect (the gap-fill); each ``ORDER_TRADE_UPDATE`` goes to ``on_order_update``
(which must not block: it queues). ``connected`` and ``disconnected`` are the two states as
events (exactly one is set; :attr:`down_since` is when the current outage began) and the
``pink_venue_user_stream_connected`` gauge follows them. The listenKey is a credential: it is
never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

import aiohttp

from services.common.logging import get_logger
from services.venue.bingx.client import BingXClient, BingXError, OutcomeUnknownError, RateLimitedError
from services.venue.metrics import VenueMetrics
from services.venue.stream.ws import StreamClosedError, backoff, messages

__all__ = ["LISTEN_KEY", "UserStream"]

log = get_logger(__name__)

LISTEN_KEY: Final = "/openApi/user/auth/userDataStream"
_DELETE_ATTEMPTS: Final = 2


class UserStream:
    def __init__(
        self,
        client: BingXClient,
        ws_root: str,
        metrics: VenueMetrics,
        *,
        on_order_update: Callable[[Mapping[str, Any]], None],
        on_connected: Callable[[], None],
        keepalive_seconds: float,
        idle_seconds: float,
        backoff_initial: float,
        backoff_cap: float,
    ) -> None:
        self._client = client
        self._ws_root = ws_root
        self._metrics = metrics
        self._on_order_update = on_order_update
        self._on_connected = on_connected
        self._keepalive_seconds = keepalive_seconds
        self._idle = idle_seconds
        self._backoff = (backoff_initial, backoff_cap)
        self.connected = asyncio.Event()
        #: Set while not connected (from construction until the first connection, and after each loss).
        self.disconnected = asyncio.Event()
        self.disconnected.set()
        #: ``time.monotonic()`` when the current outage began (construction for the first); None while connected.
        self.down_since: float | None = time.monotonic()
        metrics.user_stream_connected.set(0)
        #: Successful connections so far (tests and benchmarks read it).
        self.connections = 0
        self.rotations = 0
        self.keepalives = 0
        self._extended = asyncio.Event()

    async def wait_keepalives(self, count: int) -> None:
        """Returns once ``count`` keepalives have succeeded."""
        while self.keepalives < count:
            await self._extended.wait()

    async def run(self) -> None:
        """Connects, reads, reconnects, for ever (cancel to stop)."""
        failures = 0
        while True:
            try:
                key = await self._create_key()
            except (BingXError, OutcomeUnknownError, RateLimitedError) as error:
                log.warning("listen_key_create_failed", error=str(error))
                await asyncio.sleep(backoff(failures, *self._backoff))
                failures += 1
                continue
            rotate = False
            try:
                rotate = await self._read(key)
                failures = 0
            except (aiohttp.ClientError, TimeoutError, StreamClosedError) as error:
                # The class only for aiohttp errors: their text can carry the URL (the listenKey).
                detail = str(error) if isinstance(error, StreamClosedError) else type(error).__name__
                log.warning("user_stream_lost", error=detail, connections=self.connections)
            finally:
                self._mark_down()
            await self._delete_key(key)
            self._metrics.reconnects.labels("user").inc()
            if rotate:
                self.rotations += 1
                log.info("listen_key_rotated", rotations=self.rotations)
                continue
            delay = backoff(failures, *self._backoff)
            failures += 1
            log.info("user_stream_reconnecting", delay_seconds=delay, failures=failures)
            await asyncio.sleep(delay)

    def _mark_up(self) -> None:
        self.down_since = None
        self.disconnected.clear()
        self.connected.set()
        self._metrics.user_stream_connected.set(1)

    def _mark_down(self) -> None:
        """The connection ended (or never came up: then the outage simply goes on)."""
        if not self.connected.is_set():
            return
        self.down_since = time.monotonic()
        self.connected.clear()
        self.disconnected.set()
        self._metrics.user_stream_connected.set(0)

    async def _create_key(self) -> str:
        reply = await self._client.request("POST", LISTEN_KEY, signed=False)
        key = reply.data.get("listenKey") if isinstance(reply.data, dict) else None
        if not isinstance(key, str) or not key:
            raise OutcomeUnknownError(f"POST {LISTEN_KEY}", "answer without listenKey")
        return key

    async def _read(self, key: str) -> bool:
        """One connection; True when the key expired (rotate now), False when the connection ended."""
        session = self._client.session
        async with session.ws_connect(f"{self._ws_root}?listenKey={key}", autoping=True) as ws:
            self.connections += 1
            self._mark_up()
            log.info("user_stream_connected", connections=self.connections)
            self._on_connected()
            gone = asyncio.Event()
            keepalive = asyncio.create_task(self._keepalive(key, ws, gone))
            try:
                async for message in messages(ws, self._idle):
                    kind = message.get("e")
                    if kind == "ORDER_TRADE_UPDATE":
                        self._on_order_update(message)
                    elif kind == "listenKeyExpired":
                        log.warning("listen_key_expired", action="rotating to a new key now")
                        return True
                    elif kind in {"ACCOUNT_UPDATE", "ACCOUNT_CONFIG_UPDATE", "SNAPSHOT"}:
                        log.debug("user_stream_account_event", kind=kind)
                    else:
                        log.warning("user_stream_unknown_event", kind=str(kind))
            except StreamClosedError:
                if gone.is_set():
                    return True  # the keepalive found the key gone and closed the connection
                raise
            finally:
                keepalive.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await keepalive
        return False

    async def _keepalive(self, key: str, ws: aiohttp.ClientWebSocketResponse, gone: asyncio.Event) -> None:
        """Extends the key every period; sets ``gone`` and closes ``ws`` when BingX no longer knows it."""
        while True:
            await asyncio.sleep(self._keepalive_seconds)
            try:
                await self._client.request("PUT", LISTEN_KEY, {"listenKey": key}, signed=False)
                self.keepalives += 1
                extended, self._extended = self._extended, asyncio.Event()
                extended.set()
                log.debug("listen_key_extended", keepalives=self.keepalives)
            except BingXError as error:
                log.warning("listen_key_gone", code=error.code, action="rotating to a new key")
                gone.set()
                await ws.close()
                return
            except (OutcomeUnknownError, RateLimitedError) as error:
                log.warning("listen_key_keepalive_failed", error=str(error), action="tried again next period")

    async def _delete_key(self, key: str) -> None:
        for attempt in range(1, _DELETE_ATTEMPTS + 1):
            try:
                await self._client.request("DELETE", LISTEN_KEY, {"listenKey": key}, signed=False)
            except BingXError as error:
                # 404: already gone (expired); nothing left to delete.
                log.info("listen_key_delete_refused", code=error.code)
                return
            except (OutcomeUnknownError, RateLimitedError) as error:
                log.warning("listen_key_delete_failed", error=str(error), attempt=attempt)
            else:
                return
