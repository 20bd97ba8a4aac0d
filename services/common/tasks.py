"""A service's long-running tasks, watched: one that ends unexpectedly stops the service.

Background tasks (the kernel's writer, venue link and timer, the venue's readiness watcher)
must run for as long as the service serves. A task that returns or raises while the service is
not stopping it is logged (CRITICAL, with its traceback) and ``on_failure`` is called (the
service shuts down): a service whose watcher died must not go on looking healthy.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any

from services.common.logging import get_logger

__all__ = ["ServiceTasks"]

log = get_logger(__name__)


class ServiceTasks:
    """Named tasks of one service, each watched (see the module docstring)."""

    def __init__(self, on_failure: Callable[[], None]) -> None:
        self._on_failure = on_failure
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._stopping: set[str] = set()
        #: Names of the tasks that ended unexpectedly.
        self.failed: list[str] = []

    def start(self, name: str, coroutine: Coroutine[Any, Any, None]) -> None:
        if name in self._tasks:
            coroutine.close()
            raise ValueError(f"a task named {name} is already running")
        task = asyncio.create_task(coroutine, name=name)
        self._tasks[name] = task
        task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        name = task.get_name()
        if name in self._stopping:
            return
        error = None if task.cancelled() else task.exception()
        log.critical("service_task_ended", task=name, error=repr(error), cancelled=task.cancelled(), exc_info=error)
        self.failed.append(name)
        self._on_failure()

    async def stop(self, names: Iterable[str]) -> None:
        """Cancels these tasks (an expected end) and waits for them."""
        chosen = [self._tasks[name] for name in names if name in self._tasks]
        for task in chosen:
            self._stopping.add(task.get_name())
            task.cancel()
        for task in chosen:
            with contextlib.suppress(asyncio.CancelledError):
                await task
            del self._tasks[task.get_name()]

    async def wait(self, name: str, seconds: float) -> bool:
        """Waits up to ``seconds`` for a task to end by itself (an expected end); False on timeout."""
        task = self._tasks.get(name)
        if task is None:
            return True
        self._stopping.add(name)
        done, _ = await asyncio.wait({task}, timeout=seconds)
        if not done:
            return False
        del self._tasks[name]
        return True

    def stopper(self, *names: str) -> Callable[[], Awaitable[None]]:
        """A shutdown step (``run_until_signal``'s ``on_stop``) that stops these tasks."""

        # Its name is the step's name in the shutdown log ("...stop_tasks").
        async def stop_tasks() -> None:
            await self.stop(names)

        return stop_tasks

    async def stop_all(self) -> None:
        await self.stop(list(self._tasks))
