"""The kernel service's long-running tasks, watched: one that ends unexpectedly stops the service.

The writer, the venue link and the timer must run for as long as the service serves. A task
that returns or raises while the service is not stopping is logged (CRITICAL, with its
traceback) and ``on_failure`` is called (the server stops, exit status 1): a kernel whose
timer died would never query a stuck order again, so it must not go on looking healthy.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any

from services.common.logging import get_logger
from services.common.proto import kernel_input_pb2
from services.kernel.core import Committed, OverloadedError, Payload

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

    async def stop_all(self) -> None:
        await self.stop(list(self._tasks))


async def tick(
    submit: Callable[[Payload], Awaitable[Committed]],
    seconds: float,
    due: Callable[[int], bool],
    clock: Callable[[], int] = time.time_ns,
) -> None:
    """Tells the kernel that time passed when a deadline is due, so it turns into a query.

    Checked every ``seconds``; an idle kernel (nothing due) journals nothing. A full queue
    skips one tick (logged): the next one carries the later time and catches up.
    """
    while True:
        await asyncio.sleep(seconds)
        if not due(clock()):
            continue
        try:
            await submit(kernel_input_pb2.Timer())
        except OverloadedError:
            log.warning("timer_tick_skipped", reason="the kernel's queue is full", seconds=seconds)
