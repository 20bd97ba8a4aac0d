"""services.common.logging: one JSON object per line, stdlib records included, secrets redacted."""

from __future__ import annotations

import datetime as dt
import io
import logging
from decimal import Decimal

import pytest
from pydantic import SecretStr

from services.common.logging import REDACTED, configure_logging, get_logger
from tests.common.helpers import json_lines

REQUIRED = {"timestamp", "level", "service", "logger", "event"}


def test_structlog_lines_are_json_with_the_standard_keys(log_stream: io.StringIO) -> None:
    log = get_logger("pink.test").bind(account="acc-1")
    log.info("order placed", qty=Decimal("0.010"), slot=3)
    log.debug("detail")
    records = json_lines(log_stream.getvalue())
    assert [r["event"] for r in records] == ["order placed", "detail"]
    first = records[0]
    assert set(first) >= REQUIRED
    assert first["service"] == "test"
    assert first["logger"] == "pink.test"
    assert first["level"] == "info"
    assert first["account"] == "acc-1"
    assert first["qty"] == "0.010"  # exact decimal, not a float
    stamp = dt.datetime.fromisoformat(first["timestamp"])
    assert stamp.utcoffset() == dt.timedelta(0)


def test_stdlib_records_share_the_renderer(log_stream: io.StringIO) -> None:
    logging.getLogger("grpc._cython.cygrpc").warning("peer %s went away", "10.0.0.1", extra={"attempt": 2})
    (record,) = json_lines(log_stream.getvalue())
    assert set(record) >= REQUIRED
    assert record["event"] == "peer 10.0.0.1 went away"
    assert record["logger"] == "grpc._cython.cygrpc"
    assert record["level"] == "warning"
    assert record["attempt"] == 2


def test_secrets_are_redacted_recursively(log_stream: io.StringIO) -> None:
    log = get_logger("pink.test")
    log.info(
        "signed request",
        api_key="k-123",
        X_BX_APIKEY="k-456",
        headers={"Authorization": "Bearer t-789", "accept": "json", "inner": {"listenToken": "t-000"}},
        attempts=[{"signature": "sig-1"}, {"ok": 1}],
        credential=SecretStr("s-111"),
        user_password="p-222",  # noqa: S106 - a fake credential, to be redacted
    )
    logging.getLogger("aiohttp.client").info("stdlib", extra={"client_secret": "s-333"})
    text = log_stream.getvalue()
    for secret in ("k-123", "k-456", "t-789", "t-000", "sig-1", "s-111", "p-222", "s-333"):
        assert secret not in text
    first, second = json_lines(text)
    assert first["api_key"] == REDACTED
    assert first["X_BX_APIKEY"] == REDACTED
    assert first["headers"] == {"Authorization": REDACTED, "accept": "json", "inner": {"listenToken": REDACTED}}
    assert first["attempts"] == [{"signature": REDACTED}, {"ok": 1}]
    assert first["credential"] == REDACTED
    assert first["user_password"] == REDACTED
    assert second["client_secret"] == REDACTED


def test_exceptions_are_rendered_in_the_line(log_stream: io.StringIO) -> None:
    log = get_logger("pink.test")

    def explode() -> None:
        raise RuntimeError("boom")

    try:
        explode()
    except RuntimeError:
        log.exception("step failed", step="x")
    (record,) = json_lines(log_stream.getvalue())
    assert record["level"] == "error"
    assert "RuntimeError: boom" in record["exception"]


def test_reconfiguring_is_idempotent_and_filters_by_level(log_stream: io.StringIO) -> None:
    second = io.StringIO()
    configure_logging("svc", "WARNING", stream=second)
    configure_logging("svc", "WARNING", stream=second)
    log = get_logger("pink.test")
    log.info("hidden")
    log.warning("shown")
    logging.getLogger("asyncio").info("hidden too")
    assert log_stream.getvalue() == ""
    (record,) = json_lines(second.getvalue())
    assert record["event"] == "shown"
    assert record["service"] == "svc"
    handlers = [h for h in logging.getLogger().handlers if type(h).__name__ == "_PinkJsonHandler"]
    assert len(handlers) == 1


def test_unknown_level_is_refused(log_stream: io.StringIO) -> None:
    with pytest.raises(ValueError, match="TRACE"):
        configure_logging("svc", "TRACE", stream=log_stream)
