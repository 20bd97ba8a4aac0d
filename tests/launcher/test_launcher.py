"""``python -m services.launcher`` (``make run``) end to end: the BingX simulator, the venue
service and the kernel service as real processes, a paper-trading session through the
kernel's gRPC API, and a clean shutdown of every child."""

from __future__ import annotations

import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from services.launcher.children import inherited_env

REPO_ROOT = Path(__file__).resolve().parents[2]
#: Generous: three processes start (each imports grpc and protobuf), then two round trips.
RUN_SECONDS = 180


def run_launcher(env: dict[str, str]) -> tuple[int, str, str]:
    done = subprocess.run(
        [sys.executable, "-m", "services.launcher"],
        env=env,
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=RUN_SECONDS,
        check=False,
    )
    return done.returncode, done.stdout, done.stderr


def launcher_env(tmp_path: Path, **settings: str) -> dict[str, str]:
    env = inherited_env()
    env["PINK_RUN_DATA_DIR"] = str(tmp_path)
    env.update({f"PINK_RUN_{name.upper()}": value for name, value in settings.items()})
    return env


def test_make_run_trades_on_the_simulator_and_stops_every_service_cleanly(tmp_path: Path) -> None:
    status, out, err = run_launcher(launcher_env(tmp_path, rounds="1", hold_seconds="0.5"))
    assert status == 0, f"launcher failed ({status}):\n{out}\n{err}"
    for name in ("simulator", "venue service", "kernel service"):
        assert re.search(rf"{name} (listening|SERVING) on 127\.0\.0\.1:\d+", out), out
    closed = re.findall(r"slot (\d)  (\S+) +closed at (\S+): realized (\S+), fees (\S+), net (\S+)", out)
    assert sorted((slot, symbol) for slot, symbol, *_ in closed) == [("0", "BTC-USDT"), ("1", "ETH-USDT")], out
    for _, _, price, realized, fees, net in closed:
        assert Decimal(price) > 0
        assert Decimal(fees) > 0, "the simulator charges taker fees on both legs"
        assert Decimal(net) == Decimal(realized) - Decimal(fees)
    assert "2 trades;" in out, out
    assert "the account agrees with its trades" in out, out
    for name in ("kernel", "venue", "simulator"):
        assert f"stopped {name} (exit status 0)" in out, out
    (run_dir,) = tmp_path.iterdir()
    assert (run_dir / "kernel" / "journal").is_dir(), "the kernel journaled the session"


def test_an_invalid_setting_stops_the_launcher_with_status_2_naming_it(tmp_path: Path) -> None:
    status, out, err = run_launcher(launcher_env(tmp_path, rounds="0"))
    assert status == 2, f"{out}\n{err}"
    assert "PINK_RUN_ROUNDS" in err
    assert list(tmp_path.iterdir()) == [], "nothing was started"
