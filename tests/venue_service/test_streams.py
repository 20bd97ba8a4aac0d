"""User-stream upkeep, the shared gap-fill, supervision, instruments and account parsing.

Legacy flaws covered: [H5, L4, L5, L6, L14, L15, N5, N8, N10, O7].
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
from structlog.testing import capture_logs

from services.venue.account import Account
from services.venue.bingx.client import BingXClient, OutcomeUnknownError, Reply
from services.venue.bingx.wire import WireError
from services.venue.sim.views import balance_view
from tests.venue_service.harness import Harness, Sim, simulator, venue_service
from tests.venue_service.test_contract import market, place

pytestmark = pytest.mark.anyio


async def test_the_listen_key_is_kept_alive_and_rotated_when_gone(sim: Sim) -> None:
    async with venue_service(sim, keepalive_seconds=0.2) as venue:
        stream = venue.adapter.user_stream
        await asyncio.wait_for(stream.wait_keepalives(2), 5)
        runs = venue.adapter.gap_fill.runs
        with capture_logs() as captured:
            # Deleted at BingX without a word: the next keepalive finds it gone and rotates.
            (key,) = sim.sim.hub.listen_keys
            sim.sim.hub.delete_key(key)
            await asyncio.wait_for(venue.adapter.gap_fill.wait_runs(runs + 1), 5)
        events = [entry["event"] for entry in captured]
        assert "listen_key_gone" in events
        assert "listen_key_delete_refused" in events  # the old key's deletion: logged, not swallowed
        assert stream.rotations == 1
        assert stream.connected.is_set()


async def test_concurrent_gap_fills_share_one_run(venue: Harness) -> None:
    before = venue.calls
    added = await asyncio.gather(*(venue.adapter.gap_fill.run("test") for _ in range(5)))
    assert added == [0] * 5
    assert venue.calls - before == 2  # open orders + fills, once


async def test_a_failing_task_is_logged_and_restarted(venue: Harness) -> None:
    attempts: list[int] = []
    blocked = asyncio.Event()

    async def body() -> None:
        attempts.append(len(attempts))
        if len(attempts) == 1:
            raise RuntimeError("boom")
        blocked.set()
        await asyncio.Event().wait()

    with capture_logs() as captured:
        task = asyncio.create_task(venue.adapter._supervise("test", body))
        await asyncio.wait_for(blocked.wait(), 5)
        task.cancel()
    assert attempts == [0, 1]
    (failure,) = [entry for entry in captured if entry["event"] == "venue_task_failed"]
    assert failure["task"] == "test"
    assert failure["log_level"] == "error"


async def test_a_failed_instrument_refresh_keeps_the_table_and_says_so(venue: Harness, sim: Sim) -> None:
    loaded = venue.adapter.instruments.loaded_ms
    await sim.faults(http_error_count=3, http_error_status=503)
    with pytest.raises(OutcomeUnknownError):
        await venue.adapter.refresh_instruments()
    assert venue.adapter.instruments.loaded_ms == loaded
    assert venue.adapter.instruments.get("BTC-USDT") is not None
    await venue.adapter.refresh_instruments()
    assert venue.adapter.instruments.loaded_ms is not None
    assert loaded is not None
    assert venue.adapter.instruments.loaded_ms >= loaded


async def test_balance_is_bingx_available_margin_and_fresh_on_every_read(venue: Harness, sim: Sim) -> None:
    await place(venue, market("pk-bal", "0.01"))
    from services.common.proto import venue_service_pb2  # noqa: PLC0415

    balance = await venue.stub.GetBalance(venue_service_pb2.GetBalanceRequest(), timeout=5)
    truth = balance_view(sim.sim.engine.state)
    assert balance.wallet_balance.value == str(truth["balance"]).rstrip("0").rstrip(".")
    assert balance.available_margin.value == str(truth["availableMargin"]).rstrip("0").rstrip(".")


class _Answers:
    def __init__(self, data: Any) -> None:
        self._data = data

    async def get(self, path: str, params: object = None, *, signed: bool = True) -> Reply:
        return Reply(self._data, None, 0)


async def test_a_missing_wallet_balance_is_an_error_never_zero() -> None:
    account = Account(cast(BingXClient, _Answers([{"asset": "USDT", "availableMargin": "5"}])))
    with pytest.raises(WireError, match="balance is missing"):
        await account.balance()
    zero = Account(cast(BingXClient, _Answers([{"asset": "USDT", "balance": "0", "availableMargin": "0"}])))
    answer = await zero.balance()
    assert (answer.wallet_balance.value, answer.available_margin.value) == ("0", "0")


async def test_pings_are_answered_so_the_venue_keeps_the_connection() -> None:
    async with simulator(ping_seconds=0.05, pong_timeout_seconds=0.3) as sim, venue_service(sim) as venue:
        # An observation window of several pong timeouts: an unanswered Ping would drop the stream.
        await asyncio.sleep(1.0)
        assert venue.adapter.user_stream.connections == 1
        assert venue.adapter.metrics.reconnects.labels("user")._value.get() == 0
        assert await place(venue, market("pk-ping", "0.01"))
