"""One kernel per data directory: an exclusive lock held for the life of the process.

Two kernels appending to one journal would interleave records and corrupt it; the second one
to start is refused with a clear message instead. ``flock`` locks are released by the kernel
when the process dies, so a crash never leaves a stale lock behind.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
from pathlib import Path

from services.common.config import ConfigError
from services.common.logging import get_logger

log = get_logger(__name__)

LOCK_FILE = "LOCK"


class DataDirLock:
    """An exclusive ``flock`` on ``data_dir/LOCK`` (see the module docstring)."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @classmethod
    async def acquire(cls, data_dir: Path) -> DataDirLock:
        """Takes the lock, or raises ``ConfigError`` when another process holds it."""
        path = data_dir / LOCK_FILE

        def take() -> int:
            data_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
                os.close(fd)
                msg = (
                    f"{data_dir} is in use by another kernel (pid {holder}, lock {path}): one kernel per data directory"
                )
                raise ConfigError(msg) from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            return fd

        fd = await asyncio.to_thread(take)
        log.info("data_dir_locked", path=str(path))
        return cls(path, fd)

    async def release(self) -> None:
        """Releases the lock (idempotent)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
        log.info("data_dir_released", path=str(self.path))
