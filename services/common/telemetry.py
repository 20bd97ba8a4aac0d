"""OpenTelemetry tracing for the PINK services: explicit providers and gRPC interceptors.

Nothing here touches the global tracer provider: :func:`setup_tracing` returns a
provider that the service passes to :func:`server_interceptors` and
:func:`client_interceptors` (and to tests, with an in-memory exporter). Exporters
are configured by the standard ``OTEL_*`` environment variables only. Context
crosses queues and the Rust kernel as a W3C ``traceparent`` carrier
(:func:`inject_context` / :func:`extract_context`), through the globally
configured propagator (``OTEL_PROPAGATORS``, W3C trace context + baggage by default),
the same one the gRPC interceptors use.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, Final, TypeAlias
from urllib.parse import unquote

import grpc
import grpc.aio
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter, Setter
from opentelemetry.sdk.environment_variables import (
    OTEL_EXPORTER_OTLP_ENDPOINT,
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
    OTEL_SDK_DISABLED,
)
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from services.common.logging import get_logger

__all__ = [
    "EXCLUDED_SERVICES",
    "ServerTracingInterceptor",
    "client_interceptors",
    "extract_context",
    "inject_context",
    "server_interceptors",
    "setup_tracing",
    "shutdown_tracing",
]

# Probes and grpcurl would flood the traces otherwise (health is checked every few seconds).
EXCLUDED_SERVICES = ("grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection")
# Extra full service names to exclude, comma-separated (the instrumentation's own variable).
EXCLUDED_SERVICES_ENV = "OTEL_PYTHON_GRPC_EXCLUDED_SERVICES"

_log = get_logger(__name__)


def _sdk_disabled() -> bool:
    return os.environ.get(OTEL_SDK_DISABLED, "").strip().lower() == "true"


def setup_tracing(service_name: str, service_version: str, *, exporter: SpanExporter | None = None) -> TracerProvider:
    """A tracer provider for this service; the caller owns it (pass it on, shut it down on exit).

    Exporter: ``exporter`` through a SimpleSpanProcessor if given (tests); else OTLP/gRPC
    through a BatchSpanProcessor if ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or the traces-specific
    variable) is set; else none (spans are still created and context still propagates).
    With ``OTEL_SDK_DISABLED=true`` the provider creates no-op tracers and no exporter is
    attached. The sampler comes from ``OTEL_TRACES_SAMPLER``.
    """
    resource = Resource.create({SERVICE_NAME: service_name, SERVICE_VERSION: service_version})
    provider = TracerProvider(resource=resource)
    if _sdk_disabled():
        _log.info("tracing disabled", reason=f"{OTEL_SDK_DISABLED}=true", service_name=service_name)
        return provider
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        exporter_kind = type(exporter).__name__
    elif os.environ.get(OTEL_EXPORTER_OTLP_ENDPOINT) or os.environ.get(OTEL_EXPORTER_OTLP_TRACES_ENDPOINT):
        # Imported only when used: the OTLP exporter's imports cost a noticeable part of start-up.
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter  # noqa: PLC0415

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        exporter_kind = "otlp-grpc"
    else:
        exporter_kind = "none"
    _log.info(
        "tracing configured",
        service_name=service_name,
        service_version=service_version,
        exporter=exporter_kind,
    )
    return provider


async def shutdown_tracing(provider: TracerProvider) -> None:
    """Flush and close ``provider``'s exporters off the event loop (an ``on_stop`` callback)."""
    await asyncio.to_thread(provider.shutdown)


def _excluded_names() -> tuple[str, ...]:
    extra = os.environ.get(EXCLUDED_SERVICES_ENV, "")
    names = [*EXCLUDED_SERVICES, *(name.strip() for name in extra.split(",") if name.strip())]
    return tuple(dict.fromkeys(names))


def _service_of(method: str | bytes) -> str:
    """``package.Service`` of a ``/package.Service/Method`` path (grpc.aio clients may pass bytes)."""
    name = method.decode() if isinstance(method, bytes) else method
    return name[1 : name.rfind("/")] if name.startswith("/") else name[: name.rfind("/")]


