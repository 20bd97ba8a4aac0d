"""Structured JSON logs for every PINK service.

:func:`configure_logging` makes structlog *and* the standard library ``logging``
(grpc, asyncio, aiohttp records) write one JSON object per line with the keys
``timestamp`` (ISO-8601, UTC), ``level``, ``service``, ``logger`` and ``event``
plus any bound context. Values of keys that look like credentials, and every
``SecretStr``/``SecretBytes``, are replaced by ``"***"`` before rendering.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
import logging
import re
import sys
from collections.abc import Mapping
from decimal import Decimal
from typing import Final, TextIO

import structlog
from pydantic import SecretBytes, SecretStr
from structlog.typing import EventDict, Processor, WrappedLogger

__all__ = ["REDACTED", "SENSITIVE_KEY", "configure_logging", "get_logger", "redact_secrets"]

REDACTED = "***"
SENSITIVE_KEY = re.compile(r"secret|password|token|api_key|apikey|signature|authorization", re.IGNORECASE)


class _PinkJsonHandler(logging.StreamHandler[TextIO]):
    """The root handler installed by :func:`configure_logging` (found again and replaced on reconfiguration)."""


# Values that can hold no secret and no nested keys: returned as they are, without further checks.
_PLAIN: Final = frozenset({str, int, float, bool, type(None), Decimal})


def _redact(value: object) -> object:
    if type(value) in _PLAIN:
        return value
    if isinstance(value, SecretStr | SecretBytes):
        return REDACTED
    if isinstance(value, Mapping):
        return {key: REDACTED if _is_sensitive(key) else _redact(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_redact(item) for item in value]
    return value


@functools.lru_cache(maxsize=4096)
def _is_sensitive_name(key: str) -> bool:
    return SENSITIVE_KEY.search(key) is not None


def _is_sensitive(key: object) -> bool:
    # Keys are a small, fixed vocabulary: the regex runs once per distinct key.
    return isinstance(key, str) and _is_sensitive_name(key)


def redact_secrets(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """structlog processor: mask credential-like keys (recursively) and secret values."""
    return {key: REDACTED if _is_sensitive(key) else _redact(value) for key, value in event_dict.items()}


def _json_default(value: object) -> object:
    """Render the values json cannot: exact decimals as strings, never as floats."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, SecretStr | SecretBytes):
        return REDACTED
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, bytes):
        return value.hex()
    return repr(value)


def _service_adder(service: str) -> Processor:
    def add_service(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
        event_dict.setdefault("service", service)
        return event_dict

    return add_service


def configure_logging(service: str, level: str = "INFO", *, stream: TextIO | None = None) -> None:
    """Send structlog and stdlib logging to ``stream`` (default ``sys.stderr``) as JSON lines.

    Safe to call again (tests): the handler installed by a previous call is replaced,
    other handlers on the root logger (e.g. pytest's) are left alone.
    """
    numeric_level = logging.getLevelNamesMapping().get(level.upper())
    if numeric_level is None:
        raise ValueError(f"unknown log level {level!r}")

    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        _service_adder(service),
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
    ]
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        context_class=dict,
        # Not cached, so a later configure_logging (tests) reaches loggers created earlier.
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redact_secrets,
            structlog.processors.JSONRenderer(default=_json_default),
        ],
    )
    handler = _PinkJsonHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(formatter)

    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _PinkJsonHandler)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(numeric_level)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A structlog logger named ``name`` (the ``logger`` key), bound lazily to the current configuration."""
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger
