"""Per-symbol price paths: a seeded random walk in whole ticks, or a CSV replayed tick by tick.

The path price is the last price and the mark price; the best bid and ask sit
``half_spread_ticks`` either side of it. One-minute candles are built from the ticks.
"""

from __future__ import annotations

import csv
import random
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from pathlib import Path

from services.venue.sim.config import SymbolSpec

__all__ = ["Candle", "CsvPath", "PriceBook", "Quote", "RandomWalk", "load_csv"]

MINUTE_MS = 60_000
_CANDLES_KEPT = 1440


@dataclass(frozen=True, slots=True)
class Quote:
    last: Decimal
    bid: Decimal
    ask: Decimal


@dataclass(slots=True)
class Candle:
    open_time: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal


class RandomWalk:
    """Each step moves the price by a whole number of ticks around ``step_bps`` of it."""

    def __init__(self, spec: SymbolSpec, rng: random.Random, step_bps: Decimal) -> None:
        self._spec = spec
        self._rng = rng
        self._step_bps = step_bps

    def next(self, price: Decimal) -> Decimal:
        tick = self._spec.tick
        step_ticks = max(1, int(price * self._step_bps / Decimal(10_000) / tick))
        moved = price + self._rng.randint(-step_ticks, step_ticks) * tick
        # Never at or below zero: a price path that reaches nothing stays one tick up.
        return max(moved, tick)


class CsvPath:
    """Replays a list of prices; wraps around to the first at the end."""

    def __init__(self, prices: list[Decimal]) -> None:
        if not prices:
            raise ValueError("a CSV price path needs at least one price")
        self._prices = prices
        self._index = 0

    def next(self, _price: Decimal) -> Decimal:
        self._index = (self._index + 1) % len(self._prices)
        return self._prices[self._index]

    @property
    def first(self) -> Decimal:
        return self._prices[0]


def load_csv(path: Path, symbols: Iterable[str]) -> dict[str, list[Decimal]]:
    """Prices per symbol from a ``symbol,price`` CSV (header required); every symbol must appear."""
    wanted = set(symbols)
    found: dict[str, list[Decimal]] = {symbol: [] for symbol in wanted}
    with path.open(newline="", encoding="utf-8") as handle:
        for line, row in enumerate(csv.DictReader(handle), start=2):
            symbol = row.get("symbol")
            if symbol not in wanted:
                continue
            try:
                price = Decimal(row.get("price") or "")
            except InvalidOperation as error:
                raise ValueError(f"{path}:{line}: price is not a decimal") from error
            if not price.is_finite() or price <= 0:
                raise ValueError(f"{path}:{line}: price must be positive")
            found[symbol].append(price)
    missing = sorted(symbol for symbol, prices in found.items() if not prices)
    if missing:
        raise ValueError(f"{path}: no prices for {', '.join(missing)}")
    return found


class PriceBook:
    """The current quote of every symbol plus its recent one-minute candles."""

    def __init__(self, specs: dict[str, SymbolSpec], paths: dict[str, RandomWalk | CsvPath], half_spread: int) -> None:
        self._specs = specs
        self._paths = paths
        self._half_spread = half_spread
        self.prices: dict[str, Decimal] = {}
        self.candles: dict[str, deque[Candle]] = {symbol: deque(maxlen=_CANDLES_KEPT) for symbol in specs}
        for symbol, spec in specs.items():
            path = paths[symbol]
            self.prices[symbol] = path.first if isinstance(path, CsvPath) else spec.initial_price

    def quote(self, symbol: str) -> Quote:
        price = self.prices[symbol]
        spec = self._specs[symbol]
        offset = spec.tick * self._half_spread
        return Quote(last=price, bid=max(price - offset, spec.tick), ask=price + offset)

    def step(self, symbol: str) -> Decimal:
        price = self._paths[symbol].next(self.prices[symbol])
        return self.set(symbol, price)

    def set(self, symbol: str, price: Decimal) -> Decimal:
        """Move ``symbol`` to ``price`` truncated to its tick."""
        tick = self._specs[symbol].tick
        price = max(price.quantize(tick, rounding=ROUND_DOWN), tick)
        self.prices[symbol] = price
        return price

    def record(self, symbol: str, now: int, volume: Decimal) -> None:
        """Fold the current price (and traded ``volume``) into the candle of ``now``."""
        price = self.prices[symbol]
        candles = self.candles[symbol]
        start = now - now % MINUTE_MS
        if candles and candles[-1].open_time == start:
            candle = candles[-1]
            candle.high = max(candle.high, price)
            candle.low = min(candle.low, price)
            candle.close = price
            candle.volume += volume
        else:
            candles.append(Candle(start, price, price, price, price, volume))