# The instrumentation scope of the spans (as the OpenTelemetry gRPC instrumentation names it).
_TRACER_NAME: Final = "opentelemetry.instrumentation.grpc"
_SCHEMA_URL: Final = "https://opentelemetry.io/schemas/1.11.0"
# Span attributes of the OpenTelemetry gRPC instrumentation (semantic conventions it uses).
_RPC_SYSTEM: Final = "rpc.system"
_RPC_SERVICE: Final = "rpc.service"
_RPC_METHOD: Final = "rpc.method"
_RPC_STATUS: Final = "rpc.grpc.status_code"
_USER_AGENT: Final = "rpc.user_agent"
_PEER_IP: Final = "net.peer.ip"
_PEER_PORT: Final = "net.peer.port"
_PEER_NAME: Final = "net.peer.name"
# As the instrumentation: these codes are the server's fault (span status ERROR); others are the caller's.
_SERVER_ERRORS: Final = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)
_Behavior = Callable[..., Any]
_Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"  # generic in the stubs only
_Metadata = tuple[tuple[str, str | bytes], ...]


class _Getter(Getter[_Metadata]):
    """Reads a W3C carrier straight from gRPC metadata (no dict built per call)."""

    def get(self, carrier: _Metadata, key: str) -> list[str] | None:
        values = [value for name, value in carrier if name == key and isinstance(value, str)]
        return values or None

    def keys(self, carrier: _Metadata) -> list[str]:
        return [name for name, _ in carrier]


_GETTER: Final = _Getter()


