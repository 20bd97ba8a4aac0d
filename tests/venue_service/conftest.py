"""Fixtures of the venue-service tests: the simulator and the venue service in front of it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.venue_service.harness import Harness, Sim, simulator, venue_service


@pytest.fixture
def anyio_backend() -> str:
    """grpc.aio and aiohttp need asyncio."""
    return "asyncio"


@pytest.fixture
async def sim() -> AsyncIterator[Sim]:
    """A simulator on a loopback port: wall clock, no price timer, no rate limits."""
    async with simulator() as running:
        yield running


@pytest.fixture
async def venue(sim: Sim) -> AsyncIterator[Harness]:
    """The venue service, SERVING, in front of ``sim``."""
    async with venue_service(sim) as harness:
        yield harness
