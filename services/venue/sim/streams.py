"""WebSocket streams at ``/swap-market``: the user-data stream (``?listenKey=``) and market data.

Every server message is a gzip-compressed binary frame (API.md §6.2), ``Ping`` included; the
client answers ``Pong`` (text or gzip) and is dropped when a ``Ping`` stays unanswered for
``pong_timeout_seconds``. Listen keys live ``listen_key_minutes``. Heartbeats and key expiry run
on the simulator's clock (:meth:`StreamHub.heartbeat`, :meth:`StreamHub.sweep`), so a test moves
them with ``POST /_sim/clock`` instead of waiting.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from aiohttp import WSMsgType, web

from services.common.logging import get_logger
from services.venue.sim.clock import Clock
from services.venue.sim.config import SimSettings
from services.venue.sim.engine import Engine
from services.venue.sim.events import (
    account_config_update,
    account_update,
    book_ticker_frame,
    last_price_frame,
    mark_price_frame,
    order_trade_update,
    trade_frame,
)
from services.venue.sim.faults import Faults
from services.venue.sim.state import AccountEvent, Event, OrderEvent, PublicTrade
from services.venue.sim.wire import Code, dumps

__all__ = ["Connection", "StreamHub"]

_log = get_logger(__name__)
MAX_TOPICS = 200
_GZIP_MAGIC = b"\x1f\x8b"
# How long a close frame may wait for the client's answer before the connection is aborted.
_CLOSE_WAIT_SECONDS = 5.0
_PRICE_TOPICS = ("markPrice", "lastPrice", "bookTicker")
_MARKET_TOPICS = ("trade", *_PRICE_TOPICS)


def gz(text: str) -> bytes:
    # mtime=0: identical frames for identical events (reproducible runs).
    return gzip.compress(text.encode(), mtime=0)


@dataclass(eq=False)
class Connection:
    ws: web.WebSocketResponse
    request: web.Request
    listen_key: str | None
    outbox: asyncio.Queue[bytes | None] = field(default_factory=asyncio.Queue)
    # Frames queued and not yet written; a client this far behind is cut off, as BingX does.
    max_backlog: int = 10_000
    topics: set[str] = field(default_factory=set)
    # Simulator-clock times (ms) of the last Ping sent and of the oldest one still unanswered.
    last_ping_ms: int = 0
    unanswered_since_ms: int | None = None
    # Set once the key expired: no further account data on this connection.
    expired: bool = False

    def send(self, text: str) -> None:
        if self.outbox.qsize() >= self.max_backlog:
            if self.request.transport is not None and not self.request.transport.is_closing():
                _log.warning("ws_client_too_slow", backlog=self.outbox.qsize(), user_stream=self.listen_key is not None)
                self.request.transport.abort()
            return
        self.outbox.put_nowait(gz(text))


class StreamHub:
    def __init__(self, settings: SimSettings, clock: Clock, faults: Faults, engine: Engine) -> None:
        self._settings = settings
        self._clock = clock
        self._faults = faults
        self._engine = engine
        self._rng = random.Random(f"listen-keys:{settings.seed}")  # noqa: S311  # a simulation, not cryptography
        self.listen_keys: dict[str, int] = {}
        self.connections: set[Connection] = set()
        self._held: str | None = None
        self._book_seq = 0

    # ------------------------------------------------------------------ listen keys

    def _life_ms(self) -> int:
        return self._settings.listen_key_minutes * 60_000

    def create_key(self) -> str:
        key = f"{self._rng.getrandbits(256):064x}"
        self.listen_keys[key] = self._clock.now_ms() + self._life_ms()
        return key

    def valid(self, key: str) -> bool:
        expires = self.listen_keys.get(key)
        return expires is not None and expires > self._clock.now_ms()

    def extend_key(self, key: str) -> bool:
        if not self.valid(key):
            return False
        self.listen_keys[key] = self._clock.now_ms() + self._life_ms()
        return True

    def delete_key(self, key: str) -> bool:
        """Forget ``key``; its connections get no further account data."""
        if self.listen_keys.pop(key, None) is None:
            return False
        for conn in self.connections:
            if conn.listen_key == key:
                conn.expired = True
        return True

    def expire(self, keys: Iterable[str] | None = None) -> list[str]:
        """Expire ``keys`` now (all by default) and tell their connections."""
        chosen = list(self.listen_keys) if keys is None else [k for k in keys if k in self.listen_keys]
        for key in chosen:
            self.listen_keys[key] = self._clock.now_ms()
        return self.sweep()

    def sweep(self) -> list[str]:
        """Drop the keys whose life ended and push ``listenKeyExpired`` to their connections.

        Also releases an event held back by the out-of-order fault when no later event came.
        """
        if self._held is not None:
            held, self._held = self._held, None
            self._to_users(held)
        now = self._clock.now_ms()
        ended = [key for key, expires in self.listen_keys.items() if expires <= now]
        for key in ended:
            del self.listen_keys[key]
            for conn in self.connections:
                if conn.listen_key == key and not conn.expired:
                    conn.expired = True
                    conn.send(dumps({"e": "listenKeyExpired", "E": now, "listenKey": key}))
        return ended

    # ------------------------------------------------------------------ publishing

    def _user_connections(self) -> list[Connection]:
        return [c for c in self.connections if c.listen_key is not None and not c.expired]

    def _to_users(self, text: str) -> None:
        users = self._user_connections()
        if users and self._faults.fires("ws_disconnect"):
            # The connections drop just before this event: it is lost to them (REST still has it).
            _log.info("ws_disconnect_injected", connections=len(users))
            for conn in users:
                self._cut(conn)
            return
        for conn in users:
            conn.send(text)

    def _deliver(self, text: str) -> None:
        """Send an account event, applying the duplicate / out-of-order faults."""
        if self._held is not None:
            held, self._held = self._held, None
            self._to_users(text)
            self._to_users(held)
            return
        if self._faults.fires("reorder_event"):
            # Held back and sent after the next event.
            self._held = text
            return
        self._to_users(text)
        if self._faults.fires("duplicate_event"):
            self._to_users(text)

    def publish(self, event: Event) -> None:
        """Engine listener: turn a domain event into frames for the connections that want it."""
        if isinstance(event, PublicTrade):
            self._market(f"{event.symbol}@trade", trade_frame(event))
            return
        state = self._engine.state
        if isinstance(event, OrderEvent):
            self._deliver(order_trade_update(event, state))
        elif isinstance(event, AccountEvent):
            self._deliver(account_update(event, state))
        else:
            self._deliver(account_config_update(event))

    def _market(self, topic: str, text: str) -> None:
        for conn in self.connections:
            if topic in conn.topics:
                conn.send(text)

    def price_tick(self, symbols: Iterable[str]) -> None:
        """Push mark price, last price and best bid/ask of ``symbols`` to their subscribers."""
        for symbol in symbols:
            for topic in _PRICE_TOPICS:
                self._market(f"{symbol}@{topic}", self._price_frame(symbol, topic))

    def _price_frame(self, symbol: str, topic: str) -> str:
        now = self._clock.now_ms()
        quote = self._engine.state.book.quote(symbol)
        if topic == "markPrice":
            return mark_price_frame(symbol, quote.last, now)
        if topic == "lastPrice":
            return last_price_frame(symbol, quote.last, now)
        self._book_seq += 1
        return book_ticker_frame(symbol, quote, now, self._book_seq)

    # ------------------------------------------------------------------ connections

    async def disconnect(self, *, user: bool, market: bool, abort: bool) -> int:
        """Close user and/or market connections (fault "WebSocket disconnects"); how many."""
        chosen = [
            c for c in self.connections if (c.listen_key is not None and user) or (c.listen_key is None and market)
        ]
        await asyncio.gather(*(self._close(conn, abort=abort) for conn in chosen))
        return len(chosen)

    def _cut(self, conn: Connection) -> None:
        """Abort the TCP connection: the client sees it vanish without a close frame."""
        self.connections.discard(conn)
        conn.outbox.put_nowait(None)
        if conn.request.transport is not None:
            conn.request.transport.abort()

    async def _close(self, conn: Connection, *, abort: bool) -> None:
        """A close frame (1001), or an abort; a client that does not answer the close is aborted."""
        if abort:
            self._cut(conn)
            return
        self.connections.discard(conn)
        conn.outbox.put_nowait(None)
        try:
            # aiohttp waits for the client's close frame; a dead client must not stall the caller.
            async with asyncio.timeout(_CLOSE_WAIT_SECONDS):
                await conn.ws.close(code=1001, message=b"server going away")
        except TimeoutError:
            _log.info("ws_close_unanswered", user_stream=conn.listen_key is not None)
            self._cut(conn)

    async def heartbeat(self) -> None:
        """Ping every connection each ``ping_seconds``; close those that left a Ping unanswered too long."""
        now = self._clock.now_ms()
        ping_ms = int(self._settings.ping_seconds * 1000)
        timeout_ms = int(self._settings.pong_timeout_seconds * 1000)
        silent: list[Connection] = []
        for conn in list(self.connections):
            if conn.unanswered_since_ms is not None and now - conn.unanswered_since_ms > timeout_ms:
                _log.info("ws_pong_timeout", user_stream=conn.listen_key is not None)
                silent.append(conn)
            elif now - conn.last_ping_ms >= ping_ms:
                conn.last_ping_ms = now
                if conn.unanswered_since_ms is None:
                    conn.unanswered_since_ms = now
                conn.send("Ping")
        await asyncio.gather(*(self._close(conn, abort=False) for conn in silent))

    def _subscribe(self, conn: Connection, message: dict[str, object]) -> None:
        request_id = message.get("id", "")
        data_type = message.get("dataType")
        kind = message.get("reqType")
        code, msg = 0, ""
        symbol, _, topic = data_type.partition("@") if isinstance(data_type, str) else ("", "", "")
        if not isinstance(data_type, str) or kind not in {"sub", "unsub"}:
            code, msg = Code.INVALID_PARAMETER, "reqType must be sub or unsub and dataType a string"
        elif symbol not in self._engine.state.specs or topic not in _MARKET_TOPICS:
            code, msg = Code.INVALID_PARAMETER, f"dataType {data_type} is not supported"
        elif kind == "unsub":
            conn.topics.discard(data_type)
        elif len(conn.topics) >= MAX_TOPICS and data_type not in conn.topics:
            code, msg = Code.WS_TOO_MANY_TOPICS, f"more than {MAX_TOPICS} topics on one connection"
        else:
            conn.topics.add(data_type)
        conn.send(dumps({"id": request_id, "code": code, "msg": msg, "dataType": "", "data": None}))

    def _on_text(self, conn: Connection, text: str) -> None:
        if text.strip() == "Pong":
            conn.unanswered_since_ms = None
            return
        if text.strip() == "Ping":
            conn.send("Pong")
            return
        try:
            message = json.loads(text, parse_float=Decimal)
        except json.JSONDecodeError:
            _log.info("ws_bad_message", length=len(text), user_stream=conn.listen_key is not None)
            conn.send(dumps({"code": Code.INVALID_PARAMETER, "msg": "message is not JSON", "data": None}))
            return
        if not isinstance(message, dict):
            conn.send(dumps({"code": Code.INVALID_PARAMETER, "msg": "message is not a JSON object", "data": None}))
            return
        self._subscribe(conn, message)

    async def serve(self, request: web.Request) -> web.StreamResponse:
        """``GET /swap-market[?listenKey=...]``."""
        key = request.query.get("listenKey")
        if key is not None and self._faults.settings.ws_refuse_user:
            _log.info("ws_user_stream_refused_injected")
            raise web.HTTPServiceUnavailable(text="user stream unavailable (fault ws_refuse_user)")
        if key is not None and not self.valid(key):
            raise web.HTTPNotFound(text="listenKey does not exist")
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        conn = Connection(ws=ws, request=request, listen_key=key, last_ping_ms=self._clock.now_ms())
        self.connections.add(conn)
        _log.info("ws_connected", user_stream=key is not None)
        sender = asyncio.create_task(self._send_loop(conn))
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self._on_text(conn, msg.data)
                elif msg.type == WSMsgType.BINARY:
                    self._on_binary(conn, msg.data)
        finally:
            self.connections.discard(conn)
            conn.outbox.put_nowait(None)
            await sender
            _log.info("ws_disconnected", user_stream=key is not None)
        return ws

    def _on_binary(self, conn: Connection, data: bytes) -> None:
        """A gzip frame (as the server sends them) or plain UTF-8 bytes; anything else is refused."""
        try:
            text = gzip.decompress(data).decode() if data[:2] == _GZIP_MAGIC else data.decode()
        except (OSError, EOFError, UnicodeDecodeError) as error:
            _log.info("ws_bad_binary_frame", length=len(data), error=str(error))
            conn.send(
                dumps({"code": Code.INVALID_PARAMETER, "msg": "binary frame is neither gzip nor UTF-8", "data": None})
            )
            return
        self._on_text(conn, text)

    async def _send_loop(self, conn: Connection) -> None:
        try:
            while (frame := await conn.outbox.get()) is not None:
                if conn.ws.closed:
                    return
                await conn.ws.send_bytes(frame)
        except ConnectionError as error:
            # The client went away mid-write; the receive loop sees the close and cleans up.
            _log.info("ws_send_failed", user_stream=conn.listen_key is not None, error=str(error))