class ServerTracingInterceptor(grpc.aio.ServerInterceptor):
    """A SERVER span per RPC, child of the caller's propagated context; the spans of the
    OpenTelemetry gRPC instrumentation (same name, kind and attributes, status codes and
    recorded exceptions; an exception out of a handler is also marked UNKNOWN, as grpc answers
    it), at a fraction of its cost.

    The instrumentation's interceptor costs about half a bare grpc.aio RPC per call: a slow
    service-name filter, a new method handler and a proxied servicer context per call. Here the
    wrapped handler is built once per method and the final status is read from the context
    (``context.code()``) after the handler returns or raises.
    """

    def __init__(self, tracer: trace.Tracer, excluded: frozenset[str]) -> None:
        self._tracer = tracer
        self._excluded = excluded
        # method -> (the handler found, the handler served); grpc.aio looks handlers up per call.
        self._handlers: dict[str, tuple[_Handler, _Handler]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[_Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> _Handler | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        cached = self._handlers.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        served = handler if _service_of(method) in self._excluded else self._wrap(method, handler)
        self._handlers[method] = (handler, served)
        return served

    def _wrap(self, method: str, handler: _Handler) -> _Handler:
        service = _service_of(method)
        attributes = {
            _RPC_SYSTEM: "grpc",
            _RPC_STATUS: grpc.StatusCode.OK.value[0],
            _RPC_METHOD: method[method.rfind("/") + 1 :],
            _RPC_SERVICE: service,
        }
        kwargs = {
            "request_deserializer": handler.request_deserializer,
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(self._unary(method, attributes, handler.unary_unary), **kwargs)
        if handler.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(self._unary(method, attributes, handler.stream_unary), **kwargs)
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._stream(method, attributes, handler.unary_stream), **kwargs
            )
        if handler.stream_stream is not None:
            return grpc.stream_stream_rpc_method_handler(
                self._stream(method, attributes, handler.stream_stream), **kwargs
            )
        return handler

    def _start(
        self, method: str, attributes: dict[str, Any], context: grpc.aio.ServicerContext[Any, Any]
    ) -> tuple[Span, object]:
        metadata = tuple(context.invocation_metadata() or ())
        parent = propagate.extract(metadata, getter=_GETTER) if metadata else None
        span_attributes = dict(attributes)
        for name, value in metadata:
            if name == "user-agent":
                span_attributes[_USER_AGENT] = value
                break
        peer = context.peer()
        if not peer.startswith("unix:"):
            # ipv4:127.0.0.1:57284, ipv6:[::1]:57284 (the first address when several are listed)
            address = peer.split(",")[0].split(":", 1)
            if len(address) == 2 and ":" in address[1]:
                ip, port = address[1].rsplit(":", 1)
                ip = unquote(ip)
                span_attributes[_PEER_IP] = ip
                span_attributes[_PEER_PORT] = port
                if ip in ("[::1]", "127.0.0.1"):
                    span_attributes[_PEER_NAME] = "localhost"
        span = self._tracer.start_span(method, context=parent, kind=SpanKind.SERVER, attributes=span_attributes)
        token = otel_context.attach(trace.set_span_in_context(span, parent))
        return span, token

    @staticmethod
    def _finish(
        span: Span, token: object, context: grpc.aio.ServicerContext[Any, Any], error: BaseException | None
    ) -> None:
        try:
            code: grpc.StatusCode | None = context.code()  # None: the handler never set one (OK)
            unhandled = error is not None and not isinstance(error, grpc.aio.AbortError | asyncio.CancelledError)
            if code is None and unhandled:
                code = grpc.StatusCode.UNKNOWN  # what grpc answers for an exception out of the handler
            if code is not None and code is not grpc.StatusCode.OK:
                span.set_attribute(_RPC_STATUS, code.value[0])
                if code in _SERVER_ERRORS:
                    details = context.details()
                    span.set_status(Status(StatusCode.ERROR, f"{code}:{details}"))
            if error is not None and not isinstance(error, grpc.aio.AbortError):
                span.record_exception(error)
        finally:
            span.end()
            _restore(token)

    def _unary(self, method: str, attributes: dict[str, Any], behavior: _Behavior) -> _Behavior:
        async def traced(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            span, token = self._start(method, attributes, context)
            try:
                response = await behavior(request, context)
            except BaseException as error:
                self._finish(span, token, context, error)
                raise
            self._finish(span, token, context, None)
            return response

        return traced

    def _stream(self, method: str, attributes: dict[str, Any], behavior: _Behavior) -> _Behavior:
        async def traced(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
            span, token = self._start(method, attributes, context)
            error: BaseException | None = None
            try:
                async for response in behavior(request, context):
                    yield response
            except BaseException as caught:
                error = caught
                raise
            finally:
                self._finish(span, token, context, error)

        return traced


def _restore(token: object) -> None:
    """Undoes the span's ``otel_context.attach`` where it was made.

    A streaming handler whose client went away is closed by grpc or the event loop's async
    generator finaliser from another task, that is in another ``contextvars.Context``: there
    the reset is impossible (ValueError) and unneeded (the RPC's own context is gone with its
    task), so it is skipped instead of OpenTelemetry logging "Failed to detach context".
    """
    if isinstance(token, contextvars.Token):
        try:
            token.var.reset(token)
        except ValueError:
            _log.debug("tracing_context_left_with_its_task")
        return
    otel_context.detach(token)  # type: ignore[arg-type]


def server_interceptors(provider: TracerProvider) -> list[grpc.aio.ServerInterceptor]:
    """The tracing server interceptor (put it first), not tracing :data:`EXCLUDED_SERVICES`."""
    tracer = provider.get_tracer(_TRACER_NAME, schema_url=_SCHEMA_URL)
    return [ServerTracingInterceptor(tracer, frozenset(_excluded_names()))]


class _Setter(Setter[grpc.aio.Metadata]):
    """Writes a W3C carrier into outgoing gRPC metadata."""

    def set(self, carrier: grpc.aio.Metadata, key: str, value: str) -> None:
        carrier[key] = value


_SETTER: Final = _Setter()
_Continuation: TypeAlias = Callable[..., Awaitable[Any]]


class _ClientTracing:
    """A CLIENT span per RPC, its context sent in the call's metadata (the instrumentation's spans:
    same name, kind, attributes and status), without the instrumentation's per-call filter chain
    and its extra async generator around every streamed message."""

    def __init__(self, tracer: trace.Tracer, excluded: frozenset[str]) -> None:
        self._tracer = tracer
        self._excluded = excluded

    def _begin(self, details: grpc.aio.ClientCallDetails) -> tuple[Span | None, grpc.aio.ClientCallDetails]:
        raw: str | bytes = details.method  # bytes at run time in some grpc versions (grpc/grpc#31092)
        method = raw.decode() if isinstance(raw, bytes) else raw
        service = _service_of(method)
        if service in self._excluded:
            return None, details
        attributes: dict[str, AttributeValue] = {
            _RPC_SYSTEM: "grpc",
            _RPC_STATUS: grpc.StatusCode.OK.value[0],
            _RPC_METHOD: method[method.rfind("/") + 1 :],
            _RPC_SERVICE: service,
        }
        span = self._tracer.start_span(method, kind=SpanKind.CLIENT, attributes=attributes)
        metadata = grpc.aio.Metadata(*tuple(details.metadata)) if details.metadata else grpc.aio.Metadata()
        propagate.inject(metadata, context=trace.set_span_in_context(span), setter=_SETTER)
        traced = grpc.aio.ClientCallDetails(
            details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
        )
        return span, traced

    @staticmethod
    def _end(span: Span, code: grpc.StatusCode, details: str | None, *, cancelled_is_error: bool = True) -> None:
        span.set_attribute(_RPC_STATUS, code.value[0])
        if code is not grpc.StatusCode.OK and (cancelled_is_error or code is not grpc.StatusCode.CANCELLED):
            span.set_status(Status(StatusCode.ERROR, details))
        span.end()

    async def _unary(self, continuation: _Continuation, details: grpc.aio.ClientCallDetails, request: Any) -> Any:
        span, traced = self._begin(details)
        if span is None:
            return await continuation(details, request)
        try:
            call = await continuation(traced, request)
            code: grpc.StatusCode = await call.code()
            message: str | None = await call.details()
        except BaseException as error:
            if isinstance(error, grpc.aio.AioRpcError):
                span.set_attribute(_RPC_STATUS, error.code().value[0])
            span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
            span.record_exception(error)
            span.end()
            raise
        self._end(span, code, message)
        return call

    async def _stream(self, continuation: _Continuation, details: grpc.aio.ClientCallDetails, request: Any) -> Any:
        span, traced = self._begin(details)
        if span is None:
            return await continuation(details, request)
        try:
            call = await continuation(traced, request)
        except BaseException as error:
            span.record_exception(error)
            span.end()
            raise
        tasks: set[asyncio.Task[None]] = set()

        async def end(done: Any) -> None:
            # A finished call's code and details are known: these awaits return at once.
            self._end(span, await done.code(), await done.details(), cancelled_is_error=False)

        def finished(done: Any) -> None:
            task = asyncio.ensure_future(end(done))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        # The call itself is returned (no wrapping generator): the span ends when the call does.
        call.add_done_callback(finished)
        return call


class _UnaryUnaryTracing(_ClientTracing, grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(
        self, continuation: _Continuation, client_call_details: grpc.aio.ClientCallDetails, request: Any
    ) -> Any:
        return await self._unary(continuation, client_call_details, request)


class _UnaryStreamTracing(_ClientTracing, grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(
        self, continuation: _Continuation, client_call_details: grpc.aio.ClientCallDetails, request: Any
    ) -> Any:
        return await self._stream(continuation, client_call_details, request)


class _StreamUnaryTracing(_ClientTracing, grpc.aio.StreamUnaryClientInterceptor):
    async def intercept_stream_unary(
        self, continuation: _Continuation, client_call_details: grpc.aio.ClientCallDetails, request_iterator: Any
    ) -> Any:
        return await self._unary(continuation, client_call_details, request_iterator)


class _StreamStreamTracing(_ClientTracing, grpc.aio.StreamStreamClientInterceptor):
    async def intercept_stream_stream(
        self, continuation: _Continuation, client_call_details: grpc.aio.ClientCallDetails, request_iterator: Any
    ) -> Any:
        return await self._stream(continuation, client_call_details, request_iterator)


def client_interceptors(provider: TracerProvider) -> list[grpc.aio.ClientInterceptor]:
    """Tracing client interceptors (all four call shapes), not tracing :data:`EXCLUDED_SERVICES`."""
    tracer = provider.get_tracer(_TRACER_NAME, schema_url=_SCHEMA_URL)
    excluded = frozenset(_excluded_names())
    return [
        _UnaryUnaryTracing(tracer, excluded),
        _UnaryStreamTracing(tracer, excluded),
        _StreamUnaryTracing(tracer, excluded),
        _StreamStreamTracing(tracer, excluded),
    ]


def inject_context(context: Context | None = None) -> dict[str, str]:
    """The W3C carrier (``traceparent``, ``tracestate``, ...) of ``context`` (default: the current one).

    Store it with an item that crosses a queue or the kernel log; empty when no span is active.
    """
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=context)
    return carrier


def extract_context(carrier: Mapping[str, str]) -> Context:
    """The context stored by :func:`inject_context`: a parent for a span, or a link via ``get_current_span``."""
    return propagate.extract(carrier)
