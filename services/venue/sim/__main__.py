"""``python -m services.venue.sim``: run the BingX simulator from PINK_SIM_* settings."""

from __future__ import annotations

from services.common.entry import run_service
from services.venue.sim.config import SimSettings
from services.venue.sim.server import serve


def main() -> int:
    # Only start-up failures (a port taken, a price CSV that does not parse) are logged; others raise.
    return run_service(
        "pink-sim",
        SimSettings,
        serve,
        logger=__name__,
        failure_event="simulator_failed_to_run",
        failures=(OSError, ValueError),
    )


if __name__ == "__main__":
    raise SystemExit(main())
