"""PINK services as child processes (``python -m services.<name>``).

Every service writes one JSON object per log line (``services.common.logging``) on stderr,
which the child merges into its stdout; :class:`Child` reads it continuously (so the child
never blocks on a full pipe), keeps every line, and lets callers wait for a log event (the
bound port of a service listening on port 0 is learnt from its start-up line) or for the
standard ``grpc.health.v1.Health/Watch`` stream to reach SERVING. Waiting fails at once, with
the child's output, if the child exits first.

Used by the platform launcher (``python -m services.launcher``) and by the tests that run
real service processes (the kernel crash test).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, NoReturn

import grpc
import grpc.aio
from grpc_health.v1 import health_pb2

from services.common.logging import get_logger

__all__ = ["GRPC_STARTED", "Child", "ChildExitedError", "child_process"]

#: Log event of ``services.common.grpc_server`` carrying the bound ``port``.
GRPC_STARTED = "grpc server started"
_OUTPUT_TAIL = 40
#: Longest output line read (a log line with a large field must not break the reader).
_LINE_LIMIT = 16 * 1024 * 1024
#: Seconds a child that is still running when its context exits has to stop after SIGTERM.
CLOSE_GRACE = 10.0
_log = get_logger(__name__)


def inherited_env() -> dict[str, str]:
    """This process's environment without any ``PINK_*`` or ``OTEL_*`` variable: a child is then
    configured by exactly the settings its caller adds, never by what the shell happened to set."""
    return {key: value for key, value in os.environ.items() if not key.startswith(("PINK_", "OTEL_"))}


class ChildExitedError(RuntimeError):
    """The child exited (or its output ended) while the caller was waiting for something from it."""


class Child:
    """A started child process and everything it wrote so far (see the module docstring)."""

    def __init__(self, name: str, process: asyncio.subprocess.Process, on_line: Callable[[str], None] | None) -> None:
        self.name = name
        self.process = process
        #: Every output line, decoded, in order.
        self.lines: list[str] = []
        #: Every output line that is a JSON log object, in order.
        self.logs: list[dict[str, Any]] = []
        self._on_line = on_line
        self._changed = asyncio.Event()
        self._ended = False
        self._reader = asyncio.create_task(self._read(), name=f"{name}-output-{process.pid}")

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def returncode(self) -> int | None:
        return self.process.returncode

    async def _read(self) -> None:
        stream = self.process.stdout
        if stream is None:
            raise ChildExitedError(f"{self.name}: stdout is not a pipe")
        try:
            async for raw in stream:
                line = raw.decode(errors="replace").rstrip("\n")
                self.lines.append(line)
                # Not every line is a log object (a traceback before logging is configured).
                with contextlib.suppress(ValueError):
                    entry = json.loads(line)
                    if isinstance(entry, dict):
                        self.logs.append(entry)
                if self._on_line is not None:
                    self._on_line(line)
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
                    raise ChildExitedError(
                        f"{self.name} exited with {self.process.returncode} before logging {name!r}:\n"
                        + self.output_tail()
                    )
                await changed.wait()

    async def wait_serving(self, seconds: float) -> int:
        """Waits until the child's gRPC health (``""``) is SERVING; returns its gRPC port."""
        try:
            async with asyncio.timeout(seconds):
                port = int((await self.log_event(GRPC_STARTED, seconds))["port"])
                problem = await self._watch_health(port, seconds)
        except TimeoutError:
            raise ChildExitedError(f"{self.name} was not SERVING within {seconds} s:\n{self.output_tail()}") from None
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
        """Raises :class:`ChildExitedError` with the exit status (if the child exits soon) and its output."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                await self.process.wait()
        raise ChildExitedError(f"{what}; {self.name} exit status {self.process.returncode}:\n{self.output_tail()}")

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

    async def stop(self, seconds: float) -> int:
        """SIGTERM, then the exit status once the child has shut down gracefully.

        Raises :class:`ChildExitedError` (after a SIGKILL) if it is still running after ``seconds``.
        """
        self.send(signal.SIGTERM)
        try:
            return await self.wait(seconds)
        except TimeoutError:
            self.send(signal.SIGKILL)
            raise ChildExitedError(
                f"{self.name} did not stop within {seconds} s of SIGTERM and was killed:\n{self.output_tail()}"
            ) from None

    async def close(self, grace: float = CLOSE_GRACE) -> None:
        """Stops the child if it still runs (SIGTERM, SIGKILL after ``grace`` seconds), reaps it and
        stops reading its output.

        SIGTERM first: a service interrupted mid-run (Ctrl-C on ``make run``, a failed session)
        still drains, writes its final snapshot and closes its journal; only one that does not
        stop in time is killed (and that is logged).
        """
        try:
            if self.process.returncode is None:
                try:
                    await self.stop(grace)
                except ChildExitedError:  # stop() killed it after the grace period
                    _log.warning("child_killed", child=self.name, pid=self.pid, grace_seconds=grace)
            await self.wait(30)
        finally:
            if not self._reader.done():
                self._reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._reader


@asynccontextmanager
async def child_process(
    name: str,
    module: str,
    env: Mapping[str, str],
    *,
    cwd: Path,
    on_line: Callable[[str], None] | None = None,
    close_grace: float = CLOSE_GRACE,
) -> AsyncIterator[Child]:
    """``python -m module`` under exactly ``env``; on exit always stopped (if still running: SIGTERM,
    then SIGKILL after ``close_grace`` seconds) and reaped."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        env=dict(env),
        cwd=cwd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        limit=_LINE_LIMIT,
        # Its own process group: a terminal's Ctrl-C reaches the parent only, which then stops
        # its children in order (kernel before venue before simulator), not all at once.
        process_group=0,
    )
    child = Child(name, process, on_line)
    try:
        yield child
    finally:
        await child.close(close_grace)
