"""The kernel service as a real child process (``python -m services.kernel``), for crash tests.

:func:`kernel_env` turns a :class:`KernelSettings` into the ``PINK_KERNEL_*`` environment that
makes the child load exactly those settings (so the test's own ``settings`` object, e.g. for
``clean_replay``, describes the child's kernel). :func:`kernel_process` starts the child and
always kills it (SIGKILL) and reaps it on exit, whatever happened in between.

The child writes one JSON object per log line (``services.common.logging``) on stderr, which is
merged into its stdout and read continuously by :class:`KernelProcess` (so the child never
blocks on a full pipe). Its bound port is learnt from the ``grpc server started`` line (the
service listens on port 0); readiness is the standard ``grpc.health.v1.Health/Watch`` stream
reaching SERVING. Waiting for a log line or for SERVING fails at once, with the child's output,
if the child exits first.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, NoReturn

import grpc
import grpc.aio
from grpc_health.v1 import health_pb2

from services.common.config import env_var_name
from services.kernel.config import KernelSettings

__all__ = ["REPO_ROOT", "KernelExitedError", "KernelProcess", "kernel_env", "kernel_process"]

REPO_ROOT = Path(__file__).resolve().parents[2]
#: Log event (``services.common.grpc_server``) that carries the bound port, logged before recovery ends.
SERVER_STARTED = "grpc server started"
_OUTPUT_TAIL = 40
#: Longest output line read (a log line with a large field must not break the reader).
_LINE_LIMIT = 16 * 1024 * 1024


class KernelExitedError(AssertionError):
    """The child exited (or its output ended) while the test was waiting for something from it."""


def kernel_env(settings: KernelSettings) -> dict[str, str]:
    """The environment under which ``python -m services.kernel`` loads exactly ``settings``.

    Every field is passed explicitly (defaults too), and no other ``PINK_*`` or ``OTEL_*``
    variable is inherited from the test's environment.
    """
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PINK_", "OTEL_"))}
    for name, value in settings.model_dump(mode="json").items():
        if value is None:
            continue
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, list | dict):
            text = json.dumps(value)
        else:
            text = str(value)
        env[env_var_name(KernelSettings, name)] = text
    return env


class KernelProcess:
    """A started kernel child process and everything it logged so far (see the module docstring)."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        #: Every output line, decoded, in order.
        self.lines: list[str] = []
        #: Every output line that is a JSON log object, in order.
        self.logs: list[dict[str, Any]] = []
        self._changed = asyncio.Event()
        self._ended = False
        self._reader = asyncio.create_task(self._read(), name=f"kernel-output-{process.pid}")

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def returncode(self) -> int | None:
        return self.process.returncode

    async def _read(self) -> None:
        stream = self.process.stdout
        assert stream is not None, "the child's stdout is a pipe"
        try:
            async for raw in stream:
                line = raw.decode(errors="replace").rstrip("\n")
                self.lines.append(line)
                with contextlib.suppress(ValueError):
                    entry = json.loads(line)
                    if isinstance(entry, dict):
                        self.logs.append(entry)
                self._notify()
        finally:
            self._ended = True
            self._notify()

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def output_tail(self, lines: int = _OUTPUT_TAIL) -> str:
        """The last ``lines`` lines the child wrote (for failure messages)."""
        return "\n".join(self.lines[-lines:])

    def events(self, name: str) -> list[dict[str, Any]]:
        """Every log entry whose ``event`` is ``name``, in order."""
        return [entry for entry in self.logs if entry.get("event") == name]

    async def log_event(self, name: str, seconds: float) -> dict[str, Any]:
        """The first log entry with ``event == name``, waiting for it as the output arrives."""
        async with asyncio.timeout(seconds):
            while True:
                changed = self._changed
                found = self.events(name)
                if found:
                    return found[0]
                if self._ended:
                    await self.process.wait()
                    raise KernelExitedError(
                        f"the kernel exited with {self.process.returncode} before logging {name!r}:\n"
                        + self.output_tail()
                    )
                await changed.wait()

    async def wait_serving(self, seconds: float) -> int:
        """Waits until the child's health (``""``) is SERVING; returns its gRPC port."""
        try:
            async with asyncio.timeout(seconds):
                port = int((await self.log_event(SERVER_STARTED, seconds))["port"])
                problem = await self._watch_health(port, seconds)
        except TimeoutError:
            raise AssertionError(f"the kernel was not SERVING within {seconds} s:\n{self.output_tail()}") from None
        if problem is not None:
            await self._fail_exited(problem)
        return port

    async def _watch_health(self, port: int, seconds: float) -> str | None:
        """None once ``Health/Watch`` reports SERVING; otherwise what ended the watch."""
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            watch = channel.unary_stream(
                "/grpc.health.v1.Health/Watch",
                request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
                response_deserializer=health_pb2.HealthCheckResponse.FromString,
            )
            call = watch(health_pb2.HealthCheckRequest(service=""), timeout=seconds)
            try:
                async for response in call:
                    if response.status == health_pb2.HealthCheckResponse.SERVING:
                        return None
            except grpc.aio.AioRpcError as error:
                return f"the health watch failed with {error.code().name}"
            finally:
                call.cancel()
        return "the health watch ended before SERVING"

    async def _fail_exited(self, what: str) -> NoReturn:
        """Raises :class:`KernelExitedError` with the exit status (if the child exits soon) and its output."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                await self.process.wait()
        raise KernelExitedError(f"{what}; kernel exit status {self.process.returncode}:\n{self.output_tail()}")

    def send(self, sig: signal.Signals) -> None:
        """Sends ``sig`` to the child (nothing if it has been reaped already)."""
        if self.process.returncode is None:
            self.process.send_signal(sig)

    async def wait(self, seconds: float) -> int:
        """Waits for the child to exit and for its output to end; returns its exit status."""
        async with asyncio.timeout(seconds):
            status = await self.process.wait()
            await self._reader
        return status

    async def close(self) -> None:
        """SIGKILLs the child if it still runs, reaps it and stops reading its output."""
        self.send(signal.SIGKILL)
        try:
            await self.wait(30)
        finally:
            if not self._reader.done():
                self._reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._reader


@asynccontextmanager
async def kernel_process(settings: KernelSettings) -> AsyncIterator[KernelProcess]:
    """``python -m services.kernel`` under :func:`kernel_env` (``settings``); always killed and reaped on exit."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.kernel",
        env=kernel_env(settings),
        cwd=REPO_ROOT,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        limit=_LINE_LIMIT,
    )
    child = KernelProcess(process)
    try:
        yield child
    finally:
        await child.close()
