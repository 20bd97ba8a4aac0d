"""``python -m services.launcher`` (``make run``): the platform on embedded defaults.

Starts the BingX simulator, the venue service (simulator environment) and the kernel service
as child processes, each on an ephemeral loopback port and each waited for until it is ready
(the simulator's listening line; gRPC health SERVING for the services), runs the paper-trading
session of :mod:`services.launcher.session`, then stops the children in reverse order with
SIGTERM and checks that each shut down cleanly (exit status 0); Ctrl-C or a SIGTERM to the
launcher stops them the same way. Exit status: 0 on success, 1 if anything failed (the failing
child's last output is printed), 2 on invalid settings, 130 after Ctrl-C, 143 after SIGTERM.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

import grpc.aio

from services.common.config import ConfigError, load_settings
from services.common.proto import kernel_service_pb2_grpc
from services.launcher.children import ChildExitedError
from services.launcher.config import LaunchSettings
from services.launcher.platform import PlatformOptions, start_platform, stop_platform
from services.launcher.session import SessionError, run_session

#: Exit status after Ctrl-C or SIGTERM (128 + the signal, as a shell reports it).
INTERRUPTED = 128 + signal.SIGINT
TERMINATED = 128 + signal.SIGTERM


async def _platform(settings: LaunchSettings, run_dir: Path, out: TextIO) -> None:
    options = PlatformOptions(
        run_dir=run_dir,
        seed=settings.seed,
        price_tick_seconds=settings.price_tick_seconds,
        start_seconds=settings.start_seconds,
        verbose=settings.verbose,
    )
    async with AsyncExitStack() as stack:
        platform = await start_platform(stack, options, out)
        out.write("\n")
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{platform.kernel_port}") as channel:
                await run_session(kernel_service_pb2_grpc.KernelServiceStub(channel), settings, out)
        except asyncio.CancelledError:
            # Ctrl-C or SIGTERM (_run cancels this task): stop the services as on a normal end.
            out.write("\ninterrupted: stopping the services\n")
            await stop_platform(platform, settings.stop_seconds, out)
            raise
        out.write("\n")
        await stop_platform(platform, settings.stop_seconds, out)


async def _run(settings: LaunchSettings, run_dir: Path, out: TextIO) -> signal.Signals | None:
    """Runs the platform; returns the signal (SIGINT or SIGTERM) that stopped it, if any.

    Both signals get handlers of their own rather than relying on Python's default SIGINT
    handler: a process started with SIGINT ignored (a background job of a script, nohup)
    inherits that disposition, and Ctrl-C must still stop the services gracefully.
    """
    task = asyncio.current_task()
    if task is None:  # unreachable under asyncio.run; narrows the type
        raise RuntimeError("no running task")
    stopped_by: signal.Signals | None = None

    def stop(signum: signal.Signals) -> None:
        nonlocal stopped_by
        if stopped_by is None:  # a second signal while stopping changes nothing
            stopped_by = signum
            task.cancel()

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop, signum)
    try:
        await _platform(settings, run_dir, out)
    except asyncio.CancelledError:
        if stopped_by is None:
            raise
        task.uncancel()  # the cancellation was ours: a signal, handled
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    return stopped_by


def main() -> int:
    out = sys.stdout
    try:
        settings = load_settings(LaunchSettings)
    except ConfigError as error:
        sys.stderr.write(f"{error}\n")
        return 2
    run_dir = settings.data_dir.resolve() / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    run_dir.mkdir(parents=True, exist_ok=False)
    out.write(f"PINK paper trading on the BingX simulator; run directory {run_dir}\n")
    try:
        stopped_by = asyncio.run(_run(settings, run_dir, out))
    except (ChildExitedError, SessionError, grpc.aio.AioRpcError, TimeoutError) as error:
        sys.stderr.write(f"run failed: {type(error).__name__}: {error}\n")
        return 1
    except KeyboardInterrupt:  # Ctrl-C before the event loop's handler was installed
        out.write("interrupted\n")
        return INTERRUPTED
    if stopped_by == signal.SIGINT:
        out.write("interrupted\n")
        return INTERRUPTED
    if stopped_by == signal.SIGTERM:
        out.write("terminated\n")
        return TERMINATED
    return 0


if __name__ == "__main__":
    sys.exit(main())
