"""A rate budget that follows BingX's limits (API.md §3.4) so a burst never exceeds them.

Each request takes one slot in every window that covers it: its endpoint's per-UID window
(5/s, 2/s for a few), its endpoint's per-IP window (300 per 10 s) and its group's window
(trade/account 2000 per 10 s; market data 500 per 10 s and 1000 per minute). A request that
finds a window full waits until a slot leaves it.

Why slots are stamped when the answer arrives: BingX counts a request when it *arrives*,
somewhere between our send and our receipt of the answer. Counting a request from its answer
(and as inside the window while it is in flight) means a new request is sent at least a window
after the arrival of the one it replaces, whatever the network's latency or its jitter — so
the server never sees more than the limit in any window. Windows run on the monotonic clock,
widened by a small margin for clock granularity. After a refusal for rate (429 / 100410) the
endpoint is paused (:meth:`RateBudget.pause`).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

__all__ = ["Limit", "RateBudget", "Window", "limits_for"]

#: Endpoints with a tighter per-UID limit than the usual 5/s.
_TWO_PER_SECOND = ("/trade/marginType", "/positionSide/dual", "/trade/positionMargin", "/trade/cancelAllAfter")


@dataclass(frozen=True)
class Limit:
    count: int
    seconds: float


class _Slot:
    """One request's place in a window: ``inf`` while in flight, then when its answer came."""

    __slots__ = ("at",)

    def __init__(self) -> None:
        self.at = math.inf


class Window:
    """At most ``limit.count`` requests in any ``limit.seconds`` (+ margin), in-flight ones included."""

    def __init__(self, limit: Limit, margin: float) -> None:
        self.limit = limit
        self._span = limit.seconds + margin
        self._slots: deque[_Slot] = deque()

    def wait_needed(self, now: float) -> float | None:
        """0 when a slot is free; else seconds until one frees, or None while all are in flight."""
        while self._slots and self._slots[0].at <= now - self._span:
            self._slots.popleft()
        if len(self._slots) < self.limit.count:
            return 0.0
        active = [slot.at for slot in self._slots if slot.at > now - self._span]
        if len(active) < self.limit.count:
            return 0.0
        finished = min(active)
        return None if finished == math.inf else finished + self._span - now

    def take(self) -> _Slot:
        slot = _Slot()
        self._slots.append(slot)
        return slot


def limits_for(endpoint: str) -> tuple[tuple[str, Limit], ...]:
    """The windows of one endpoint (``"METHOD path"``): ``(window name, limit)``; empty when unmetered."""
    path = endpoint.partition(" ")[2]
    if path.endswith("/server/time") or "/userDataStream" in path:
        return ()
    if "/quote/" in path or "/ticker/" in path or "/market/" in path:
        return (("group:market", Limit(500, 10.0)), ("group:market:minute", Limit(1000, 60.0)))
    per_second = 2 if path.endswith(_TWO_PER_SECOND) else 5
    return (
        (f"uid:{endpoint}", Limit(per_second, 1.0)),
        (f"ip:{endpoint}", Limit(300, 10.0)),
        ("group:trade", Limit(2000, 10.0)),
    )


class RateBudget:
    """Shared by every request of one account (all on one event loop, so no lock is needed)."""

    def __init__(self, *, margin: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._margin = margin
        self._clock = clock
        self._windows: dict[str, Window] = {}
        self._paused_until: dict[str, float] = {}
        self._released = asyncio.Event()

    def _windows_of(self, key: str) -> list[Window]:
        windows = []
        for name, limit in limits_for(key):
            window = self._windows.get(name)
            if window is None:
                window = self._windows[name] = Window(limit, self._margin)
            windows.append(window)
        return windows

    @asynccontextmanager
    async def slot(self, key: str) -> AsyncIterator[float]:
        """Waits until ``key`` (``"METHOD path"``) may be sent, holds its slots while the request is
        in flight (yielding the seconds waited) and stamps them when it ends."""
        windows = self._windows_of(key)
        started = self._clock()
        while True:
            now = self._clock()
            waits = [window.wait_needed(now) for window in windows]
            if any(wait is None for wait in waits):
                await self._released.wait()  # every request ends (each has a timeout)
                continue
            wait = max([self._paused_until.get(key, 0.0) - now, *(w for w in waits if w is not None), 0.0])
            if wait <= 0:
                break
            await asyncio.sleep(wait)
        slots = [window.take() for window in windows]
        try:
            yield self._clock() - started
        finally:
            ended = self._clock()
            for taken in slots:
                taken.at = ended
            released, self._released = self._released, asyncio.Event()
            released.set()

    async def acquire(self, key: str) -> float:
        """A slot for a request that completes at once (tests and tools); the seconds waited."""
        async with self.slot(key) as waited:
            return waited

    def pause(self, key: str, seconds: float) -> None:
        """No request to ``key`` for ``seconds`` (after a refusal for rate)."""
        self._paused_until[key] = max(self._paused_until.get(key, 0.0), self._clock() + seconds)
