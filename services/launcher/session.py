"""A short paper-trading session through the kernel's gRPC API, printed as it happens.

Round trips on two slots at once (BTC-USDT on slot 0, ETH-USDT on slot 1, sides alternating
per round): a MARKET ENTER answered once the order is done, a hold while the simulator's
price moves, a MARKET EXIT answered once done. Every trade is printed with its prices, fees
and PnL as the kernel booked them; at the end the slots, the account and a consistency check:
the account's realized PnL and fees are the sums of the trades' own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, TextIO

import grpc
import grpc.aio
from google.protobuf import duration_pb2

from services.common.proto import (
    account_pb2,
    intent_pb2,
    kernel_service_pb2,
    slot_pb2,
    types_pb2,
)
from services.launcher.config import LaunchSettings

__all__ = ["SessionError", "Trade", "run_session", "wait_for_marks"]

if TYPE_CHECKING:
    # The async stub class exists only in the generated type stubs (grpc.aio channels).
    from services.common.proto.kernel_service_pb2_grpc import KernelServiceAsyncStub as Stub


class SessionError(Exception):
    """The session could not trade as planned (an intent refused, an order not finished in time)."""


@dataclass(frozen=True)
class Trade:
    slot_id: int
    symbol: str
    side: str
    size: Decimal
    entry_price: Decimal
    exit_price: Decimal
    realized_pnl: Decimal
    fees: Decimal
    net_pnl: Decimal


def _num(value: types_pb2.Decimal) -> Decimal:
    return Decimal(value.value) if value.value else Decimal(0)


def _side_name(side: types_pb2.Side.ValueType) -> str:
    return types_pb2.Side.Name(side).removeprefix("SIDE_")


def _state_name(state: slot_pb2.SlotState.ValueType) -> str:
    return slot_pb2.SlotState.Name(state).removeprefix("SLOT_STATE_")


async def _submit(stub: Stub, intent: intent_pb2.Intent, seconds: float) -> kernel_service_pb2.SubmitIntentResponse:
    """Submits ``intent`` and answers once its order is done; refusals and timeouts are errors."""
    wait = kernel_service_pb2.WaitCondition(
        any_of=[kernel_service_pb2.WAIT_FOR_ORDER_DONE], timeout=duration_pb2.Duration(seconds=int(seconds))
    )
    request = kernel_service_pb2.SubmitIntentRequest(intent=intent, wait=wait)
    answer = await stub.SubmitIntent(request, timeout=seconds + 5)
    outcome = answer.outcome
    if not outcome.accepted:
        code = outcome.code
        raise SessionError(f"intent {intent.intent_id} refused: {code} {outcome.message}")
    if not answer.wait_satisfied:
        raise SessionError(
            f"intent {intent.intent_id}: the order was not done within {seconds} s "
            f"(slot {answer.slot.slot_id} is {_state_name(answer.slot.state)})"
        )
    return answer


@dataclass(frozen=True)
class _Leg:
    slot_id: int
    symbol: str
    size: Decimal


async def _round_trip(stub: Stub, settings: LaunchSettings, round_no: int, leg: _Leg, out: TextIO) -> Trade:
    slot_id, symbol, size = leg.slot_id, leg.symbol, leg.size
    side = types_pb2.SIDE_LONG if (round_no + slot_id) % 2 == 0 else types_pb2.SIDE_SHORT
    enter = intent_pb2.Intent(
        intent_id=f"run-r{round_no}-s{slot_id}-enter",
        action=intent_pb2.INTENT_ACTION_ENTER,
        slot_id=slot_id,
        symbol=symbol,
        side=side,
        order_type=types_pb2.ORDER_TYPE_MARKET,
        target_size=types_pb2.Decimal(value=str(size)),
        leverage=types_pb2.Decimal(value=str(settings.leverage)),
    )
    opened = (await _submit(stub, enter, settings.order_seconds)).slot
    out.write(
        f"  slot {slot_id}  {symbol:<9} {_side_name(side):<5} {size} filled at {_num(opened.entry_average_price)}"
        f"  ({_state_name(opened.state)})\n"
    )
    # Holding the position is the strategy's choice here, while the simulator moves the price.
    await asyncio.sleep(settings.hold_seconds)
    exit_ = intent_pb2.Intent(
        intent_id=f"run-r{round_no}-s{slot_id}-exit",
        action=intent_pb2.INTENT_ACTION_EXIT,
        slot_id=slot_id,
        order_type=types_pb2.ORDER_TYPE_MARKET,
    )
    closed = (await _submit(stub, exit_, settings.order_seconds)).slot
    trade = Trade(
        slot_id=slot_id,
        symbol=symbol,
        side=_side_name(side),
        size=size,
        entry_price=_num(closed.entry_average_price),
        exit_price=_num(closed.exit_average_price),
        realized_pnl=_num(closed.realized_pnl),
        fees=_num(closed.fees),
        net_pnl=_num(closed.net_pnl),
    )
    out.write(
        f"  slot {slot_id}  {symbol:<9} closed at {trade.exit_price}: realized {trade.realized_pnl}"
        f", fees {trade.fees}, net {trade.net_pnl}  ({_state_name(closed.state)})\n"
    )
    return trade


def _print_slots(slots: Sequence[slot_pb2.Slot], out: TextIO) -> None:
    out.write(f"\n{'slot':>4}  {'state':<15} {'symbol':<9} {'side':<5} {'position':>9} {'net pnl':>14}\n")
    for slot in slots:
        out.write(
            f"{slot.slot_id:>4}  {_state_name(slot.state):<15} {slot.symbol or '-':<9} "
            f"{_side_name(slot.side) if slot.symbol else '-':<5} "
            f"{_num(slot.position_size):>9} {_num(slot.net_pnl):>14}\n"
        )


def _print_account(account: account_pb2.Account, out: TextIO) -> None:
    out.write("\naccount\n")
    for name in ("initial_capital", "capital", "realized_pnl", "fees", "unrealized_pnl", "equity"):
        out.write(f"  {name:<16} {_num(getattr(account, name))} {account.settlement_asset}\n")
    out.write(f"  {'trades_closed':<16} {account.trades_closed}\n")


async def wait_for_marks(stub: Stub, symbols: set[str], seconds: float, out: TextIO) -> None:
    """Returns once the kernel has journaled a mark price of every symbol (a MARKET entry's
    notional is checked against it), reading the kernel's log from its start."""
    missing = set(symbols)
    call = stub.WatchRecords(kernel_service_pb2.WatchRecordsRequest(after_sequence=0), timeout=seconds)
    try:
        async for response in call:
            record_input = response.record.input
            if record_input.WhichOneof("payload") == "mark_price" and response.record.outcome.accepted:
                mark = record_input.mark_price
                if mark.symbol in missing:
                    missing.discard(mark.symbol)
                    out.write(f"  mark price {mark.symbol} {mark.price.value}\n")
                if not missing:
                    return
    except grpc.aio.AioRpcError as error:
        if error.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
            raise SessionError(f"no mark price for {sorted(missing)} within {seconds} s") from error
        raise
    finally:
        call.cancel()
    raise SessionError(f"the kernel's log ended before a mark price for {sorted(missing)}")


