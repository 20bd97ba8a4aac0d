"""The ``python -m`` entry point every long-running PINK service shares.

Exit status: what ``serve`` returns (0 on a clean stop); 2 on invalid configuration, whether
:func:`~services.common.config.load_settings` refuses the environment (written to stderr, before
logging is set up) or ``serve`` raises :class:`ConfigError` (logged ``invalid_configuration``);
1 when ``serve`` raises one of ``failures`` (logged as ``failure_event`` with the traceback).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from services.common.config import ConfigError, ServiceSettings, load_settings
from services.common.logging import configure_logging, get_logger

__all__ = ["run_service"]

SettingsT = TypeVar("SettingsT", bound=ServiceSettings)


def run_service(
    service: str,
    settings_type: type[SettingsT],
    serve: Callable[[SettingsT], Coroutine[Any, Any, int]],
    *,
    logger: str,
    failure_event: str,
    failures: tuple[type[Exception], ...] = (Exception,),
) -> int:
    """Load ``settings_type``, log as ``service`` under ``logger`` and run ``serve``; the exit status."""
    try:
        settings = load_settings(settings_type)
    except ConfigError as error:
        sys.stderr.write(f"{service}: invalid configuration:\n{error}\n")
        return 2
    configure_logging(service, settings.log_level)
    log = get_logger(logger)
    try:
        return asyncio.run(serve(settings))
    except ConfigError as error:
        log.critical("invalid_configuration", error=str(error))
        return 2
    except failures as error:
        # E.g. a journal that does not replay or a port that is taken: the service must not start; say why, loudly.
        log.exception(failure_event, error=str(error))
        return 1
