"""Instruments from ``GET /openApi/swap/v2/quote/contracts``: steps, ticks, minimums, formatting.

Quantities and prices go to BingX as exact decimal text at the contract's precision (Decimal
quantize, never float formatting). A value off the grid is refused locally rather than
truncated (BingX would silently truncate it, API.md §3.3), and so is an order below the
minimum quantity or notional, each with a reason that says which limit and by how much.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from typing import Any

from services.common.proto import kernel_input_pb2, types_pb2
from services.venue.bingx.wire import WireError, decimal_or_none

__all__ = ["Instrument", "InstrumentCache", "OrderCheckError", "parse_contracts"]


class OrderCheckError(ValueError):
    """An order the adapter refuses before sending it (the reason is the message)."""


def _text(value: Decimal) -> str:
    return f"{value:f}"


@dataclass(frozen=True)
class Instrument:
    symbol: str
    quantity_step: Decimal
    price_tick: Decimal
    min_quantity: Decimal
    min_notional: Decimal
    tradable: bool

    def _check_grid(self, what: str, value: Decimal, grid_name: str, grid: Decimal) -> None:
        """Refuse a ``value`` that is not positive or not a multiple of ``grid`` (the step or the tick)."""
        if value <= 0:
            raise OrderCheckError(f"{what} {_text(value)} must be > 0")
        if value % grid != 0:
            raise OrderCheckError(
                f"{what} {_text(value)} is not a multiple of the {grid_name} {_text(grid)} of {self.symbol}"
            )

    def quantity_text(self, quantity: Decimal) -> str:
        """``quantity`` at the contract's precision; refused when off the step or below the minimum."""
        self._check_grid("quantity", quantity, "step", self.quantity_step)
        if quantity < self.min_quantity:
            raise OrderCheckError(
                f"quantity {_text(quantity)} is below the minimum {_text(self.min_quantity)} of {self.symbol}"
            )
        return _text(quantity.quantize(self.quantity_step))

    def price_text(self, price: Decimal) -> str:
        """``price`` at the contract's precision; refused when off the tick."""
        self._check_grid("price", price, "tick", self.price_tick)
        return _text(price.quantize(self.price_tick))

    def check_notional(self, quantity: Decimal, price: Decimal) -> None:
        notional = quantity * price
        if notional < self.min_notional:
            raise OrderCheckError(
                f"notional {_text(notional)} USDT (quantity {_text(quantity)} x price {_text(price)}) is below "
                f"the minimum {_text(self.min_notional)} USDT of {self.symbol}"
            )

    def to_proto(self) -> kernel_input_pb2.Instrument:
        return kernel_input_pb2.Instrument(
            symbol=self.symbol,
            quantity_step=types_pb2.Decimal(value=_text(self.quantity_step)),
            price_tick=types_pb2.Decimal(value=_text(self.price_tick)),
            min_quantity=types_pb2.Decimal(value=_text(self.min_quantity)),
        )


def _precision(data: Mapping[str, Any], name: str) -> Decimal:
    value = data.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 18:
        raise WireError(f"{name} must be an integer 0-18, got {value!r}")
    return Decimal(1).scaleb(-value)


def parse_contracts(data: Iterable[Mapping[str, Any]]) -> dict[str, Instrument]:
    """Every well-formed contract; a malformed one raises (the cache keeps its previous table)."""
    table: dict[str, Instrument] = {}
    for item in data:
        symbol = str(item.get("symbol", ""))
        step = _precision(item, "quantityPrecision")
        minimum = decimal_or_none(item.get("tradeMinQuantity"))
        min_notional = decimal_or_none(item.get("tradeMinUSDT"))
        if minimum is None or min_notional is None:
            raise WireError(f"{symbol}: tradeMinQuantity and tradeMinUSDT are required")
        # The kernel needs a minimum on the step grid: round it up to the step.
        minimum = max(step, (minimum / step).to_integral_value(rounding=ROUND_CEILING) * step)
        table[symbol] = Instrument(
            symbol=symbol,
            quantity_step=step,
            price_tick=_precision(item, "pricePrecision"),
            min_quantity=minimum,
            min_notional=min_notional,
            tradable=item.get("status") == 1
            and item.get("apiStateOpen") in {"true", True}
            and item.get("apiStateClose") in {"true", True},
        )
    return table


class InstrumentCache:
    """The contracts table, replaced whole on each successful refresh (one owner: the refresher)."""

    def __init__(self) -> None:
        self._table: dict[str, Instrument] = {}
        self.loaded_ms: int | None = None

    @property
    def loaded(self) -> bool:
        return self.loaded_ms is not None

    def replace(self, table: dict[str, Instrument], now_ms: int) -> None:
        self._table = table
        self.loaded_ms = now_ms

    def get(self, symbol: str) -> Instrument | None:
        return self._table.get(symbol)

    def all(self) -> list[Instrument]:
        return [self._table[symbol] for symbol in sorted(self._table)]
