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
import os
from collections.abc import Callable, Mapping

import grpc
import grpc.aio
from opentelemetry import propagate
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.grpc import aio_client_interceptors, aio_server_interceptor
from opentelemetry.instrumentation.grpc.filters import any_of, negate, service_name
from opentelemetry.sdk.environment_variables import (
    OTEL_EXPORTER_OTLP_ENDPOINT,
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
    OTEL_SDK_DISABLED,
)
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter

from services.common.logging import get_logger

__all__ = [
    "EXCLUDED_SERVICES",
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


def _server_filter() -> Callable[[grpc.HandlerCallDetails], bool]:
    """True for the RPCs to trace: everything but the excluded services."""
    excluded: list[Callable[[grpc.HandlerCallDetails], bool]] = [service_name(name) for name in _excluded_names()]
    return negate(any_of(*excluded))


def _client_filter() -> Callable[[grpc.aio.ClientCallDetails], bool]:
    """True for the RPCs to trace: everything but the excluded services."""
    excluded: list[Callable[[grpc.aio.ClientCallDetails], bool]] = [service_name(name) for name in _excluded_names()]
    return negate(any_of(*excluded))


# The instrumentation's factory functions carry no annotations (hence the ignores below).


def server_interceptors(provider: TracerProvider) -> list[grpc.aio.ServerInterceptor]:
    """The OTel grpc.aio server interceptor (put it first), not tracing :data:`EXCLUDED_SERVICES`."""
    interceptor: grpc.aio.ServerInterceptor = aio_server_interceptor(  # type: ignore[no-untyped-call]
        tracer_provider=provider, filter_=_server_filter()
    )
    return [interceptor]


def client_interceptors(provider: TracerProvider) -> list[grpc.aio.ClientInterceptor]:
    """The OTel grpc.aio client interceptors (all four call shapes), not tracing :data:`EXCLUDED_SERVICES`."""
    interceptors: list[grpc.aio.ClientInterceptor] = aio_client_interceptors(  # type: ignore[no-untyped-call]
        tracer_provider=provider, filter_=_client_filter()
    )
    return interceptors


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
