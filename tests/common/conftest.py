"""Fixtures of the services.common tests: the asyncio backend, JSON logs captured in memory."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
import structlog

from services.common.logging import configure_logging


@pytest.fixture
def anyio_backend() -> str:
    """Async tests (``@pytest.mark.anyio``) run on asyncio: grpc.aio and aiohttp need it."""
    return "asyncio"


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    """configure_logging("test", DEBUG) into a StringIO; the previous logging setup comes back after the test."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    stream = io.StringIO()
    configure_logging("test", "DEBUG", stream=stream)
    yield stream
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    structlog.reset_defaults()
