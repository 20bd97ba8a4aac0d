"""Typed order requests parsed from BingX parameters (query/form strings or batch JSON items)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import cast, get_args

from services.venue.sim.orders import OrderType, PositionSide, Side, TimeInForce
from services.venue.sim.wire import ApiError, Code

__all__ = ["CLIENT_ID_MAX", "MAX_NUMBER", "OrderRequest", "parse_bool", "parse_decimal", "parse_order"]

CLIENT_ID_MAX = 40
# Far above any price or size; keeps every product within Decimal's 28 digits of precision.
MAX_NUMBER = Decimal("1e12")
# Order parameters of features the simulator does not model: refused rather than ignored.
UNSUPPORTED = ("takeProfit", "stopLoss", "stopPrice", "priceRate", "activationPrice", "positionId")


@dataclass(frozen=True, slots=True)
class OrderRequest:
    symbol: str
    side: Side
    type: OrderType
    quantity: Decimal
    price: Decimal | None
    position_side: PositionSide | None
    time_in_force: TimeInForce
    reduce_only: bool | None
    client_id: str
    working_type: str


def _text(value: object) -> str | None:
    """A parameter as text: strings as sent, JSON numbers/booleans of batch items as written."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | Decimal):
        text = str(value)
        return text or None
    raise ApiError(Code.INVALID_PARAMETER, f"Invalid parameters, err:unsupported value type {type(value).__name__}")


def parse_decimal(name: str, value: str) -> Decimal:
    try:
        number = Decimal(value)
    except InvalidOperation as error:
        raise ApiError(Code.INVALID_PARAMETER, f"Invalid parameters, err:{name} is not a number") from error
    if not number.is_finite() or number <= 0:
        raise ApiError(Code.INVALID_PARAMETER, f"Invalid parameters, err:{name} must be greater than 0")
    if number >= MAX_NUMBER:
        raise ApiError(Code.INVALID_PARAMETER, f"Invalid parameters, err:{name} must be less than {MAX_NUMBER:f}")
    return number


def parse_bool(name: str, value: str | None) -> bool | None:
    if value is None:
        return None
    lowered = value.lower()
    if lowered not in {"true", "false"}:
        raise ApiError(Code.INVALID_PARAMETER, f"Invalid parameters, err:{name} must be true or false")
    return lowered == "true"


def _choice(name: str, value: str | None, allowed: tuple[str, ...]) -> str | None:
    if value is None:
        return None
    if value not in allowed:
        raise ApiError(Code.INVALID_PARAMETER, f"Invalid parameters, err:{name} must be one of {', '.join(allowed)}")
    return value


def parse_order(raw: Mapping[str, object]) -> OrderRequest:
    """Validate the parameters of one order (place, test or a batch item).

    Raises:
        ApiError: 80014 for a missing or malformed parameter, 109400 for an order type the
            simulator does not model.
    """
    params = {key: _text(value) for key, value in raw.items()}

    def need(name: str) -> str:
        value = params.get(name)
        if value is None:
            raise ApiError(Code.INVALID_PARAMETER, f"Invalid parameters, err:parameter {name} is must")
        return value

    for name in UNSUPPORTED:
        if params.get(name) not in {None, "0"}:
            raise ApiError(Code.MODE_PARAMETER, f"{name} is not supported by the simulator")
    if parse_bool("closePosition", params.get("closePosition")):
        raise ApiError(Code.MODE_PARAMETER, "closePosition is not supported by the simulator")
    symbol = need("symbol")
    side = _choice("side", need("side"), get_args(Side))
    order_type = need("type")
    if order_type not in get_args(OrderType):
        raise ApiError(Code.MODE_PARAMETER, f"order type {order_type} is not supported by the simulator")
    quantity = parse_decimal("quantity", need("quantity"))
    price = parse_decimal("price", need("price")) if order_type == "LIMIT" else None
    position_side = _choice("positionSide", params.get("positionSide"), get_args(PositionSide))
    tif = _choice("timeInForce", params.get("timeInForce"), get_args(TimeInForce)) or "GTC"
    reduce_only = parse_bool("reduceOnly", params.get("reduceOnly"))
    client_id = params.get("clientOrderID") or params.get("clientOrderId") or ""
    if len(client_id) > CLIENT_ID_MAX:
        raise ApiError(
            Code.INVALID_PARAMETER, f"Invalid parameters, err:clientOrderID length must be 1-{CLIENT_ID_MAX}"
        )
    return OrderRequest(
        symbol=symbol,
        side=cast(Side, side),
        type=cast(OrderType, order_type),
        quantity=quantity,
        price=price,
        position_side=cast(PositionSide | None, position_side),
        time_in_force=cast(TimeInForce, tif),
        reduce_only=reduce_only,
        client_id=client_id.lower(),
        working_type=params.get("workingType") or "MARK_PRICE",
    )
