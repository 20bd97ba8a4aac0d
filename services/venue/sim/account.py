"""The simulated account: wallet, positions, leverage, margin mode (pure, exact Decimal)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from services.venue.sim.orders import ZERO, Order, Position, PositionSide

__all__ = ["Account", "FillEffect", "MarginType"]

MarginType = Literal["CROSSED", "ISOLATED"]
# The share of a cost basis removed by a partial close is kept to this many places.
COST_QUANTUM = Decimal("1e-12")


@dataclass(frozen=True, slots=True)
class FillEffect:
    realized_pnl: Decimal
    position: Position


@dataclass(slots=True)
class Account:
    wallet: Decimal
    default_leverage: int
    dual_side: bool = False
    positions: dict[tuple[str, PositionSide], Position] = field(default_factory=dict)
    # (symbol, "LONG" | "SHORT") -> leverage; one-way mode sets both sides.
    leverage: dict[tuple[str, str], int] = field(default_factory=dict)
    margin_type: dict[str, MarginType] = field(default_factory=dict)

    def leverage_of(self, symbol: str, side: str) -> int:
        return self.leverage.get((symbol, side), self.default_leverage)

    def position(self, symbol: str, side: PositionSide) -> Position:
        key = (symbol, side)
        found = self.positions.get(key)
        if found is None:
            found = Position(symbol=symbol, side=side)
            self.positions[key] = found
        return found

    def amount(self, symbol: str, side: PositionSide) -> Decimal:
        """The signed size of a position (zero when there is none); creates nothing."""
        found = self.positions.get((symbol, side))
        return found.amount if found is not None else ZERO

    def open_positions(self) -> list[Position]:
        return [pos for pos in self.positions.values() if pos.amount]

    def apply_fill(
        self, symbol: str, side: PositionSide, *, delta: Decimal, price: Decimal, fee: Decimal, now: int
    ) -> FillEffect:
        """Book a fill of signed quantity ``delta`` at ``price`` paying ``fee`` (>= 0)."""
        pos = self.position(symbol, side)
        realized = ZERO
        direction = 1 if delta > 0 else -1
        remaining = abs(delta)
        if pos.amount and (pos.amount > 0) != (delta > 0):
            closing = min(remaining, abs(pos.amount))
            if closing == abs(pos.amount):
                removed = pos.cost
            else:
                removed = (pos.cost * closing / abs(pos.amount)).quantize(COST_QUANTUM)
            realized = -(direction * closing) * price - removed
            pos.amount += direction * closing
            pos.cost -= removed
            remaining -= closing
        if remaining:
            pos.amount += direction * remaining
            pos.cost += direction * remaining * price
        pos.realised += realized
        pos.update_time = now
        self.wallet += realized - fee
        return FillEffect(realized_pnl=realized, position=pos)

    def position_leverage(self, pos: Position) -> int:
        side = pos.side if pos.side != "BOTH" else ("LONG" if pos.amount > 0 else "SHORT")
        return self.leverage_of(pos.symbol, side)

    def position_margin(self, pos: Position) -> Decimal:
        return abs(pos.cost) / self.position_leverage(pos)

    def unrealized(self, marks: dict[str, Decimal]) -> Decimal:
        return sum((pos.unrealized(marks[pos.symbol]) for pos in self.open_positions()), ZERO)

    def used_margin(self) -> Decimal:
        return sum((self.position_margin(pos) for pos in self.open_positions()), ZERO)

    @staticmethod
    def order_margin(orders: Iterable[Order], opening_qty: dict[int, Decimal]) -> Decimal:
        """Margin held by open orders: the opening part of each at its limit price."""
        total = ZERO
        for order in orders:
            qty = opening_qty.get(order.order_id, ZERO)
            if qty and order.price is not None:
                total += qty * order.price / order.leverage
        return total

    def equity(self, marks: dict[str, Decimal]) -> Decimal:
        return self.wallet + self.unrealized(marks)
