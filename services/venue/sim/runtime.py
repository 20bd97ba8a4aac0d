"""The running simulator: settings, clock, engine, faults, rate limiter and stream hub together."""

from __future__ import annotations

from services.common.logging import get_logger
from services.venue.sim.clock import Clock
from services.venue.sim.config import SimSettings
from services.venue.sim.engine import Engine
from services.venue.sim.faults import Faults
from services.venue.sim.ratelimit import RateLimiter
from services.venue.sim.state import State
from services.venue.sim.streams import StreamHub

__all__ = ["Simulator"]

_log = get_logger(__name__)


class Simulator:
    def __init__(self, settings: SimSettings, clock: Clock) -> None:
        self.settings = settings
        self.clock = clock
        self.engine = Engine(settings, clock)
        self.faults = Faults(settings.faults, settings.seed)
        self.limiter = RateLimiter()
        self.hub = StreamHub(settings, clock, self.faults, self.engine)
        self.engine.subscribe(self.hub.publish)
        # The state "stale REST snapshots" serves: captured when that fault is armed.
        self.stale: State | None = self.engine.snapshot() if self.faults.armed("stale_read") else None
        # Last cancel attempt per order id / client id (BingX allows one per second, code 109201).
        self.cancel_attempts: dict[str, int] = {}
        # cancelAllAfter: when (ms) every open order is cancelled unless renewed; None = off.
        self.cancel_deadline: int | None = None

    async def housekeeping(self) -> list[str]:
        """Time-driven duties: dead-man switch, listen-key expiry, heartbeats; the keys that expired."""
        now = self.clock.now_ms()
        if self.cancel_deadline is not None and now >= self.cancel_deadline:
            self.cancel_deadline = None
            cancelled = self.engine.cancel_all(None)
            _log.info("cancel_all_after_fired", cancelled=len(cancelled))
        # One cancel per order per second (109201): older attempts no longer matter.
        self.cancel_attempts = {key: at for key, at in self.cancel_attempts.items() if now - at < 1000}
        expired = self.hub.sweep()
        await self.hub.heartbeat()
        return expired

    def arm_stale_reads(self) -> None:
        self.stale = self.engine.snapshot()
