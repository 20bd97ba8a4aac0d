"""Faults on demand: the armed set, and the seeded draws that decide when one fires."""

from __future__ import annotations

import random
from typing import Literal

from services.venue.sim.config import FaultSettings

__all__ = ["FaultKind", "Faults"]

FaultKind = Literal[
    "http_error",
    "rate_limit",
    "drop_after_execute",
    "duplicate_event",
    "reorder_event",
    "cancel_fill_race",
    "stale_read",
    "query_miss",
    "ws_disconnect",
]


class Faults:
    """The faults armed now. ``*_count`` fires on the next N occasions; ``*_rate`` per occasion, seeded."""

    def __init__(self, settings: FaultSettings, seed: int) -> None:
        self.settings = settings
        self._rng = random.Random(f"faults:{seed}")  # noqa: S311  # a simulation, not cryptography
        self._counts: dict[str, int] = {}
        self._load(settings)

    def _load(self, settings: FaultSettings) -> None:
        self.settings = settings
        self._counts = {
            name.removesuffix("_count"): value
            for name, value in settings.model_dump().items()
            if name.endswith("_count")
        }

    def update(self, changes: dict[str, object]) -> FaultSettings:
        """Merge ``changes`` into the armed faults (validated as :class:`FaultSettings`)."""
        merged = {**self.settings.model_dump(), **self.remaining(), **changes}
        self._load(FaultSettings.model_validate(merged))
        return self.settings

    def reset(self) -> None:
        self._load(FaultSettings())

    def remaining(self) -> dict[str, int]:
        return {f"{name}_count": left for name, left in self._counts.items()}

    def fires(self, kind: FaultKind) -> bool:
        """Whether ``kind`` fires on this occasion (consumes one count, or draws from the RNG)."""
        left = self._counts.get(kind, 0)
        if left > 0:
            self._counts[kind] = left - 1
            return True
        rate = getattr(self.settings, f"{kind}_rate", 0.0)
        return bool(rate) and self._rng.random() < rate

    def armed(self, kind: FaultKind) -> bool:
        return self._counts.get(kind, 0) > 0
