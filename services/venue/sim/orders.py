"""Orders, fills and income records of the simulated account (pure data, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

__all__ = [
    "ZERO",
    "Fill",
    "Income",
    "Order",
    "OrderStatus",
    "Position",
    "PositionSide",
    "Side",
    "TimeInForce",
]

ZERO = Decimal(0)

Side = Literal["BUY", "SELL"]
PositionSide = Literal["BOTH", "LONG", "SHORT"]
OrderType = Literal["MARKET", "LIMIT"]
TimeInForce = Literal["GTC", "IOC", "FOK", "PostOnly"]
# Internal statuses; the views spell them the REST way or the WebSocket way.
OrderStatus = Literal["NEW", "PARTIALLY_FILLED", "FILLED", "CANCELED", "EXPIRED"]

OPEN_STATUSES: frozenset[str] = frozenset({"NEW", "PARTIALLY_FILLED"})


@dataclass(slots=True)
class Order:
    order_id: int
    symbol: str
    side: Side
    position_side: PositionSide
    type: OrderType
    time_in_force: TimeInForce
    quantity: Decimal
    price: Decimal | None
    client_id: str
    reduce_only: bool
    leverage: int
    time: int
    update_time: int
    one_way: bool
    status: OrderStatus = "NEW"
    executed: Decimal = ZERO
    cum_quote: Decimal = ZERO
    # Negative when paid, as BingX reports it.
    commission: Decimal = ZERO
    profit: Decimal = ZERO
    # Matching passes left before a delayed order may fill (fault "delayed fills").
    delay_ticks: int = 0
    maker: bool = False

    @property
    def remaining(self) -> Decimal:
        return self.quantity - self.executed

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def avg_price(self) -> Decimal:
        return self.cum_quote / self.executed if self.executed else ZERO

    @property
    def direction(self) -> int:
        return 1 if self.side == "BUY" else -1


@dataclass(frozen=True, slots=True)
class Fill:
    trade_id: int
    order_id: int
    client_id: str
    symbol: str
    side: Side
    position_side: PositionSide
    order_type: OrderType
    quantity: Decimal
    price: Decimal
    # Negative when paid.
    commission: Decimal
    realized_pnl: Decimal
    maker: bool
    time: int
    one_way: bool

    @property
    def quote(self) -> Decimal:
        return self.quantity * self.price


@dataclass(frozen=True, slots=True)
class Income:
    tran_id: int
    symbol: str
    income_type: Literal["REALIZED_PNL", "TRADING_FEE", "TRANSFER"]
    amount: Decimal
    info: str
    time: int
    trade_id: int | None = None


@dataclass(slots=True)
class Position:
    """One position: signed amount (short < 0) and signed cost basis (sum of signed qty x price).

    Keeping the cost basis rather than an entry price makes wallet + unrealized PnL exactly the
    initial balance plus the cash flow of every fill minus fees: only the share of the cost
    removed by a partial close is rounded, and what is removed is exactly what is kept out.
    """

    symbol: str
    side: PositionSide
    amount: Decimal = ZERO
    cost: Decimal = ZERO
    realised: Decimal = ZERO
    update_time: int = 0

    def entry_price(self) -> Decimal:
        return self.cost / self.amount if self.amount else ZERO

    def unrealized(self, mark: Decimal) -> Decimal:
        return self.amount * mark - self.cost
