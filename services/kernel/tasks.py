"""The kernel's timer task: it turns due deadlines into Timer inputs (watched by ``ServiceTasks``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from services.common.logging import get_logger
from services.common.proto import kernel_input_pb2
from services.kernel.core import Committed, OverloadedError, Payload

log = get_logger(__name__)


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
