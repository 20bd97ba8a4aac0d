"""Fixtures of the services.common tests: the asyncio backend, JSON logs captured in memory."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest

from tests.common.helpers import captured_logs


@pytest.fixture
def anyio_backend() -> str:
    """Async tests (``@pytest.mark.anyio``) run on asyncio: grpc.aio and aiohttp need it."""
    return "asyncio"


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    """configure_logging("test", DEBUG) into a StringIO; the previous logging setup comes back after the test."""
    with captured_logs("test") as stream:
        yield stream
