"""Helpers of the services.common tests (real grpc.aio plumbing, captured JSON logs), shared with other suites."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import grpc
import grpc.aio
import structlog
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2

from services.common.config import ServiceSettings, load_settings
from services.common.grpc_server import GrpcServer, ServiceBinding
from services.common.logging import configure_logging

TIMEOUT = 5.0
HEALTH_CHECK = "/grpc.health.v1.Health/Check"
REFLECTION_INFO = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"

Behaviour = Callable[[bytes, grpc.aio.ServicerContext[bytes, bytes]], Awaitable[bytes]]


def raw(data: bytes) -> bytes:
    """Identity (de)serializer: the test methods exchange raw bytes."""
    return data


def generic_binding(service: str, methods: dict[str, Behaviour]) -> ServiceBinding:
    """A ServiceBinding for unary-unary byte methods registered through a generic handler."""
    handler = grpc.method_handlers_generic_handler(
        service, {name: grpc.unary_unary_rpc_method_handler(behaviour) for name, behaviour in methods.items()}
    )

    def add(servicer: Any, server: grpc.aio.Server) -> None:
        server.add_generic_rpc_handlers((servicer,))

    return ServiceBinding(name=service, add=add, servicer=handler)


def loopback_settings(**overrides: object) -> ServiceSettings:
    """Loopback, ephemeral port, short shutdown."""
    values: dict[str, object] = {"host": "127.0.0.1", "port": 0, "drain_seconds": 0.0, "grace_seconds": 2.0}
    values.update(overrides)
    return load_settings(ServiceSettings, **values)


async def call_raw(channel: grpc.aio.Channel, method: str, payload: bytes = b"") -> bytes:
    """Call a unary-unary byte method (with the usual deadline)."""
    multicallable = channel.unary_unary(method, request_serializer=raw, response_deserializer=raw)
    response: bytes = await multicallable(payload, timeout=TIMEOUT)
    return response


async def health_status(channel: grpc.aio.Channel, service: str = "") -> int:
    """grpc.health.v1.Health/Check of ``service`` (the HealthStub stubs declare no methods, hence by name)."""
    check = channel.unary_unary(
        HEALTH_CHECK,
        request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
        response_deserializer=health_pb2.HealthCheckResponse.FromString,
    )
    response = await check(health_pb2.HealthCheckRequest(service=service), timeout=TIMEOUT)
    return response.status


async def list_services(channel: grpc.aio.Channel) -> set[str]:
    """The service names server reflection (v1alpha) lists, as grpcurl list asks for them."""
    info = channel.stream_stream(
        REFLECTION_INFO,
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )
    call = info(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=TIMEOUT)
    names: set[str] = set()
    async for response in call:
        names.update(service.name for service in response.list_services_response.service)
    return names


@asynccontextmanager
async def started(server: GrpcServer) -> AsyncIterator[grpc.aio.Channel]:
    """Start ``server``, yield a channel to it, stop both afterwards."""
    port = await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield channel
    finally:
        await server.stop()


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every line of a JSON-lines log, parsed (fails on a line that is not one JSON object)."""
    records: list[dict[str, Any]] = []
    for line in text.splitlines():
        record = json.loads(line)
        assert isinstance(record, dict), line
        records.append(record)
    return records


@contextmanager
def captured_logs(service: str) -> Iterator[io.StringIO]:
    """configure_logging(``service``, DEBUG) into a StringIO; the previous logging setup comes back afterwards."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    stream = io.StringIO()
    configure_logging(service, "DEBUG", stream=stream)
    yield stream
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    structlog.reset_defaults()
