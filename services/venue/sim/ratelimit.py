"""BingX's published request budgets (API.md §3.4), as sliding windows on the simulator's clock.

Per UID and endpoint: N requests per second (5 for most trade/account endpoints, 2 for margin
type and position mode). Per IP: market data (group 1) 500 per 10 s and 1000 per minute across
the group; account/trade (groups 2 and 3) 2000 per 10 s across the group and 300 per 10 s per
endpoint.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

__all__ = ["Budget", "Decision", "RateLimiter", "budgets_for"]


@dataclass(frozen=True, slots=True)
class Budget:
    key: str
    limit: int
    window_ms: int


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    remaining: int
    # Milliseconds until the tightest window frees a request.
    expire_ms: int


def budgets_for(*, path: str, method: str, ip: str, uid_per_second: int | None, group: int) -> list[Budget]:
    endpoint = f"{method} {path}"
    budgets: list[Budget] = []
    if uid_per_second is not None:
        budgets.append(Budget(f"uid|{endpoint}", uid_per_second, 1000))
    if group == 1:
        budgets.extend((Budget(f"ip1|{ip}", 500, 10_000), Budget(f"ip1m|{ip}", 1000, 60_000)))
    elif group in {2, 3}:
        budgets.extend((Budget(f"ip{group}|{ip}", 2000, 10_000), Budget(f"ipe|{ip}|{endpoint}", 300, 10_000)))
    return budgets


class RateLimiter:
    def __init__(self) -> None:
        self._hits: dict[str, deque[int]] = {}

    def check(self, budgets: list[Budget], now_ms: int) -> Decision:
        """Count one request against every budget, unless one of them is exhausted."""
        remaining = 1 << 31
        expire = 0
        for budget in budgets:
            hits = self._hits.setdefault(budget.key, deque())
            while hits and hits[0] <= now_ms - budget.window_ms:
                hits.popleft()
            left = budget.limit - len(hits)
            if left <= 0:
                return Decision(False, 0, hits[0] + budget.window_ms - now_ms)
            if left - 1 < remaining:
                remaining = left - 1
                expire = (hits[0] + budget.window_ms - now_ms) if hits else budget.window_ms
        for budget in budgets:
            self._hits[budget.key].append(now_ms)
        return Decision(True, remaining if budgets else -1, expire)
