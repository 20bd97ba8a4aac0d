"""BingX's request budgets (API.md §3.4): per UID and endpoint, per IP and group."""

from __future__ import annotations

import pytest

from services.venue.sim.ratelimit import RateLimiter, budgets_for
from tests.venue_sim.helpers import running, settings_for_tests

BALANCE = "/openApi/swap/v2/user/balance"


@pytest.mark.anyio
async def test_five_per_second_per_uid_then_restored() -> None:
    async with running(settings_for_tests(rate_limits=True)) as client:
        replies = [await client.call("GET", BALANCE) for _ in range(6)]
        assert [r.body["code"] for r in replies] == [0, 0, 0, 0, 0, 100410]
        assert replies[5].status == 200
        assert [r.headers["X-RateLimit-Requests-Remain"] for r in replies[:5]] == ["4", "3", "2", "1", "0"]
        assert "X-RateLimit-Requests-Expire" in replies[0].headers
        # Another endpoint has its own UID budget.
        assert (await client.call("GET", "/openApi/swap/v2/user/positions")).body["code"] == 0
        client.clock.advance(1000)
        assert (await client.call("GET", BALANCE)).body["code"] == 0


@pytest.mark.anyio
async def test_two_per_second_for_position_mode_and_http_429_form() -> None:
    async with running(settings_for_tests(rate_limits=True, rate_limit_response="http429")) as client:
        replies = [await client.call("GET", "/openApi/swap/v1/positionSide/dual") for _ in range(3)]
        assert [r.status for r in replies] == [200, 200, 429]
        assert replies[2].body["code"] == 100410


@pytest.mark.anyio
async def test_market_data_group_budget() -> None:
    async with running(settings_for_tests(rate_limits=True)) as client:
        codes = [(await client.public("/openApi/swap/v2/quote/premiumIndex")).body["code"] for _ in range(501)]
        assert codes[:500] == [0] * 500
        assert codes[500] == 100410
        # The whole group shares the budget; server time is in no group.
        assert (await client.public("/openApi/swap/v2/quote/contracts")).body["code"] == 100410
        assert (await client.public("/openApi/swap/v2/server/time")).body["code"] == 0
        client.clock.advance(10_000)
        assert (await client.public("/openApi/swap/v2/quote/contracts")).body["code"] == 0


def test_trade_group_budgets() -> None:
    limiter = RateLimiter()

    def allowed(path: str, ip: str, now: int) -> bool:
        budgets = budgets_for(path=path, method="GET", ip=ip, uid_per_second=None, group=2)
        return limiter.check(budgets, now).allowed

    # 300 per 10 s per IP and endpoint...
    assert all(allowed("/a", "1.1.1.1", 0) for _ in range(300))
    assert not allowed("/a", "1.1.1.1", 0)
    assert allowed("/a", "2.2.2.2", 0)
    assert allowed("/a", "1.1.1.1", 10_000)
    # ...and 2000 per 10 s per IP across the group.
    limiter = RateLimiter()
    assert all(allowed(f"/e{i % 10}", "3.3.3.3", 0) for i in range(2000))
    assert not allowed("/e99", "3.3.3.3", 0)
