"""``services.launcher.children``: a child still running when its context exits is stopped with
SIGTERM first (it shuts down gracefully), and with SIGKILL only if it ignores SIGTERM; an
interrupted ``make run`` (Ctrl-C, or SIGTERM to the launcher) stops every service cleanly."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import pytest

from services.launcher.children import Child, child_process, inherited_env

pytestmark = pytest.mark.anyio

REPO_ROOT = Path(__file__).resolve().parents[2]
START_SECONDS = 60.0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_a_running_service_is_stopped_with_sigterm_and_exits_cleanly() -> None:
    env = inherited_env() | {"PINK_SIM_PORT": "0"}
    async with child_process("simulator", "services.venue.sim", env, cwd=REPO_ROOT) as child:
        await child.log_event("simulator_listening", START_SECONDS)
    assert child.returncode == 0, child.output_tail()
    assert child.events("simulator_stopping") or child.events("simulator_stopped"), child.output_tail()


async def test_a_child_that_ignores_sigterm_is_killed_after_the_grace_period() -> None:
    kept: list[Child] = []
    async with child_process(
        "stubborn", "tests.launcher.stubborn_child", inherited_env(), cwd=REPO_ROOT, close_grace=0.5
    ) as child:
        kept.append(child)
        await child.log_event("ignoring_sigterm", START_SECONDS)
    assert kept[0].returncode == -signal.SIGKILL


#: Starts the launcher with SIGINT ignored, as a background job of a script inherits it: Python
#: then installs no KeyboardInterrupt handler, so only the launcher's own handler can act.
IGNORING_SIGINT = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
    "os.execv(sys.executable, [sys.executable, '-m', 'services.launcher'])"
)


@pytest.mark.parametrize(
    ("sig", "status", "command"),
    [
        (signal.SIGINT, 130, ["-m", "services.launcher"]),
        (signal.SIGINT, 130, ["-c", IGNORING_SIGINT]),
        (signal.SIGTERM, 143, ["-m", "services.launcher"]),
    ],
    ids=["ctrl-c", "ctrl-c-with-sigint-ignored-at-start", "sigterm"],
)
async def test_interrupting_make_run_stops_every_service_gracefully(
    tmp_path: Path, sig: signal.Signals, status: int, command: list[str]
) -> None:
    env = inherited_env() | {
        "PINK_RUN_DATA_DIR": str(tmp_path),
        "PINK_RUN_ROUNDS": "5",
        "PINK_RUN_HOLD_SECONDS": "30",
        "PINK_RUN_VERBOSE": "true",
    }
    launcher = await asyncio.create_subprocess_exec(
        sys.executable,
        *command,
        env=env,
        cwd=REPO_ROOT,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert launcher.stdout is not None
    lines: list[str] = []
    try:
        async with asyncio.timeout(180):
            async for raw in launcher.stdout:
                lines.append(raw.decode().rstrip("\n"))
                if "filled at" in lines[-1]:  # trading: the kernel has journaled records
                    break
            launcher.send_signal(sig)
            lines += [raw.decode().rstrip("\n") async for raw in launcher.stdout]
            returncode = await launcher.wait()
    finally:
        if launcher.returncode is None:
            launcher.kill()
            await launcher.wait()
    out = "\n".join(lines)
    assert returncode == status, out
    assert "interrupted: stopping the services" in out, out
    for name in ("kernel", "venue", "simulator"):
        assert f"stopped {name} (exit status 0)" in out, out
    assert _snapshots(tmp_path), "the kernel stopped gracefully: it wrote its final snapshot"


def _snapshots(data_dir: Path) -> list[Path]:
    (run_dir,) = data_dir.iterdir()
    return list((run_dir / "kernel" / "journal" / "snapshots").iterdir())
