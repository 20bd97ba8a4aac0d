"""``python -m services.venue.sim`` runs as its own process and stops cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import signal
import sys

import aiohttp
import pytest

from services.venue.sim.signing import sign

TIMEOUT = 20
SECRET = "sim-secret-that-must-never-be-logged-0123456789"  # noqa: S105  # a test key pair
API_KEY = "sim-key-for-the-secret-test-0123456789"


async def _listening(stream: asyncio.StreamReader) -> dict[str, object]:
    while line := await stream.readline():
        record = json.loads(line)
        if record.get("event") == "simulator_listening":
            assert isinstance(record, dict)
            return record
    raise AssertionError("the simulator exited before listening")


@pytest.mark.anyio
async def test_runs_serves_and_stops_on_sigterm() -> None:
    """[O6] the venue double is a real server in its own process, reached over HTTP and WebSocket."""
    env = {**os.environ, "PINK_SIM_PORT": "0", "PINK_SIM_TICK_SECONDS": "0.05", "PINK_SIM_SEED": "3"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.venue.sim", env=env, stderr=asyncio.subprocess.PIPE
    )
    assert proc.stderr is not None
    try:
        record = await asyncio.wait_for(_listening(proc.stderr), TIMEOUT)
        # Keep reading the logs so the process never blocks on a full pipe.
        rest_of_log = asyncio.create_task(proc.stderr.read())
        base = f"http://{record['host']}:{record['port']}"
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{base}/openApi/swap/v2/server/time") as response:
                body = await response.json()
                assert body["code"] == 0
            # The timer moves prices on its own: its ticks arrive as mark-price pushes.
            async with session.ws_connect(f"{base}/swap-market") as ws:
                await ws.send_json({"id": "1", "reqType": "sub", "dataType": "BTC-USDT@markPrice"})
                ack = json.loads(gzip.decompress((await ws.receive(timeout=TIMEOUT)).data))
                assert ack["code"] == 0
                push = json.loads(gzip.decompress((await ws.receive(timeout=TIMEOUT)).data))
                assert push["dataType"] == "BTC-USDT@markPrice"
                # SIGTERM with a client connected: the server closes the WebSocket, then exits 0.
                proc.send_signal(signal.SIGTERM)
                while (msg := await ws.receive(timeout=TIMEOUT)).type == aiohttp.WSMsgType.BINARY:
                    pass
                assert msg.type == aiohttp.WSMsgType.CLOSE
        assert await asyncio.wait_for(proc.wait(), TIMEOUT) == 0
        log = await rest_of_log
        assert b"simulator_stopped" in log
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


@pytest.mark.anyio
async def test_invalid_configuration_exits_2() -> None:
    env = {**os.environ, "PINK_SIM_PORT": "-1"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.venue.sim", env=env, stderr=asyncio.subprocess.PIPE
    )
    _, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    assert proc.returncode == 2
    assert b"PINK_SIM_PORT" in err


@pytest.mark.anyio
async def test_the_secret_never_reaches_the_log() -> None:
    env = {
        **os.environ,
        "PINK_SIM_PORT": "0",
        "PINK_SIM_TICK_SECONDS": "0",
        "PINK_SIM_LOG_LEVEL": "DEBUG",
        "PINK_SIM_API_KEY": API_KEY,
        "PINK_SIM_SECRET_KEY": SECRET,
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.venue.sim", env=env, stderr=asyncio.subprocess.PIPE
    )
    assert proc.stderr is not None
    answers: list[str] = []
    try:
        record = await asyncio.wait_for(_listening(proc.stderr), TIMEOUT)
        rest_of_log = asyncio.create_task(proc.stderr.read())
        base = f"http://{record['host']}:{record['port']}/openApi/swap/v2/user/balance"
        async with aiohttp.ClientSession() as session:
            # Accepted, badly signed, wrong key, no key: every path that checks the secret.
            server_time = f"http://{record['host']}:{record['port']}/openApi/swap/v2/server/time"
            async with session.get(server_time) as response:
                now = (await response.json())["data"]["serverTime"]
            # A wide window: a busy machine must not turn this into a timestamp test.
            good = f"recvWindow=60000&timestamp={now}"
            for query, key in (
                (f"{good}&signature={sign(SECRET, good)}", API_KEY),
                (f"{good}&signature={sign('not-the-secret', good)}", API_KEY),
                (f"{good}&signature={sign(SECRET, good)}", "wrong-key"),
                (good, ""),
            ):
                async with session.get(f"{base}?{query}", headers={"X-BX-APIKEY": key}) as response:
                    answers.append(await response.text())
        assert [json.loads(answer)["code"] for answer in answers] == [0, 100001, 100413, 100413]
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), TIMEOUT) == 0
        log = (await rest_of_log).decode()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert "api_error" in log
    assert SECRET not in log
    assert all(SECRET not in answer for answer in answers)


@pytest.mark.anyio
async def test_a_bad_secret_is_refused_without_echoing_it() -> None:
    short = "short-secret-15"  # one character below the minimum
    env = {**os.environ, "PINK_SIM_SECRET_KEY": short}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.venue.sim", env=env, stderr=asyncio.subprocess.PIPE
    )
    _, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    assert proc.returncode == 2
    assert b"PINK_SIM_SECRET_KEY" in err
    assert short.encode() not in err
