"""services.common.telemetry: explicit providers, interceptors and W3C carriers (in-memory exporter)."""

from __future__ import annotations

import asyncio
import gc
import io
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import grpc.aio
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from services.common.errors import abort_invalid_argument
from services.common.grpc_server import GrpcServer, ServiceBinding
from services.common.logging import get_logger
from services.common.telemetry import (
    EXCLUDED_SERVICES,
    client_interceptors,
    extract_context,
    inject_context,
    server_interceptors,
    setup_tracing,
    shutdown_tracing,
)
from tests.common.helpers import call_raw, generic_binding, health_status, list_services, loopback_settings

SERVICE = "pink.test.v1.Traced"


async def echo(request: bytes, _context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
    return request


async def reject(_request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
    await abort_invalid_argument(context, "bad", [("qty", "must be > 0")])


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter, log_stream: io.StringIO) -> Iterator[TracerProvider]:
    provider = setup_tracing("pink-test", "1.2.3", exporter=exporter)
    yield provider
    provider.shutdown()


def test_resource_names_the_service_and_version(monkeypatch: pytest.MonkeyPatch, log_stream: io.StringIO) -> None:
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test,service.namespace=pink")
    provider = setup_tracing("pink-kernel", "0.9.0", exporter=InMemorySpanExporter())
    attributes = provider.resource.attributes
    assert attributes["service.name"] == "pink-kernel"
    assert attributes["service.version"] == "0.9.0"
    assert attributes["deployment.environment"] == "test"
    assert attributes["service.namespace"] == "pink"
    provider.shutdown()


@pytest.mark.anyio
async def test_client_and_server_spans_share_the_trace_and_health_is_not_traced(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    binding = generic_binding(SERVICE, {"Echo": echo, "Reject": reject})
    server = GrpcServer(
        loopback_settings(), [binding], interceptors=server_interceptors(provider), logger=get_logger("t")
    )
    port = await server.start()
    try:
        async with grpc.aio.insecure_channel(
            f"127.0.0.1:{port}", interceptors=client_interceptors(provider)
        ) as channel:
            assert await call_raw(channel, f"/{SERVICE}/Echo", b"hi") == b"hi"
            await health_status(channel, "")
            assert EXCLUDED_SERVICES[1] in await list_services(channel)
            with pytest.raises(grpc.aio.AioRpcError):
                await call_raw(channel, f"/{SERVICE}/Reject")
    finally:
        await server.stop()

    spans = exporter.get_finished_spans()
    assert sorted((span.name, span.kind.name) for span in spans) == [
        (f"/{SERVICE}/Echo", "CLIENT"),
        (f"/{SERVICE}/Echo", "SERVER"),
        (f"/{SERVICE}/Reject", "CLIENT"),
        (f"/{SERVICE}/Reject", "SERVER"),
    ]
    for method in ("Echo", "Reject"):
        client = next(s for s in spans if s.name.endswith(method) and s.kind is trace.SpanKind.CLIENT)
        server_span = next(s for s in spans if s.name.endswith(method) and s.kind is trace.SpanKind.SERVER)
        assert client.context is not None
        assert server_span.context is not None
        assert server_span.context.trace_id == client.context.trace_id
        assert server_span.parent is not None
        assert server_span.parent.span_id == client.context.span_id
        assert server_span.resource.attributes["service.version"] == "1.2.3"
    rejected = next(s for s in spans if s.name.endswith("Reject") and s.kind is trace.SpanKind.SERVER)
    assert rejected.attributes is not None
    assert rejected.attributes["rpc.grpc.status_code"] == grpc.StatusCode.INVALID_ARGUMENT.value[0]


def test_carriers_cross_a_queue(provider: TracerProvider, exporter: InMemorySpanExporter) -> None:
    tracer = provider.get_tracer("pink.test")
    assert "traceparent" not in inject_context()  # nothing active
    with tracer.start_as_current_span("enqueue") as producer:
        carrier = inject_context()
    assert carrier["traceparent"].startswith("00-")
    context = extract_context(carrier)
    remote = trace.get_current_span(context).get_span_context()
    assert remote.is_remote
    assert (remote.trace_id, remote.span_id) == (
        producer.get_span_context().trace_id,
        producer.get_span_context().span_id,
    )
    with tracer.start_as_current_span("apply", context=context) as consumer:
        assert consumer.get_span_context().trace_id == producer.get_span_context().trace_id
    (_, applied) = exporter.get_finished_spans()
    assert applied.parent is not None
    assert applied.parent.span_id == producer.get_span_context().span_id


def test_sdk_disabled_records_nothing(monkeypatch: pytest.MonkeyPatch, log_stream: io.StringIO) -> None:
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    exporter = InMemorySpanExporter()
    provider = setup_tracing("pink-test", "1", exporter=exporter)
    with provider.get_tracer("pink.test").start_as_current_span("ignored") as span:
        assert not span.is_recording()
    assert exporter.get_finished_spans() == ()
    provider.shutdown()


@pytest.mark.anyio
async def test_otlp_exporter_from_the_environment(monkeypatch: pytest.MonkeyPatch, log_stream: io.StringIO) -> None:
    # Nothing listens there; no span is created, so shutdown exports nothing and returns.
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    provider = setup_tracing("pink-test", "1")
    await shutdown_tracing(provider)
    (record,) = [r for r in log_stream.getvalue().splitlines() if "tracing configured" in r]
    assert '"exporter": "otlp-grpc"' in record


async def count(request: bytes, _context: grpc.aio.ServicerContext[bytes, bytes]) -> AsyncIterator[bytes]:
    for index in range(int(request or b"0")):
        yield str(index).encode()


async def broken(_request: bytes, _context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
    raise RuntimeError("bug")


@pytest.mark.anyio
async def test_streams_and_server_errors_are_traced(provider: TracerProvider, exporter: InMemorySpanExporter) -> None:
    handler = grpc.method_handlers_generic_handler(
        SERVICE,
        {"Count": grpc.unary_stream_rpc_method_handler(count), "Broken": grpc.unary_unary_rpc_method_handler(broken)},
    )

    def add(servicer: Any, server: grpc.aio.Server) -> None:
        server.add_generic_rpc_handlers((servicer,))

    binding = ServiceBinding(name=SERVICE, add=add, servicer=handler)
    server = GrpcServer(
        loopback_settings(), [binding], interceptors=server_interceptors(provider), logger=get_logger("t")
    )
    port = await server.start()
    try:
        async with grpc.aio.insecure_channel(
            f"127.0.0.1:{port}", interceptors=client_interceptors(provider)
        ) as channel:
            stream: grpc.aio.UnaryStreamMultiCallable[bytes, bytes] = channel.unary_stream(f"/{SERVICE}/Count")
            assert [message async for message in stream(b"3", timeout=10)] == [b"0", b"1", b"2"]
            with pytest.raises(grpc.aio.AioRpcError) as failure:
                await call_raw(channel, f"/{SERVICE}/Broken")
            assert failure.value.code() is grpc.StatusCode.UNKNOWN
    finally:
        await server.stop()

    spans = {(span.name, span.kind.name): span for span in exporter.get_finished_spans()}
    client, served = spans[(f"/{SERVICE}/Count", "CLIENT")], spans[(f"/{SERVICE}/Count", "SERVER")]
    assert client.context is not None
    assert served.parent is not None
    assert served.parent.span_id == client.context.span_id
    assert served.attributes is not None
    assert served.attributes["rpc.method"] == "Count"
    assert served.attributes["rpc.service"] == SERVICE
    assert served.status.status_code is trace.StatusCode.UNSET
    failed = spans[(f"/{SERVICE}/Broken", "SERVER")]
    assert failed.attributes is not None
    assert failed.attributes["rpc.grpc.status_code"] == grpc.StatusCode.UNKNOWN.value[0]
    assert failed.status.status_code is trace.StatusCode.ERROR
    assert [event.name for event in failed.events] == ["exception"], "the handler's exception is recorded"
    failed_call = spans[(f"/{SERVICE}/Broken", "CLIENT")]
    assert failed_call.status.status_code is trace.StatusCode.ERROR


async def endless(_request: bytes, _context: grpc.aio.ServicerContext[bytes, bytes]) -> AsyncIterator[bytes]:
    index = 0
    while True:
        yield str(index).encode()
        index += 1


class _SpansEnded(SpanProcessor):
    """Sets ``all`` once ``want`` server spans named ``name`` have ended."""

    def __init__(self, name: str, *, want: int) -> None:
        self.name = name
        self.want = want
        self.count = 0
        self.all = asyncio.Event()

    def on_end(self, span: ReadableSpan) -> None:
        if span.name == self.name and span.kind.name == "SERVER":
            self.count += 1
            if self.count >= self.want:
                self.all.set()


@pytest.mark.anyio
async def test_a_stream_the_client_abandons_ends_its_span_without_a_context_error(
    provider: TracerProvider, exporter: InMemorySpanExporter, log_stream: io.StringIO
) -> None:
    """A streaming handler left by its client is closed by grpc outside the RPC's own context
    (GeneratorExit at a ``yield``, from another task): the span still ends, and restoring the
    RPC's tracing context there is neither attempted in the wrong context nor logged as an error
    (legacy-style noise: OpenTelemetry's "Failed to detach context" on every WatchRecords a
    consumer leaves)."""
    handler = grpc.method_handlers_generic_handler(SERVICE, {"Endless": grpc.unary_stream_rpc_method_handler(endless)})
    ended = _SpansEnded(f"/{SERVICE}/Endless", want=3)
    provider.add_span_processor(ended)

    def add(servicer: Any, server: grpc.aio.Server) -> None:
        server.add_generic_rpc_handlers((servicer,))

    server = GrpcServer(
        loopback_settings(),
        [ServiceBinding(name=SERVICE, add=add, servicer=handler)],
        interceptors=server_interceptors(provider),
        logger=get_logger("t"),
    )
    port = await server.start()
    try:
        for _ in range(3):
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                stream: grpc.aio.UnaryStreamMultiCallable[bytes, bytes] = channel.unary_stream(f"/{SERVICE}/Endless")
                call = stream(b"", timeout=10)
                assert await call.read() == b"0"
                call.cancel()
    finally:
        await server.stop()
    # An abandoned handler generator is finalised by gc at the latest; asyncio then closes it
    # in a task of its own, which ends the span: wait for those ends, not for a fixed time.
    gc.collect()
    await asyncio.wait_for(ended.all.wait(), 10)
    served = [s for s in exporter.get_finished_spans() if s.name == f"/{SERVICE}/Endless" and s.kind.name == "SERVER"]
    assert len(served) == 3, "every abandoned stream's span ended"
    assert "Failed to detach context" not in log_stream.getvalue()
