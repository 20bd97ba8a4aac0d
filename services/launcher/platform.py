"""The whole platform as child processes: the BingX simulator, the venue service against it and
the kernel service against the venue, each on an ephemeral loopback port and each waited for
until it is ready (the simulator's listening line; gRPC health SERVING for the services).

Used by ``make run`` (:mod:`services.launcher`) and the end-to-end benchmark (``bench.e2e``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from services.launcher.children import Child, ChildExitedError, child_process, inherited_env

__all__ = ["Platform", "PlatformOptions", "log_printer", "start_platform", "stop_platform"]

REPO_ROOT = Path(__file__).resolve().parents[2]
#: The simulator's start-up log event (it serves HTTP, not gRPC).
SIM_LISTENING = "simulator_listening"


@dataclass(frozen=True)
class PlatformOptions:
    run_dir: Path
    seed: int
    price_tick_seconds: float
    start_seconds: float
    #: Print every child log line, not only warnings and errors.
    verbose: bool = False


@dataclass(frozen=True)
class Platform:
    sim: Child
    venue: Child
    kernel: Child
    sim_port: int
    venue_port: int
    kernel_port: int

    @property
    def stop_order(self) -> tuple[Child, ...]:
        """Kernel first, so it never loses its venue while draining; the simulator last."""
        return (self.kernel, self.venue, self.sim)


def log_printer(name: str, verbose: bool, out: TextIO) -> Callable[[str], None]:
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


async def start_platform(stack: AsyncExitStack, options: PlatformOptions, out: TextIO) -> Platform:
    """Starts the three children in ``stack`` (which stops and reaps them on exit); returns once
    the kernel is SERVING. Raises :class:`ChildExitedError` if one exits or is not ready in time."""
    base = inherited_env()

    async def start(name: str, module: str, env: Mapping[str, str]) -> Child:
        on_line = log_printer(name, options.verbose, out)
        child = await stack.enter_async_context(child_process(name, module, env, cwd=REPO_ROOT, on_line=on_line))
        out.write(f"started {name} (pid {child.pid})\n")
        return child

    sim_env = base | {
        "PINK_SIM_PORT": "0",
        "PINK_SIM_SEED": str(options.seed),
        "PINK_SIM_TICK_SECONDS": str(options.price_tick_seconds),
    }
    sim = await start("simulator", "services.venue.sim", sim_env)
    listening = await sim.log_event(SIM_LISTENING, options.start_seconds)
    try:
        sim_port = int(listening["port"])
    except (KeyError, TypeError, ValueError) as error:
        raise ChildExitedError(f"the simulator's {SIM_LISTENING} line has no port: {listening}") from error
    out.write(f"simulator listening on 127.0.0.1:{sim_port}\n")

    venue_env = base | {"PINK_VENUE_ENVIRONMENT": "simulator", "PINK_VENUE_REST_URL": f"http://127.0.0.1:{sim_port}"}
    venue = await start("venue", "services.venue", venue_env)
    venue_port = await venue.wait_serving(options.start_seconds)
    out.write(f"venue service SERVING on 127.0.0.1:{venue_port}\n")

    kernel_env = base | {
        "PINK_KERNEL_DATA_DIR": str(options.run_dir / "kernel"),
        "PINK_KERNEL_VENUE_ADDRESS": f"127.0.0.1:{venue_port}",
    }
    kernel = await start("kernel", "services.kernel", kernel_env)
    kernel_port = await kernel.wait_serving(options.start_seconds)
    out.write(f"kernel service SERVING on 127.0.0.1:{kernel_port}\n")
    return Platform(sim, venue, kernel, sim_port, venue_port, kernel_port)


async def stop_platform(platform: Platform, seconds: float, out: TextIO) -> None:
    """SIGTERM each child in :attr:`Platform.stop_order`; each must exit 0 within ``seconds``."""
    for child in platform.stop_order:
        status = await child.stop(seconds)
        if status != 0:
            raise ChildExitedError(f"{child.name} exited with {status} on SIGTERM:\n{child.output_tail()}")
        out.write(f"stopped {child.name} (exit status 0)\n")