async def run_session(stub: Stub, settings: LaunchSettings, out: TextIO) -> list[Trade]:
    """Trades the session and prints it; returns the trades. Raises :class:`SessionError`."""
    legs = (_Leg(0, "BTC-USDT", settings.btc_size), _Leg(1, "ETH-USDT", settings.eth_size))
    await wait_for_marks(stub, {leg.symbol for leg in legs}, settings.order_seconds, out)
    before = (await stub.GetAccount(kernel_service_pb2.GetAccountRequest(), timeout=10)).account
    trades: list[Trade] = []
    for round_no in range(1, settings.rounds + 1):
        out.write(f"round {round_no}\n")
        trades += await asyncio.gather(*(_round_trip(stub, settings, round_no, leg, out) for leg in legs))
    slots = (await stub.ListSlots(kernel_service_pb2.ListSlotsRequest(), timeout=10)).slots
    account = (await stub.GetAccount(kernel_service_pb2.GetAccountRequest(), timeout=10)).account
    _print_slots(slots, out)
    _print_account(account, out)
    realized = sum((t.realized_pnl for t in trades), Decimal(0))
    fees = sum((t.fees for t in trades), Decimal(0))
    booked_realized = _num(account.realized_pnl) - _num(before.realized_pnl)
    booked_fees = _num(account.fees) - _num(before.fees)
    if booked_realized != realized or booked_fees != fees:
        raise SessionError(
            f"the account booked realized {booked_realized} and fees {booked_fees}; "
            f"the trades add up to {realized} and {fees}"
        )
    out.write(f"\n{len(trades)} trades; realized {realized}, fees {fees}: the account agrees with its trades\n")
    return trades
