"""The benchmark's child processes: the empty server and the venue double (``--serve``), and kernels.

Every server runs in its own process so that client, kernel and venue compete for the cores as
they do in production, and their CPU time can be read apart. Children are asyncio subprocesses:
waiting for a port, a SERVING answer or an exit never blocks the event loop that times the calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import sys
import time
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

import grpc
import grpc.aio
from grpc_health.v1 import health_pb2

from bench.kernel_service.durable import DURABLE_NAME, durable_handler, durable_service
from bench.kernel_service.floor import serve_empty
from bench.kernel_service.settings import START_TIMEOUT, BenchError
from bench.kernel_service.stats import process_cpu_seconds
from services.common.logging import configure_logging
from services.launcher.children import inherited_env


class Child:
    """A subprocess this benchmark started; always stopped (SIGTERM, then SIGKILL) by its owner."""

    def __init__(self, name: str, log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.started = 0.0
        self.started_wall = 0.0
        self._process: asyncio.subprocess.Process | None = None

    @classmethod
    async def spawn(
        cls, name: str, args: Sequence[str], log_path: Path, env: dict[str, str] | None = None, *, port_line: bool
    ) -> Child:
        """Starts ``args``; stderr (and stdout, unless the child reports its port on it) go to ``log_path``."""
        child = cls(name, log_path)
        child.started = time.perf_counter()
        child.started_wall = time.time()
        child._process = await asyncio.create_subprocess_exec(
            *args,
            stdout=asyncio.subprocess.PIPE if port_line else child._log,
            stderr=child._log,
            env=env,
            cwd=Path.cwd(),
        )
        return child

    @property
    def process(self) -> asyncio.subprocess.Process:
        if self._process is None:
            raise BenchError(f"{self.name} was not started")
        return self._process

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.returncode is None

    def cpu_seconds(self) -> float:
        return process_cpu_seconds(self.pid)

    async def read_port(self, seconds: float) -> int:
        """The first stdout line of a ``--serve`` child (``PORT <n>``), within ``seconds``."""
        stdout = self.process.stdout
        if stdout is None:
            raise BenchError(f"{self.name}: no stdout pipe")
        try:
            line = (await asyncio.wait_for(stdout.readline(), seconds)).decode()
        except TimeoutError:
            line = ""
        if not line.startswith("PORT "):
            raise BenchError(f"{self.name} did not report its port (got {line!r}); log: {self.tail()}")
        return int(line.split()[1])

    def tail(self, lines: int = 15) -> str:
        if not self._log.closed:
            self._log.flush()
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError as error:
            return f"(no log: {error})"
        return "\n".join(text[-lines:])

    def check_alive(self) -> None:
        if not self.running():
            raise BenchError(f"{self.name} exited with {self.process.returncode}; log:\n{self.tail()}")

    async def stop(self, sig: signal.Signals = signal.SIGTERM, grace: float = 15.0) -> int:
        """Signals the process and waits for it (SIGKILL after ``grace`` seconds); returns its exit status."""
        process = self.process
        if process.returncode is None:
            # It may exit between the check and the signal: its status is collected below either way.
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(sig)
            try:
                await asyncio.wait_for(process.wait(), grace)
            except TimeoutError:
                process.kill()
        code = await process.wait()
        self._log.close()
        return code


class Children:
    """Every child of the run: stopped on exit whatever happens."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self._children: list[Child] = []

    async def serve(self, kind: str) -> tuple[Child, int]:
        """A ``--serve kind`` child of this package and its port (the empty server's journal in the work dir)."""
        args = [sys.executable, "-m", "bench.kernel_service", "--serve", kind]
        if kind == "empty":
            args += ["--data-dir", str(self.work / f"durable-{len(self._children)}")]
        child = await Child.spawn(kind, args, self.work / f"{kind}-{len(self._children)}.log", port_line=True)
        self._children.append(child)
        return child, await child.read_port(START_TIMEOUT)

    async def kernel(self, data_dir: Path, venue_address: str, port: int, **settings: object) -> Child:
        """``python -m services.kernel`` with PINK_KERNEL_* settings (fsync on unless overridden)."""
        env = inherited_env()
        values: dict[str, object] = {
            "data_dir": data_dir,
            "venue_address": venue_address,
            "port": port,
            "fsync": "true",
            "log_level": "INFO",
            **settings,
        }
        env.update({f"PINK_KERNEL_{key.upper()}": str(value) for key, value in values.items()})
        name = f"kernel-{len(self._children)}"
        args = [sys.executable, "-m", "services.kernel"]
        child = await Child.spawn(name, args, self.work / f"{name}.log", env, port_line=False)
        self._children.append(child)
        return child

    async def stop_all(self) -> None:
        for child in reversed(self._children):
            if child.running():
                await child.stop(signal.SIGKILL, grace=5.0)
            else:
                await child.stop()
        self._children.clear()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def channel(port: int) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(
        f"127.0.0.1:{port}",
        options=[("grpc.initial_reconnect_backoff_ms", 20), ("grpc.max_reconnect_backoff_ms", 50)],
    )


async def wait_serving(channel: grpc.aio.Channel, child: Child, seconds: float) -> float:
    """Polls the overall health of the server behind ``channel`` every 2 ms until it is SERVING.

    Returns ``time.perf_counter()`` at the first SERVING answer.
    """
    # By name: the HealthStub type stubs declare no methods.
    check = channel.unary_unary(
        "/grpc.health.v1.Health/Check",
        request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
        response_deserializer=health_pb2.HealthCheckResponse.FromString,
    )
    request = health_pb2.HealthCheckRequest(service="")
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        child.check_alive()
        try:
            answer = await check(request, timeout=0.5, wait_for_ready=True)
        except grpc.aio.AioRpcError as error:
            if error.code() not in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE):
                raise
        else:
            if answer.status == health_pb2.HealthCheckResponse.SERVING:
                return time.perf_counter()
            await asyncio.sleep(0.002)
    raise BenchError(f"{child.name} was not SERVING within {seconds} s; log:\n{child.tail()}")


async def _serve_venue(stop: asyncio.Event) -> None:
    from tests.kernel_service.venue_double import VenueDouble  # noqa: PLC0415 - only in the venue child

    venue = VenueDouble(balance=Decimal(10_000_000))
    port = await venue.start()
    sys.stdout.write(f"PORT {port}\n")
    sys.stdout.flush()
    await stop.wait()
    await venue.stop()


async def _serve_empty(stop: asyncio.Event, data_dir: Path) -> None:
    async with durable_service(data_dir) as group:
        await serve_empty(stop, {DURABLE_NAME: durable_handler(group)})


def serve_child(kind: str, data_dir: Path | None) -> int:
    """Entry point of a ``--serve`` child (``empty`` or ``venue``): serve until SIGTERM/SIGINT.

    The empty server's durable method journals in ``data_dir``.
    """
    if kind not in ("empty", "venue") or (kind == "empty") != (data_dir is not None):
        raise BenchError(f"--serve {kind}: a --data-dir is needed by the empty server and only by it")
    configure_logging(f"pink-bench-{kind}", "INFO")

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        if data_dir is None:
            await _serve_venue(stop)
        else:
            await _serve_empty(stop, data_dir)

    asyncio.run(main())
    return 0
