"""``python -m services.venue``: run the venue service from PINK_VENUE_* settings."""

from __future__ import annotations

import asyncio
import sys

from services.common.config import ConfigError, load_settings
from services.common.logging import configure_logging, get_logger
from services.venue.config import VenueSettings
from services.venue.server import serve


def main() -> int:
    try:
        settings = load_settings(VenueSettings)
    except ConfigError as error:
        sys.stderr.write(f"pink-venue: invalid configuration:\n{error}\n")
        return 2
    configure_logging("pink-venue", settings.log_level)
    log = get_logger(__name__)
    try:
        return asyncio.run(serve(settings))
    except ConfigError as error:
        log.critical("invalid_configuration", error=str(error))
        return 2
    except Exception:
        log.exception("venue_failed_to_run")
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
