"""Readiness follows the user stream: health NOT_SERVING while it is down longer than the grace.

Without the user-data stream fills and order updates from BingX go unseen, so the venue is not
ready while it is down. A drop shorter than ``grace_seconds`` changes nothing (an ordinary
reconnect must not flap readiness). Past the grace, health goes NOT_SERVING: a WARNING
``venue_health_withdrawn`` with how long the stream has been down, and the counter
``pink_venue_health_withdrawals{reason="user_stream"}``. Health comes back SERVING (INFO
``venue_health_restored``) once the stream is connected again and the gap-fill that reconnect
asked for has completed, so what the stream missed is in the execution log first.

Once ``stop`` is set (SIGTERM/SIGINT) shutdown owns health: nothing here changes it again, and
the service's ``ServiceTasks`` cancels :meth:`UserStreamReadiness.run` as its first shutdown step.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Final

from services.common.logging import get_logger
from services.venue.metrics import VenueMetrics
from services.venue.stream.user import UserStream

__all__ = ["UserStreamReadiness"]

log = get_logger(__name__)

REASON: Final = "user_stream"


class UserStreamReadiness:
    def __init__(
        self,
        stream: UserStream,
        metrics: VenueMetrics,
        *,
        caught_up: Callable[[], Awaitable[None]],
        set_serving: Callable[[bool], Awaitable[None]],
        grace_seconds: float,
        stop: asyncio.Event,
    ) -> None:
        self._stream = stream
        self._metrics = metrics
        self._caught_up = caught_up
        self._set_serving = set_serving
        self._grace = grace_seconds
        self._stop = stop
        #: True while health is withdrawn because of the stream.
        self.withdrawn = False

    async def run(self) -> None:
        """Follows the stream (the service is SERVING when called) until cancelled; raises what fails."""
        stream = self._stream
        while True:
            await stream.disconnected.wait()
            outage = stream.down_since if stream.down_since is not None else time.monotonic()
            remaining = outage + self._grace - time.monotonic()
            if remaining > 0:
                try:
                    await asyncio.wait_for(stream.connected.wait(), remaining)
                except TimeoutError:
                    pass
                else:
                    continue  # back within the grace: readiness untouched
            await self._withdraw(time.monotonic() - outage)
            await self._until_caught_up()
            await self._restore(time.monotonic() - outage)

    async def _until_caught_up(self) -> None:
        """Until the stream is connected and its reconnect gap-fill has completed (a new drop starts over)."""
        stream = self._stream
        while True:
            await stream.connected.wait()
            caught_up = await _until_either(self._caught_up(), stream.disconnected.wait())
            if caught_up.done() and not caught_up.cancelled():
                caught_up.result()  # raises if the wait itself failed
                if stream.connected.is_set():
                    return
            log.info(
                "user_stream_lost_before_gap_fill", connections=stream.connections, action="health stays withdrawn"
            )

    async def _withdraw(self, down_seconds: float) -> None:
        if self._stop.is_set():
            return  # shutting down: health is already NOT_SERVING and stays so
        self.withdrawn = True
        self._metrics.health_withdrawals.labels(REASON).inc()
        log.warning(
            "venue_health_withdrawn",
            reason=REASON,
            down_seconds=round(down_seconds, 3),
            grace_seconds=self._grace,
            connections=self._stream.connections,
            action="NOT_SERVING until the user stream is back and gap-filled",
        )
        await self._set_serving(False)

    async def _restore(self, down_seconds: float) -> None:
        if self._stop.is_set():
            return  # never SERVING again once shutdown began
        self.withdrawn = False
        log.info(
            "venue_health_restored",
            reason=REASON,
            down_seconds=round(down_seconds, 3),
            connections=self._stream.connections,
        )
        await self._set_serving(True)


async def _until_either(main: Awaitable[None], other: Awaitable[object]) -> asyncio.Future[None]:
    """Runs both until one of them finishes, then cancels both; returns ``main``'s future."""
    main_done = asyncio.ensure_future(main)
    other_done = asyncio.ensure_future(other)
    try:
        await asyncio.wait({main_done, other_done}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        main_done.cancel()
        other_done.cancel()
    return main_done
