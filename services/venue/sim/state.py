"""The simulator's state and the events announcing its changes (pure data, no I/O).

All state lives in :class:`State` so a copy of it can serve stale reads (fault
"stale REST snapshots").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from services.venue.sim.account import Account, MarginType
from services.venue.sim.config import SymbolSpec
from services.venue.sim.orders import ZERO, Fill, Income, Order, Position
from services.venue.sim.prices import PriceBook
from services.venue.sim.wire import ApiError, Code

__all__ = ["AccountEvent", "ConfigEvent", "Event", "ExecType", "OrderEvent", "PublicTrade", "State"]

ExecType = Literal["NEW", "TRADE", "CANCELED", "EXPIRED"]


@dataclass(frozen=True, slots=True)
class OrderEvent:
    order: Order
    execution: ExecType
    time: int
    last_qty: Decimal = ZERO
    last_price: Decimal = ZERO
    commission: Decimal = ZERO
    realized_pnl: Decimal = ZERO


@dataclass(frozen=True, slots=True)
class AccountEvent:
    reason: str
    time: int
    wallet: Decimal
    change: Decimal
    positions: tuple[Position, ...]


@dataclass(frozen=True, slots=True)
class ConfigEvent:
    symbol: str
    time: int
    long_leverage: int
    short_leverage: int
    margin_type: MarginType


@dataclass(frozen=True, slots=True)
class PublicTrade:
    symbol: str
    price: Decimal
    quantity: Decimal
    buyer_maker: bool
    time: int


Event = OrderEvent | AccountEvent | ConfigEvent | PublicTrade


@dataclass(slots=True)
class State:
    specs: dict[str, SymbolSpec]
    account: Account
    book: PriceBook
    orders: dict[int, Order] = field(default_factory=dict)
    client_ids: dict[str, int] = field(default_factory=dict)
    fills: list[Fill] = field(default_factory=list)
    incomes: list[Income] = field(default_factory=list)
    trades: dict[str, list[PublicTrade]] = field(default_factory=dict)

    def spec(self, symbol: str) -> SymbolSpec:
        found = self.specs.get(symbol)
        if found is None:
            raise ApiError(Code.SYMBOL_NOT_EXIST, f"{symbol} not exist")
        return found

    def marks(self) -> dict[str, Decimal]:
        return dict(self.book.prices)

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        return [o for o in self.orders.values() if o.is_open and (symbol is None or o.symbol == symbol)]

    def find(self, symbol: str, order_id: int | None, client_id: str | None) -> Order:
        if order_id is None and client_id is None:
            raise ApiError(Code.REQUEST_FAILED, "orderId and clientOrderID are both empty")
        if order_id is None and client_id is not None:
            order_id = self.client_ids.get(client_id.lower())
        order = self.orders.get(order_id) if order_id is not None else None
        if order is None or order.symbol != symbol:
            raise ApiError(Code.ORDER_NOT_FOUND, "order not exist")
        return order

    def opening_qty(self, order: Order) -> Decimal:
        """The part of an open order's remainder that would open (not reduce) a position."""
        if order.reduce_only:
            return ZERO
        if not order.one_way:
            opens = (order.side == "BUY") == (order.position_side == "LONG")
            return order.remaining if opens else ZERO
        amount = self.account.amount(order.symbol, "BOTH")
        reducible = abs(amount) if amount and (amount > 0) != (order.side == "BUY") else ZERO
        return max(order.remaining - reducible, ZERO)

    def frozen_margin(self) -> Decimal:
        """Margin held by open orders (the opening part of each, at its limit price)."""
        orders = self.open_orders()
        return Account.order_margin(orders, {o.order_id: self.opening_qty(o) for o in orders})

    def available_margin(self) -> Decimal:
        return self.account.equity(self.marks()) - self.account.used_margin() - self.frozen_margin()
