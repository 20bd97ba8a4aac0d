"""The grpc.aio server every PINK service runs: health, reflection, limits, graceful shutdown.

Life cycle::

    server = GrpcServer(settings, [ServiceBinding(NAME, add_XServicer_to_server, servicer)],
                        interceptors=server_interceptors(provider), logger=log)
    await server.start()            # health "" and every service: NOT_SERVING
    ...                             # load state, reconcile, warm up
    await server.set_serving(True)  # ready: Kubernetes readiness passes
    await run_until_signal(server, on_stop=[...], logger=log)

On SIGTERM/SIGINT :func:`run_until_signal` flips health to NOT_SERVING, waits
``drain_seconds`` (load balancers stop sending), gives in-flight RPCs
``grace_seconds`` to finish, then runs the ``on_stop`` callbacks in order.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Any, cast

import grpc
import grpc.aio
from google.protobuf import descriptor, descriptor_pool
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from structlog.stdlib import BoundLogger

from services.common.config import ServiceSettings

__all__ = ["GrpcServer", "ServiceBinding", "run_until_signal"]

OVERALL_HEALTH = ""

_SignalHandler = Callable[[int, FrameType | None], Any] | int | None


@dataclass(frozen=True)
class ServiceBinding:
    """One gRPC service to serve: its full name, the generated ``add_XServicer_to_server`` and the servicer."""

    name: str
    add: Callable[[Any, grpc.aio.Server], None]
    servicer: object


class MethodAwarePool:
    """The descriptor pool reflection answers from, also resolving ``package.Service.Method``.

    The C++/upb pool finds services and messages but not methods by full name, so
    ``grpcurl describe pink.v1.KernelService.SubmitIntent`` would fail; a method lives in its
    service's file, so an unknown symbol is retried as its parent.
    """

    def __init__(self, pool: descriptor_pool.DescriptorPool) -> None:
        self._pool = pool

    def FindFileContainingSymbol(self, symbol: str) -> descriptor.FileDescriptor:  # noqa: N802 - pool protocol
        try:
            return self._pool.FindFileContainingSymbol(symbol)
        except KeyError:
            parent, _, method = symbol.rpartition(".")
            try:
                service = self._pool.FindServiceByName(parent)
            except KeyError:
                service = None
            if service is None or method not in service.methods_by_name:
                raise
            return service.file

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pool, name)


class GrpcServer:
    """A grpc.aio server with standard health (NOT_SERVING until :meth:`set_serving`) and reflection."""

    def __init__(
        self,
        settings: ServiceSettings,
        bindings: Sequence[ServiceBinding],
        *,
        interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
        logger: BoundLogger,
    ) -> None:
        names = [binding.name for binding in bindings]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"services bound twice: {', '.join(duplicates)}")
        reserved = {health.SERVICE_NAME, reflection.SERVICE_NAME, OVERALL_HEALTH} & set(names)
        if reserved:
            raise ValueError(f"service names reserved by the server itself: {', '.join(sorted(reserved))}")
        self._settings = settings
        self._bindings = tuple(bindings)
        self._interceptors = tuple(interceptors)
        self._log = logger
        self._server: grpc.aio.Server | None = None
        self._health: health.aio.HealthServicer | None = None
        self._port: int | None = None
        self._stopping = False
        self._stopped = asyncio.Event()

    @property
    def port(self) -> int:
        """The bound port (after :meth:`start`)."""
        if self._port is None:
            raise RuntimeError("GrpcServer is not started")
        return self._port

    @property
    def health_keys(self) -> tuple[str, ...]:
        """The health-check keys this server reports: ``""`` (overall) and every bound service."""
        return (OVERALL_HEALTH, *(binding.name for binding in self._bindings))

    async def start(self) -> int:
        """Register everything, bind ``settings.host:settings.port``, start; returns the bound port."""
        if self._server is not None:
            raise RuntimeError("GrpcServer already started")
        settings = self._settings
        server = grpc.aio.server(
            interceptors=self._interceptors,
            options=[
                ("grpc.max_send_message_length", settings.max_message_bytes),
                ("grpc.max_receive_message_length", settings.max_message_bytes),
                # Never share a port with another process silently (Linux defaults to SO_REUSEPORT).
                ("grpc.so_reuseport", 0),
            ],
            maximum_concurrent_rpcs=settings.max_concurrent_rpcs,
        )
        for binding in self._bindings:
            binding.add(binding.servicer, server)

        # The library servicer starts with "" SERVING: report NOT_SERVING until the service is ready.
        health_servicer = health.aio.HealthServicer()
        for key in self.health_keys:
            await health_servicer.set(key, health_pb2.HealthCheckResponse.NOT_SERVING)
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        reflection.enable_server_reflection(
            [*(binding.name for binding in self._bindings), health.SERVICE_NAME, reflection.SERVICE_NAME],
            server,
            # Duck-typed: reflection only calls the pool's Find* methods.
            pool=cast(descriptor_pool.DescriptorPool, MethodAwarePool(descriptor_pool.Default())),
        )

        address = f"{settings.host}:{settings.port}"
        try:
            port = server.add_insecure_port(address)
        except RuntimeError:
            self._log.exception("grpc server failed to bind", address=address)
            raise
        if port == 0:
            raise RuntimeError(f"grpc server could not bind {address}")
        await server.start()
        self._server, self._health, self._port = server, health_servicer, port
        self._log.info(
            "grpc server started",
            address=address,
            port=port,
            services=[binding.name for binding in self._bindings],
            serving=False,
        )
        return port

    async def set_serving(self, serving: bool) -> None:
        """Report every health key SERVING (ready) or NOT_SERVING; ignored (and logged) once stopping."""
        if self._health is None:
            raise RuntimeError("GrpcServer is not started")
        if self._stopping:
            self._log.warning("health change ignored: server is shutting down", serving=serving)
            return
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        for key in self.health_keys:
            await self._health.set(key, status)
        self._log.info("health changed", serving=serving)

    async def stop(self) -> None:
        """NOT_SERVING everywhere, wait ``drain_seconds``, then ``server.stop(grace_seconds)``.

        A second call waits for the first to finish; a server never started has nothing to stop.
        """
        if self._server is None or self._health is None:
            self._log.info("grpc server stop: never started")
            return
        if self._stopping:
            await self._stopped.wait()
            return
        self._stopping = True
        try:
            settings = self._settings
            await self._health.enter_graceful_shutdown()
            self._log.info("grpc server draining", drain_seconds=settings.drain_seconds)
            await asyncio.sleep(settings.drain_seconds)
            self._log.info("grpc server stopping", grace_seconds=settings.grace_seconds)
            await self._server.stop(settings.grace_seconds)
            self._log.info("grpc server stopped")
        finally:
            self._stopped.set()


async def run_until_signal(
    server: GrpcServer,
    *,
    on_stop: Sequence[Callable[[], Awaitable[None]]] = (),
    logger: BoundLogger,
    stop_event: asyncio.Event | None = None,
) -> None:
    """Serve until SIGTERM or SIGINT (or until ``stop_event`` is set), then shut down in order.

    Shutdown: :meth:`GrpcServer.stop`, then every ``on_stop`` callback in order (e.g. the
    metrics server, telemetry flush). A failing step is logged and the remaining steps still
    run; the failures are raised together at the end. The signal handlers are removed (and
    the previous ones restored) before returning.
    """
    loop = asyncio.get_running_loop()
    event = stop_event if stop_event is not None else asyncio.Event()
    signals = (signal.SIGTERM, signal.SIGINT)
    previous: dict[signal.Signals, _SignalHandler] = {sig: signal.getsignal(sig) for sig in signals}

    def on_signal(sig: signal.Signals) -> None:
        if event.is_set():
            logger.warning("signal received, shutdown already in progress", signal=sig.name)
        else:
            logger.info("signal received, shutting down", signal=sig.name)
        event.set()

    for sig in signals:
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        await event.wait()
        logger.info("shutdown started")
        failures: list[Exception] = []
        steps: list[tuple[str, Callable[[], Awaitable[None]]]] = [("grpc server", server.stop)]
        steps += [(getattr(step, "__qualname__", repr(step)), step) for step in on_stop]
        for name, step in steps:
            logger.info("shutdown step", step=name)
            try:
                await step()
            except Exception as error:
                logger.exception("shutdown step failed", step=name)
                failures.append(error)
        if failures:
            raise ExceptionGroup("shutdown steps failed", failures)
        logger.info("shutdown complete")
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
            handler = previous[sig]
            if handler is not None:  # None: installed outside Python, cannot be put back
                signal.signal(sig, handler)
