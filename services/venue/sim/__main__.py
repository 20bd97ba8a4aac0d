"""``python -m services.venue.sim``: run the BingX simulator from PINK_SIM_* settings."""

from __future__ import annotations

import asyncio
import sys

from services.common.config import ConfigError, load_settings
from services.common.logging import configure_logging, get_logger
from services.venue.sim.config import SimSettings
from services.venue.sim.server import serve


def main() -> int:
    try:
        settings = load_settings(SimSettings)
    except ConfigError as error:
        sys.stderr.write(f"pink-sim: invalid configuration:\n{error}\n")
        return 2
    configure_logging("pink-sim", settings.log_level)
    log = get_logger(__name__)
    try:
        return asyncio.run(serve(settings))
    except (OSError, ValueError) as error:
        # E.g. the port is taken or the price CSV does not parse: say why, loudly.
        log.exception("simulator_failed_to_run", error=str(error))
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
