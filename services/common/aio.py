"""Small asyncio/grpc.aio helpers shared by the services."""

from __future__ import annotations

import math
from typing import Any

import grpc.aio

__all__ = ["call_timeout"]

# A deadline further away than this means "no deadline" (sync servers report ~9.2e18 s).
_NO_DEADLINE = 10**9


def call_timeout(context: grpc.aio.ServicerContext[Any, Any] | None, budget: float) -> float:
    """The ``timeout=`` of an outgoing call made while serving ``context``: ``min(budget, time left)``.

    gRPC Python does not propagate deadlines; pass this on every downstream call so it
    never outlives its caller. ``context.time_remaining()`` is None (aio) or huge (sync)
    when the caller set no deadline: then ``budget`` alone applies. An expired deadline
    gives 0.0, so the downstream call fails at once with DEADLINE_EXCEEDED.
    """
    if not (budget > 0 and math.isfinite(budget)):
        raise ValueError(f"budget must be a positive number of seconds, got {budget!r}")
    remaining = context.time_remaining() if context is not None else None
    if remaining is None or remaining > _NO_DEADLINE:
        return budget
    return max(0.0, min(budget, remaining))
