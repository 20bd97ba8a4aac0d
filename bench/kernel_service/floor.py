"""The physical floor of a durable answer: an empty unary RPC on the kernel's server stack, and an fsync.

floor = empty RPC p50 + fsync p50; SubmitIntent at concurrency 1 is compared with it. The empty
server is ``services.common.grpc_server.GrpcServer`` with the kernel's OTel interceptors, health
and reflection, run in its own process (``--serve empty``), so the only difference from the kernel
is the handler. The fsync is one small appended write + ``fdatasync`` on the filesystem of the
kernel's data directory: what a one-record group commit costs the disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Final

import grpc
import grpc.aio
from google.protobuf import empty_pb2

from bench.kernel_service.stats import Latency
from services.common.config import ServiceSettings, load_settings
from services.common.grpc_server import GrpcServer, ServiceBinding
from services.common.logging import get_logger
from services.common.telemetry import server_interceptors, setup_tracing

EMPTY_SERVICE: Final = "pink.bench.EmptyService"
EMPTY_METHOD: Final = f"/{EMPTY_SERVICE}/Call"
#: Bytes of one probe write: about one journal record with its frame.
PROBE_BYTES: Final = 400
log = get_logger("bench.kernel_service")


async def _empty_call(request: empty_pb2.Empty, context: grpc.aio.ServicerContext[Any, Any]) -> empty_pb2.Empty:
    return empty_pb2.Empty()


def _empty_service(
    more: Mapping[str, grpc.RpcMethodHandler[Any, Any]],
) -> Callable[[object, grpc.aio.Server], None]:
    def add(servicer: object, server: grpc.aio.Server) -> None:
        handler = grpc.unary_unary_rpc_method_handler(
            _empty_call,
            request_deserializer=empty_pb2.Empty.FromString,
            response_serializer=empty_pb2.Empty.SerializeToString,
        )
        handlers = {"Call": handler, **more}
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(EMPTY_SERVICE, handlers),))

    return add


async def serve_empty(stop: asyncio.Event, more: Mapping[str, grpc.RpcMethodHandler[Any, Any]]) -> None:
    """The floor's server: GrpcServer with the kernel's interceptors, health and reflection, the empty method.

    ``more`` adds methods to the same service (the durable empty RPC).
    """
    provider = setup_tracing("pink-bench-empty", "0")
    server = GrpcServer(
        load_settings(ServiceSettings, port=0),
        [ServiceBinding(EMPTY_SERVICE, _empty_service(more), object())],
        interceptors=server_interceptors(provider),
        logger=log,
    )
    port = await server.start()
    await server.set_serving(True)
    sys.stdout.write(f"PORT {port}\n")
    sys.stdout.flush()
    await stop.wait()
    await server.stop()
    provider.shutdown()


@contextlib.contextmanager
def _probe(path: Path) -> Iterator[Callable[[], None]]:
    """An append-only probe file and its write: ``PROBE_BYTES`` appended, then ``fdatasync``."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    payload = os.urandom(PROBE_BYTES)

    def write() -> None:
        os.write(fd, payload)
        os.fdatasync(fd)

    try:
        yield write
    finally:
        os.close(fd)
        path.unlink()


def fsync_floor(directory: Path, count: int, pause: float = 0.0) -> Latency:
    """``count`` probe writes after a tenth as many to warm up, ``pause`` seconds apart (not timed).

    Synchronous on purpose, and run while nothing else is in flight: it times the disk alone. The
    paused form is the floor of the isolated run: on this VM's virtual disk an fdatasync after an
    idle gap costs more than one right after another, so a paced run is compared with paced probes.
    """
    times: list[int] = []
    with _probe(directory / "fsync-probe.bin") as write:
        for _ in range(count + count // 10):
            begun = time.perf_counter_ns()
            write()
            times.append(time.perf_counter_ns() - begun)
            if pause:
                time.sleep(pause)
    return Latency.of(times[count // 10 :])


async def fsync_floor_threaded(directory: Path, count: int) -> Latency:
    """The same, each write in a worker thread as the journal does it (``asyncio.to_thread``): the hop's cost."""
    times: list[int] = []
    with _probe(directory / "fsync-probe-thread.bin") as write:
        for _ in range(count + count // 10):
            begun = time.perf_counter_ns()
            await asyncio.to_thread(write)
            times.append(time.perf_counter_ns() - begun)
    return Latency.of(times[count // 10 :])
