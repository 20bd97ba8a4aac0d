"""gRPC errors as ``google.rpc.Status`` with rich details (AIP-193), server and client side.

Server side, a handler ends an RPC with one of the ``abort_*`` coroutines: the
status carries an ``ErrorInfo`` (``reason`` in UPPER_SNAKE_CASE, ``domain``
:data:`DOMAIN`, string ``metadata``) and, for invalid arguments, a ``BadRequest``
with one field violation per problem. Messages are short and for developers;
never put exception text, stack traces or internal identifiers in them.

Client side, :func:`error_details` recovers the violations and the reason from a
failed call's ``AioRpcError``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

import grpc
import grpc.aio
from google.protobuf import any_pb2

# googleapis-common-protos ships .pyi stubs but no py.typed marker, and the only stub
# package for it (googleapis-common-protos-stubs) drags in a second, conflicting set of
# grpc stubs; so these modules are typed Any here and wrapped in typed functions below.
from google.rpc import code_pb2, error_details_pb2, status_pb2  # type: ignore[import-untyped]
from grpc_status import rpc_status

__all__ = [
    "DOMAIN",
    "GRPC_DETAILS_METADATA_KEY",
    "abort_internal",
    "abort_invalid_argument",
    "abort_with",
    "error_details",
    "new_correlation_id",
    "rich_status",
]

DOMAIN = "pink.trading"
GRPC_DETAILS_METADATA_KEY = "grpc-status-details-bin"

# AIP-193: UPPER_SNAKE_CASE, at most 63 characters.
_REASON = re.compile(r"[A-Z][A-Z0-9_]{0,61}[A-Z0-9]")

Context = grpc.aio.ServicerContext[Any, Any]


def _pack(message: error_details_pb2.ErrorInfo | error_details_pb2.BadRequest) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def _error_info(reason: str, metadata: Mapping[str, str] | None) -> error_details_pb2.ErrorInfo:
    if _REASON.fullmatch(reason) is None:
        raise ValueError(f"ErrorInfo reason must be UPPER_SNAKE_CASE, at most 63 characters: {reason!r}")
    return error_details_pb2.ErrorInfo(reason=reason, domain=DOMAIN, metadata=dict(metadata or {}))


async def _abort(
    context: Context,
    code: grpc.StatusCode,
    message: str,
    details: Sequence[error_details_pb2.ErrorInfo | error_details_pb2.BadRequest],
) -> NoReturn:
    status = rpc_status.to_status(
        status_pb2.Status(code=code.value[0], message=message, details=[_pack(d) for d in details])
    )
    # What context.abort_with_status(status) does, spelled out: the OpenTelemetry server
    # interceptor wraps abort() (to record the code on the span) but not abort_with_status().
    await context.abort(status.code, status.details, status.trailing_metadata)


async def abort_invalid_argument(
    context: Context,
    message: str,
    violations: Sequence[tuple[str, str]],
    *,
    reason: str = "INVALID_ARGUMENT",
) -> NoReturn:
    """End the RPC with INVALID_ARGUMENT, a ``BadRequest`` of ``(field, description)`` violations and an ErrorInfo."""
    bad_request = error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=field, description=description)
            for field, description in violations
        ]
    )
    await _abort(context, grpc.StatusCode.INVALID_ARGUMENT, message, [bad_request, _error_info(reason, None)])


async def abort_with(
    context: Context,
    code: grpc.StatusCode,
    message: str,
    *,
    reason: str,
    metadata: Mapping[str, str] | None = None,
) -> NoReturn:
    """End the RPC with ``code`` and an ErrorInfo(``reason``, :data:`DOMAIN`, ``metadata``)."""
    if code is grpc.StatusCode.OK:
        raise ValueError("abort_with needs an error code, not OK")
    await _abort(context, code, message, [_error_info(reason, metadata)])


def new_correlation_id() -> str:
    """A random id tying an INTERNAL error seen by a client to the server's log line."""
    return uuid.uuid4().hex


async def abort_internal(context: Context, correlation_id: str, message: str) -> NoReturn:
    """End the RPC with INTERNAL, ErrorInfo reason ``INTERNAL`` and metadata ``{"correlation_id": ...}``.

    Log the exception (with the same ``correlation_id``) before calling this; ``message``
    must be a generic text, never the exception's.
    """
    await _abort(
        context,
        grpc.StatusCode.INTERNAL,
        message,
        [_error_info("INTERNAL", {"correlation_id": correlation_id})],
    )


def rich_status(error: grpc.aio.AioRpcError) -> status_pb2.Status | None:
    """The ``google.rpc.Status`` in ``error``'s trailing metadata, or None if the server sent none.

    Raises:
        ValueError: the status disagrees with the call's code or message (a corrupt or forged detail).
        TypeError: the detail is not binary.
    """
    trailing = error.trailing_metadata()
    if trailing is None:
        return None
    for key, value in trailing:
        if key != GRPC_DETAILS_METADATA_KEY:
            continue
        if not isinstance(value, bytes):
            raise TypeError(f"{GRPC_DETAILS_METADATA_KEY} carries {type(value).__name__}, not bytes")
        status = status_pb2.Status.FromString(value)
        if status.code != error.code().value[0]:
            raise ValueError(
                f"rich status code {code_pb2.Code.Name(status.code)} does not match the call's {error.code().name}"
            )
        if status.message != error.details():
            raise ValueError("rich status message does not match the call's details")
        return status
    return None


async def error_details(error: grpc.aio.AioRpcError) -> tuple[list[tuple[str, str]], str | None]:
    """``(field violations, ErrorInfo reason)`` of a failed call; ``([], None)`` when it carries no details."""
    status = rich_status(error)
    if status is None:
        return ([], None)
    violations: list[tuple[str, str]] = []
    reason: str | None = None
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad_request = error_details_pb2.BadRequest()
            detail.Unpack(bad_request)
            violations.extend((v.field, v.description) for v in bad_request.field_violations)
        elif detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason = info.reason
    return (violations, reason)
