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
import json
import signal
import sys
from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

import grpc.aio

from services.common.config import ConfigError, load_settings
from services.common.proto import kernel_service_pb2_grpc
from services.launcher.children import Child, ChildExitedError, child_process, inherited_env
from services.launcher.config import LaunchSettings
from services.launcher.session import SessionError, run_session

REPO_ROOT = Path(__file__).resolve().parents[2]
#: The simulator's start-up log event (it serves HTTP, not gRPC).
SIM_LISTENING = "simulator_listening"
#: Exit status after Ctrl-C or SIGTERM (128 + the signal, as a shell reports it).
INTERRUPTED = 128 + signal.SIGINT
TERMINATED = 128 + signal.SIGTERM


def _printer(name: str, verbose: bool, out: TextIO) -> Callable[[str], None]:
    """Prints a child's warnings and errors (every line when verbose), prefixed with its name."""

    def show(line: str) -> None:
        if verbose:
            out.write(f"[{name}] {line}\n")
            return
        try:
            entry = json.loads(line)
        except ValueError:
            out.write(f"[{name}] {line}\n")  # not a log object: a traceback or a crash message
            return
        if isinstance(entry, dict) and str(entry.get("level", "")).lower() in {"warning", "error", "critical"}:
            out.write(f"[{name}] {entry.get('level')}: {entry.get('event')} {line}\n")

    return show


async def _start(
    stack: AsyncExitStack, name: str, module: str, env: Mapping[str, str], *, settings: LaunchSettings, out: TextIO
) -> Child:
    child = await stack.enter_async_context(
        child_process(name, module, env, cwd=REPO_ROOT, on_line=_printer(name, settings.verbose, out))
    )
    out.write(f"started {name} (pid {child.pid})\n")
    return child


async def _platform(settings: LaunchSettings, run_dir: Path, out: TextIO) -> None:
    base = inherited_env()
    async with AsyncExitStack() as stack:
        sim_env = base | {
            "PINK_SIM_PORT": "0",
            "PINK_SIM_SEED": str(settings.seed),
            "PINK_SIM_TICK_SECONDS": str(settings.price_tick_seconds),
        }
        sim = await _start(stack, "simulator", "services.venue.sim", sim_env, settings=settings, out=out)
        sim_port = int((await sim.log_event(SIM_LISTENING, settings.start_seconds))["port"])
        out.write(f"simulator listening on 127.0.0.1:{sim_port}\n")

        venue_env = base | {
            "PINK_VENUE_ENVIRONMENT": "simulator",
            "PINK_VENUE_REST_URL": f"http://127.0.0.1:{sim_port}",
        }
        venue = await _start(stack, "venue", "services.venue", venue_env, settings=settings, out=out)
        venue_port = await venue.wait_serving(settings.start_seconds)
        out.write(f"venue service SERVING on 127.0.0.1:{venue_port}\n")

        kernel_env = base | {
            "PINK_KERNEL_DATA_DIR": str(run_dir / "kernel"),
            "PINK_KERNEL_VENUE_ADDRESS": f"127.0.0.1:{venue_port}",
        }
        kernel = await _start(stack, "kernel", "services.kernel", kernel_env, settings=settings, out=out)
        kernel_port = await kernel.wait_serving(settings.start_seconds)
        out.write(f"kernel service SERVING on 127.0.0.1:{kernel_port}\n\n")

        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{kernel_port}") as channel:
                await run_session(kernel_service_pb2_grpc.KernelServiceStub(channel), settings, out)
        except asyncio.CancelledError:
            # Ctrl-C (asyncio.run cancels this task): stop the services as on a normal end.
            out.write("\ninterrupted: stopping the services\n")
            await _stop_all((kernel, venue, sim), settings, out)
            raise
        out.write("\n")
        await _stop_all((kernel, venue, sim), settings, out)


async def _stop_all(children: tuple[Child, ...], settings: LaunchSettings, out: TextIO) -> None:
    """SIGTERM each child in turn (kernel first, so it never loses its venue while draining)."""
    for child in children:
        status = await child.stop(settings.stop_seconds)
        if status != 0:
            raise ChildExitedError(f"{child.name} exited with {status} on SIGTERM:\n{child.output_tail()}")
        out.write(f"stopped {child.name} (exit status 0)\n")


async def _run(settings: LaunchSettings, run_dir: Path, out: TextIO) -> bool:
    """Runs the platform; True if SIGTERM stopped it (the services stopped as on Ctrl-C)."""
    task = asyncio.current_task()
    if task is None:  # unreachable under asyncio.run; narrows the type
        raise RuntimeError("no running task")
    terminated = False

    def terminate() -> None:
        nonlocal terminated
        terminated = True
        task.cancel()

    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, terminate)
    try:
        await _platform(settings, run_dir, out)
    except asyncio.CancelledError:
        if not terminated:
            raise
        task.uncancel()  # the cancellation was ours: SIGTERM, handled
    return terminated


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
        terminated = asyncio.run(_run(settings, run_dir, out))
    except (ChildExitedError, SessionError, grpc.aio.AioRpcError, TimeoutError) as error:
        sys.stderr.write(f"run failed: {type(error).__name__}: {error}\n")
        return 1
    except KeyboardInterrupt:
        out.write("interrupted\n")
        return INTERRUPTED
    if terminated:
        out.write("terminated\n")
        return TERMINATED
    return 0


if __name__ == "__main__":
    sys.exit(main())
