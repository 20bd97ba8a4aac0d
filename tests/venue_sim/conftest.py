"""Fixtures of the simulator tests."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

from tests.venue_sim.helpers import SimClient, running


@pytest.fixture(autouse=True)
def _no_simulator_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings come from each test alone: ``PINK_SIM_*`` variables of the shell would leak into them."""
    for name in list(os.environ):
        if name.upper().startswith("PINK_SIM_"):
            monkeypatch.delenv(name)


@pytest.fixture
def anyio_backend() -> str:
    """Async tests (``@pytest.mark.anyio``) run on asyncio: aiohttp needs it."""
    return "asyncio"


@pytest.fixture
async def client() -> AsyncIterator[SimClient]:
    """A simulator with default test settings (manual clock, no timers, no rate limits)."""
    async with running() as sim_client:
        yield sim_client
