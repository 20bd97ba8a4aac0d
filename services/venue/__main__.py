"""``python -m services.venue``: run the venue service from PINK_VENUE_* settings."""

from __future__ import annotations

from services.common.entry import run_service
from services.venue.config import VenueSettings
from services.venue.server import serve


def main() -> int:
    return run_service("pink-venue", VenueSettings, serve, logger=__name__, failure_event="venue_failed_to_run")


if __name__ == "__main__":
    raise SystemExit(main())
