"""services.common.errors: rich google.rpc.Status details across a real grpc.aio call."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from typing import NoReturn

import grpc
import grpc.aio
import pytest
from google.rpc import error_details_pb2  # type: ignore[import-untyped]

from services.common.errors import (
    DOMAIN,
    abort_internal,
    abort_invalid_argument,
    abort_with,
    error_details,
    rich_status,
)
from services.common.grpc_server import GrpcServer
from services.common.logging import get_logger
from tests.common.helpers import call_raw, generic_binding, loopback_settings, started

SERVICE = "pink.test.v1.Errors"
VIOLATIONS = [("intent.qty", "must be > 0"), ("intent.symbol", "unknown symbol 'X'")]


async def invalid(_request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
    await abort_invalid_argument(context, "intent rejected", VIOLATIONS, reason="INTENT_INVALID")


async def conflict(_request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
    await abort_with(
        context,
        grpc.StatusCode.FAILED_PRECONDITION,
        "slot version moved",
        reason="STALE_SLOT_VERSION",
        metadata={"expected": "4", "actual": "5"},
    )


def panic() -> NoReturn:
    raise RuntimeError("secret panic text")


async def internal(_request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
    try:
        panic()
    except RuntimeError:
        await abort_internal(context, "corr-42", "internal error; see server logs")


async def plain(_request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
    await context.abort(grpc.StatusCode.NOT_FOUND, "no such slot")


async def bad_reason(_request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
    await abort_with(context, grpc.StatusCode.ABORTED, "x", reason="not upper snake")


@pytest.fixture
async def channel(log_stream: io.StringIO) -> AsyncIterator[grpc.aio.Channel]:
    binding = generic_binding(
        SERVICE,
        {"Invalid": invalid, "Conflict": conflict, "Internal": internal, "Plain": plain, "BadReason": bad_reason},
    )
    server = GrpcServer(loopback_settings(), [binding], logger=get_logger("test.errors"))
    async with started(server) as channel:
        yield channel


async def failure(channel: grpc.aio.Channel, method: str) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call_raw(channel, f"/{SERVICE}/{method}")
    return caught.value


@pytest.mark.anyio
async def test_invalid_argument_round_trips_violations_and_reason(channel: grpc.aio.Channel) -> None:
    error = await failure(channel, "Invalid")
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == "intent rejected"
    violations, reason = await error_details(error)
    assert violations == VIOLATIONS
    assert reason == "INTENT_INVALID"


@pytest.mark.anyio
async def test_abort_with_carries_error_info_metadata(channel: grpc.aio.Channel) -> None:
    error = await failure(channel, "Conflict")
    assert error.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert await error_details(error) == ([], "STALE_SLOT_VERSION")
    status = rich_status(error)
    assert status is not None
    (detail,) = status.details
    info = error_details_pb2.ErrorInfo()
    assert detail.Unpack(info)
    assert info.domain == DOMAIN
    assert dict(info.metadata) == {"expected": "4", "actual": "5"}


@pytest.mark.anyio
async def test_internal_error_has_a_correlation_id_and_no_exception_text(channel: grpc.aio.Channel) -> None:
    error = await failure(channel, "Internal")
    assert error.code() is grpc.StatusCode.INTERNAL
    assert "secret panic text" not in (error.details() or "")
    assert await error_details(error) == ([], "INTERNAL")
    status = rich_status(error)
    assert status is not None
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    assert dict(info.metadata) == {"correlation_id": "corr-42"}
    assert "secret panic text" not in status.SerializeToString().decode("utf-8", "replace")


@pytest.mark.anyio
async def test_plain_errors_have_no_details(channel: grpc.aio.Channel) -> None:
    error = await failure(channel, "Plain")
    assert error.code() is grpc.StatusCode.NOT_FOUND
    assert rich_status(error) is None
    assert await error_details(error) == ([], None)


@pytest.mark.anyio
async def test_a_malformed_reason_is_a_server_bug_not_a_silent_detail(channel: grpc.aio.Channel) -> None:
    error = await failure(channel, "BadReason")
    assert error.code() is grpc.StatusCode.UNKNOWN
    assert await error_details(error) == ([], None)
