"""Account reads: open orders, positions, balance, all fresh from BingX on every call.

Nothing here is cached: a reconcile must see the venue as it is, never an older snapshot.
Missing fields stay missing (an error naming the field), never zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any, Final

from services.common.proto import slot_pb2, types_pb2, venue_service_pb2
from services.venue.bingx.client import BingXClient
from services.venue.bingx.wire import WireError, decimal_or_none, order_record
from services.venue.events import dec

__all__ = ["Account"]

OPEN_ORDERS: Final = "/openApi/swap/v2/trade/openOrders"
POSITIONS: Final = "/openApi/swap/v2/user/positions"
BALANCE: Final = "/openApi/swap/v3/user/balance"
SETTLEMENT_ASSET: Final = "USDT"

_STATUS: Final = {
    "NEW": slot_pb2.ORDER_STATUS_ACCEPTED,
    "PARTIALLY_FILLED": slot_pb2.ORDER_STATUS_PARTIALLY_FILLED,
}


def _required(data: dict[str, Any], name: str) -> Decimal:
    value = decimal_or_none(data.get(name))
    if value is None:
        raise WireError(f"{name} is missing")
    return value


class Account:
    def __init__(self, client: BingXClient) -> None:
        self._client = client

    async def open_orders(self, symbols: Sequence[str]) -> list[venue_service_pb2.VenueOrder]:
        params: dict[str, object] = {"symbol": symbols[0]} if len(symbols) == 1 else {}
        reply = await self._client.get(OPEN_ORDERS, params)
        wanted = set(symbols)
        listed = []
        for item in reply.data.get("orders") or []:
            record = order_record(item)
            if wanted and record.symbol not in wanted:
                continue
            status = _STATUS.get(record.status or "")
            if status is None:
                raise WireError(f"open order {record.order_id} has status {record.raw_status!r}")
            order = venue_service_pb2.VenueOrder(
                client_order_id=record.client_order_id,
                venue_order_id=str(record.order_id),
                symbol=record.symbol,
                side=types_pb2.ORDER_SIDE_BUY if record.side == "BUY" else types_pb2.ORDER_SIDE_SELL,
                order_type=types_pb2.ORDER_TYPE_LIMIT if record.type == "LIMIT" else types_pb2.ORDER_TYPE_MARKET,
                quantity=dec(record.quantity),
                status=status,
                filled_quantity=dec(record.executed),
                reduce_only=record.reduce_only,
            )
            if record.type == "LIMIT" and record.price is not None:
                order.limit_price.CopyFrom(dec(record.price))
            if record.avg_price is not None:
                order.average_price.CopyFrom(dec(record.avg_price))
            listed.append(order)
        return listed

    async def positions(self, symbols: Sequence[str]) -> list[venue_service_pb2.VenuePosition]:
        params: dict[str, object] = {"symbol": symbols[0]} if len(symbols) == 1 else {}
        reply = await self._client.get(POSITIONS, params)
        wanted = set(symbols)
        positions = []
        for item in reply.data or []:
            symbol = str(item.get("symbol", ""))
            amount = _required(item, "positionAmt")
            if amount == 0 or (wanted and symbol not in wanted):
                continue
            side_text = str(item.get("positionSide", ""))
            if side_text == "BOTH":
                side = types_pb2.SIDE_LONG if amount > 0 else types_pb2.SIDE_SHORT
            elif side_text in {"LONG", "SHORT"}:
                side = types_pb2.SIDE_LONG if side_text == "LONG" else types_pb2.SIDE_SHORT
            else:
                raise WireError(f"position {symbol} has positionSide {side_text!r}")
            position = venue_service_pb2.VenuePosition(
                symbol=symbol,
                side=side,
                size=dec(abs(amount)),
                entry_price=dec(_required(item, "avgPrice")),
                unrealized_pnl=dec(_required(item, "unrealizedProfit")),
            )
            leverage = decimal_or_none(item.get("leverage"))
            if leverage is not None:
                position.leverage.CopyFrom(dec(leverage))
            positions.append(position)
        return sorted(positions, key=lambda p: (p.symbol, p.side))

    async def balance(self) -> venue_service_pb2.GetBalanceResponse:
        reply = await self._client.get(BALANCE)
        for item in reply.data or []:
            if item.get("asset") == SETTLEMENT_ASSET:
                return venue_service_pb2.GetBalanceResponse(
                    asset=SETTLEMENT_ASSET,
                    wallet_balance=dec(_required(item, "balance")),
                    available_margin=dec(_required(item, "availableMargin")),
                )
        raise WireError(f"the balance lists no {SETTLEMENT_ASSET} entry")
