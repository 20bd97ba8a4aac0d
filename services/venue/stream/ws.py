"""What both BingX WebSockets share: gzip frames, Ping/Pong, an idle limit, reconnect backoff."""

from __future__ import annotations

import gzip
import json
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import aiohttp

from services.common.logging import get_logger

__all__ = ["StreamClosedError", "backoff", "messages"]

log = get_logger(__name__)


class StreamClosedError(Exception):
    """The server closed the connection or it went silent."""


def backoff(failures: int, initial: float, cap: float) -> float:
    """Seconds before reconnect number ``failures`` (0-based): ``initial * 2**n``, at most ``cap``."""
    return float(min(cap, initial * 2 ** min(failures, 30)))


async def messages(ws: aiohttp.ClientWebSocketResponse, idle_seconds: float) -> AsyncIterator[dict[str, Any]]:
    """JSON messages of ``ws`` (gzip or text frames), answering ``Ping`` with ``Pong``.

    Raises :class:`StreamClosedError` when the server closes, errors, or sends nothing (BingX pings
    every 5 s) for ``idle_seconds``.
    """
    while True:
        try:
            message = await ws.receive(timeout=idle_seconds)
        except TimeoutError:
            raise StreamClosedError(f"no frame for {idle_seconds} s") from None
        if message.type == aiohttp.WSMsgType.BINARY:
            text = gzip.decompress(message.data).decode()
        elif message.type == aiohttp.WSMsgType.TEXT:
            text = str(message.data)
        elif message.type == aiohttp.WSMsgType.ERROR:
            raise StreamClosedError(f"error: {type(ws.exception()).__name__}")
        else:
            raise StreamClosedError(f"closed ({message.type.name}, code {ws.close_code})")
        if text == "Ping":
            await ws.send_str("Pong")
            continue
        if text == "Pong":
            continue
        try:
            payload = json.loads(text, parse_float=Decimal)
        except json.JSONDecodeError:
            log.exception("stream_frame_not_json", length=len(text))
            continue
        if isinstance(payload, dict):
            yield payload
        else:
            log.error("stream_frame_not_an_object", kind=type(payload).__name__)
