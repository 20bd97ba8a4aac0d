"""``python -m services.kernel``: run the kernel service from PINK_KERNEL_* settings."""

from __future__ import annotations

import asyncio
import sys

from services.common.config import ConfigError, load_settings
from services.common.logging import configure_logging, get_logger
from services.kernel.config import KernelSettings
from services.kernel.server import serve


def main() -> int:
    try:
        settings = load_settings(KernelSettings)
    except ConfigError as error:
        sys.stderr.write(f"pink-kernel: invalid configuration:\n{error}\n")
        return 2
    configure_logging("pink-kernel", settings.log_level)
    log = get_logger(__name__)
    try:
        return asyncio.run(serve(settings))
    except ConfigError as error:
        log.critical("invalid_configuration", error=str(error))
        return 2
    except Exception:
        # E.g. a journal that does not replay: the service must not start; say why, loudly.
        log.exception("kernel_failed_to_run")
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
