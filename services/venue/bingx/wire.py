"""BingX wire values to typed values (API.md §4, §5.1, §6.3, §8.1).

Zero is a value, missing is missing: ``""``, ``null`` and an absent field are ``None``; a
``"0"`` is ``Decimal(0)``. Statuses are normalised across the REST and WebSocket spellings;
a status this module does not know is ``None`` (the caller reports it, never guesses).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Final

__all__ = [
    "FillRecord",
    "OrderRecord",
    "StreamOrderUpdate",
    "WireError",
    "decimal_or_none",
    "fill_record",
    "normal_status",
    "order_record",
    "stream_update",
]

#: REST and WebSocket spellings (PENDING/NEW, CANCELLED/CANCELED) to one vocabulary.
_STATUSES: Final = {
    "PENDING": "NEW",
    "NEW": "NEW",
    "PARTIALLY_FILLED": "PARTIALLY_FILLED",
    "FILLED": "FILLED",
    "CANCELLED": "CANCELED",
    "CANCELED": "CANCELED",
    "EXPIRED": "EXPIRED",
    "FAILED": "FAILED",
}
OPEN_STATUSES: Final = frozenset({"NEW", "PARTIALLY_FILLED"})


class WireError(ValueError):
    """A field BingX must send is missing or malformed."""


def decimal_or_none(value: object) -> Decimal | None:
    """``None`` for a missing value (absent, ``""``, ``null``); otherwise an exact, finite Decimal."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise WireError(f"not a decimal: {value!r}")
    try:
        number = Decimal(value)
    except InvalidOperation as error:
        raise WireError(f"not a decimal: {value!r}") from error
    if not number.is_finite():
        raise WireError(f"not a finite decimal: {value!r}")
    return number


def _required_decimal(data: Mapping[str, Any], name: str) -> Decimal:
    number = decimal_or_none(data.get(name))
    if number is None:
        raise WireError(f"{name} is missing")
    return number


def _int_or_none(value: object) -> int | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    raise WireError(f"not an integer: {value!r}")


def normal_status(raw: object) -> str | None:
    """One spelling per state (NEW, PARTIALLY_FILLED, FILLED, CANCELED, EXPIRED, FAILED); None if unknown."""
    return _STATUSES.get(raw) if isinstance(raw, str) else None


@dataclass(frozen=True)
class OrderRecord:
    """A REST order object (query, cancel, open orders, history)."""

    order_id: int
    client_order_id: str
    symbol: str
    side: str
    type: str
    quantity: Decimal
    price: Decimal | None
    executed: Decimal
    avg_price: Decimal | None
    raw_status: str
    status: str | None
    time_ms: int | None
    update_ms: int | None
    reduce_only: bool

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


def order_record(data: Mapping[str, Any]) -> OrderRecord:
    order_id = _int_or_none(data.get("orderId"))
    if order_id is None:
        raise WireError("orderId is missing")
    raw_status = str(data.get("status", ""))
    avg = decimal_or_none(data.get("avgPrice"))
    return OrderRecord(
        order_id=order_id,
        client_order_id=str(data.get("clientOrderId") or data.get("clientOrderID") or ""),
        symbol=str(data["symbol"]),
        side=str(data.get("side", "")),
        type=str(data.get("type", "")),
        quantity=_required_decimal(data, "origQty"),
        price=decimal_or_none(data.get("price")),
        executed=_required_decimal(data, "executedQty"),
        # "0.0" before any fill: no average yet, not an average of zero.
        avg_price=avg if avg else None,
        raw_status=raw_status,
        status=normal_status(raw_status),
        time_ms=_int_or_none(data.get("time")),
        update_ms=_int_or_none(data.get("updateTime")),
        reduce_only=data.get("reduceOnly") is True,
    )


@dataclass(frozen=True)
class FillRecord:
    """An ``allFillOrders`` entry (coin units)."""

    order_id: int
    quantity: Decimal
    price: Decimal
    commission: Decimal | None
    asset: str
    time_ms: int


def _iso_ms(value: object) -> int:
    if not isinstance(value, str) or not value.endswith("Z"):
        raise WireError(f"filledTm is not an ISO-8601 UTC time: {value!r}")
    moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return int(moment.timestamp() * 1000)


def fill_record(data: Mapping[str, Any]) -> FillRecord:
    order_id = _int_or_none(data.get("orderId"))
    if order_id is None:
        raise WireError("orderId is missing")
    return FillRecord(
        order_id=order_id,
        quantity=_required_decimal(data, "volume"),
        price=_required_decimal(data, "price"),
        commission=decimal_or_none(data.get("commission")),
        asset=str(data.get("currency") or ""),
        # filledTm is UTC (ccxt trusts it; filledTime's +0800 label is wrong, API.md §4).
        time_ms=_iso_ms(data.get("filledTm")),
    )


@dataclass(frozen=True)
class StreamOrderUpdate:
    """An ``ORDER_TRADE_UPDATE`` of the user stream (API.md §6.3)."""

    order_id: int
    client_order_id: str
    symbol: str
    execution: str
    raw_status: str
    status: str | None
    cumulative: Decimal | None
    last_quantity: Decimal | None
    last_price: Decimal | None
    average_price: Decimal | None
    commission: Decimal | None
    commission_asset: str
    event_ms: int
    trade_ms: int | None


def stream_update(message: Mapping[str, Any]) -> StreamOrderUpdate:
    order = message.get("o")
    event_ms = _int_or_none(message.get("E"))
    if not isinstance(order, Mapping) or event_ms is None:
        raise WireError("ORDER_TRADE_UPDATE without o or E")
    order_id = _int_or_none(order.get("i"))
    if order_id is None:
        raise WireError("ORDER_TRADE_UPDATE without an order id")
    raw_status = str(order.get("X", ""))
    trade_ms = _int_or_none(order.get("T"))
    return StreamOrderUpdate(
        order_id=order_id,
        client_order_id=str(order.get("c") or ""),
        symbol=str(order.get("s", "")),
        execution=str(order.get("x", "")),
        raw_status=raw_status,
        status=normal_status(raw_status),
        cumulative=decimal_or_none(order.get("z")),
        last_quantity=decimal_or_none(order.get("l")),
        last_price=decimal_or_none(order.get("L")),
        average_price=decimal_or_none(order.get("ap")),
        commission=decimal_or_none(order.get("n")),
        commission_asset=str(order.get("N") or ""),
        event_ms=event_ms,
        # T is 0 on updates that are not trades: no trade time, not the epoch.
        trade_ms=trade_ms or None,
    )
