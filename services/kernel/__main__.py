"""``python -m services.kernel``: run the kernel service from PINK_KERNEL_* settings."""

from __future__ import annotations

from services.common.entry import run_service
from services.kernel.config import KernelSettings
from services.kernel.server import serve


def main() -> int:
    return run_service("pink-kernel", KernelSettings, serve, logger=__name__, failure_event="kernel_failed_to_run")


if __name__ == "__main__":
    raise SystemExit(main())
