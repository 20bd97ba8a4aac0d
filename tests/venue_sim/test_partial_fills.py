"""Partial fills per order, entry and exit alike, steered through the control API (legacy S7)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.venue_sim.helpers import SimClient

ETH = "ETH-USDT"
ORDER = "/openApi/swap/v2/trade/order"
MAKER = Decimal("0.0002")


async def _state(client: SimClient, order_id: int) -> tuple[str, str]:
    order = (await client.call("GET", ORDER, {"symbol": ETH, "orderId": order_id})).data["order"]
    return order["status"], order["executedQty"]


async def _position(client: SimClient) -> str | None:
    positions = (await client.call("GET", "/openApi/swap/v2/user/positions", {"symbol": ETH})).data
    return positions[0]["positionAmt"] if positions else None


@pytest.mark.anyio
async def test_entry_fills_whole_and_exit_fills_in_parts(client: SimClient) -> None:
    """[S7] partial fills per order: a whole entry, then an exit in halves, books exact."""
    await client.set_price(ETH, "3000")
    entry = (await client.place(symbol=ETH, side="BUY", type="LIMIT", price="2990", quantity="2")).data["order"]
    await client.set_price(ETH, "2980")
    assert await _state(client, entry["orderId"]) == ("FILLED", "2.00")
    # From now on each matching pass fills half an order.
    assert await client.control("matching", {"fill_fraction": "0.5"}) == {"fill_fraction": "0.5", "slippage_bps": "0"}
    exit_order = (
        await client.place(symbol=ETH, side="SELL", type="LIMIT", price="3000", quantity="2", reduceOnly="true")
    ).data["order"]
    await client.set_price(ETH, "3010")
    assert await _state(client, exit_order["orderId"]) == ("PARTIALLY_FILLED", "1.00")
    assert await _position(client) == "1.00"
    await client.set_price(ETH, "3011")
    assert await _state(client, exit_order["orderId"]) == ("FILLED", "2.00")
    assert await _position(client) is None
    # Two maker legs out at 3000 against one in at 2990: exact PnL and fees.
    fees = (2 * Decimal(2990) + 2 * Decimal(3000)) * MAKER
    balance = (await client.call("GET", "/openApi/swap/v2/user/balance")).data["balance"]
    assert Decimal(balance["balance"]) == Decimal(10_000) + 2 * Decimal(10) - fees


@pytest.mark.anyio
async def test_entry_fills_in_parts_and_exit_fills_whole(client: SimClient) -> None:
    """[S7] the other way round: an entry in quarters, then a whole exit."""
    await client.set_price(ETH, "3000")
    await client.control("matching", {"fill_fraction": "0.25"})
    entry = (await client.place(symbol=ETH, side="BUY", type="LIMIT", price="2990", quantity="1")).data["order"]
    await client.set_price(ETH, "2980")
    assert await _state(client, entry["orderId"]) == ("PARTIALLY_FILLED", "0.25")
    await client.control("matching", {"fill_fraction": "1"})
    await client.set_price(ETH, "2981")
    assert await _state(client, entry["orderId"]) == ("FILLED", "1.00")
    exit_order = (
        await client.place(symbol=ETH, side="SELL", type="LIMIT", price="2995", quantity="1", reduceOnly="true")
    ).data["order"]
    await client.set_price(ETH, "3000")
    assert await _state(client, exit_order["orderId"]) == ("FILLED", "1.00")
    assert await _position(client) is None
    state = await client.control("state", method="GET")
    assert (state["fillFraction"], state["slippageBps"]) == ("1", "0")


@pytest.mark.anyio
async def test_slippage_can_change_between_orders(client: SimClient) -> None:
    await client.set_price(ETH, "3000")
    first = (await client.place(symbol=ETH, side="BUY", type="MARKET", quantity="1")).data["order"]
    await client.control("matching", {"slippage_bps": "10"})
    second = (await client.place(symbol=ETH, side="BUY", type="MARKET", quantity="1")).data["order"]
    # The ask 3000.01, then 10 bps worse rounded up to the tick.
    assert (first["avgPrice"], second["avgPrice"]) == ("3000.01", "3003.02")


@pytest.mark.anyio
async def test_matching_control_refuses_bad_values(client: SimClient) -> None:
    for body in (
        {"fill_fraction": "0"},
        {"fill_fraction": "1.5"},
        {"fill_fraction": "half"},
        {"slippage_bps": "-1"},
        {"slippage_bps": "501"},
        {"fill_ratio": "0.5"},
    ):
        async with client.session.post(f"{client.base}/_sim/matching", json=body) as response:
            assert response.status == 400, body
            assert "error" in await response.json()
    state = await client.control("state", method="GET")
    assert (state["fillFraction"], state["slippageBps"]) == ("1", "0")
