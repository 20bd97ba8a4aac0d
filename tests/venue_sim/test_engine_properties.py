"""Matching-engine properties (hypothesis): exact books, no overfills, limit prices respected."""

from __future__ import annotations

import contextlib
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from services.venue.sim.clock import ManualClock
from services.venue.sim.engine import Engine
from services.venue.sim.orders import ZERO
from services.venue.sim.requests import OrderRequest
from services.venue.sim.state import AccountEvent, Event, OrderEvent
from services.venue.sim.wire import ApiError
from tests.venue_sim.helpers import settings_for_tests

SYMBOL = "ETH-USDT"

place_op = st.tuples(
    st.just("place"),
    st.sampled_from(["BUY", "SELL"]),
    st.sampled_from(["MARKET", "LIMIT"]),
    st.sampled_from(["GTC", "IOC", "FOK", "PostOnly"]),
    st.integers(min_value=1, max_value=300),  # quantity in 0.01 steps
    st.integers(min_value=-40, max_value=40),  # limit price offset in whole dollars
    st.sampled_from([False, False, False, True]),  # reduceOnly (or closing, in hedge mode)
)
price_op = st.tuples(st.just("price"), st.integers(min_value=2500, max_value=3500))
advance_op = st.tuples(st.just("advance"), st.integers(min_value=1, max_value=5))
cancel_op = st.tuples(st.just("cancel"), st.integers(min_value=0, max_value=20))
# Placing is listed three times: most steps place orders.
operations = st.lists(st.one_of(place_op, place_op, place_op, price_op, advance_op, cancel_op), min_size=8, max_size=40)


def _engine(fraction: Decimal, dual: bool) -> tuple[Engine, list[Event]]:
    settings = settings_for_tests(
        initial_balance=Decimal(1_000_000), fill_fraction=fraction, slippage_bps=Decimal(3), default_leverage=20
    )
    engine = Engine(settings, ManualClock())
    engine.state.account.dual_side = dual
    events: list[Event] = []
    engine.subscribe(events.append)
    return engine, events


def _run(engine: Engine, ops: list[tuple[object, ...]], dual: bool) -> None:
    for op in ops:
        kind = op[0]
        if kind == "price":
            engine.set_price(SYMBOL, Decimal(str(op[1])))
        elif kind == "advance":
            engine.advance(int(str(op[1])), [SYMBOL])
        elif kind == "cancel":
            open_orders = engine.state.open_orders(SYMBOL)
            if open_orders:
                target = open_orders[int(str(op[1])) % len(open_orders)]
                engine.cancel(SYMBOL, target.order_id, None)
        else:
            _, side, order_type, tif, qty, offset, reduce_only = op
            mark = engine.state.book.prices[SYMBOL]
            position_side = None
            if dual:
                position_side = "LONG" if (side == "BUY") != bool(reduce_only) else "SHORT"
            request = OrderRequest(
                symbol=SYMBOL,
                side=side,  # type: ignore[arg-type]
                type=order_type,  # type: ignore[arg-type]
                quantity=Decimal(int(str(qty))) / 100,
                price=mark + int(str(offset)) if order_type == "LIMIT" else None,
                position_side=position_side,  # type: ignore[arg-type]
                time_in_force=tif,  # type: ignore[arg-type]
                reduce_only=bool(reduce_only) if not dual else None,
                client_id="",
                working_type="MARK_PRICE",
            )
            # A rejected order changes nothing; the invariants below still hold.
            with contextlib.suppress(ApiError):
                engine.place(request)


def _check(engine: Engine, events: list[Event]) -> None:
    state = engine.state
    fills = state.fills
    marks = state.marks()
    fees = sum((-f.commission for f in fills), ZERO)
    cash = sum((-(1 if f.side == "BUY" else -1) * f.quantity * f.price for f in fills), ZERO)
    held = sum((p.amount * marks[p.symbol] for p in state.account.positions.values()), ZERO)
    initial = Decimal(1_000_000)
    # Wallet + unrealized PnL is exactly the initial balance plus every fill's cash flow, minus fees.
    assert state.account.wallet + state.account.unrealized(marks) == initial + cash + held - fees
    # Wallet alone moves by realized PnL and fees only.
    realized = sum((f.realized_pnl for f in fills), ZERO)
    assert state.account.wallet == initial + realized - fees
    for key, position in state.account.positions.items():
        signed = sum(
            ((1 if f.side == "BUY" else -1) * f.quantity for f in fills if (f.symbol, f.position_side) == key), ZERO
        )
        assert position.amount == signed
        if key[1] == "LONG":
            assert position.amount >= 0
        if key[1] == "SHORT":
            assert position.amount <= 0
    for order in state.orders.values():
        own = [f for f in fills if f.order_id == order.order_id]
        assert order.executed == sum((f.quantity for f in own), ZERO) <= order.quantity
        for fill in own:
            assert fill.quantity > 0
            if order.price is not None:
                assert fill.price <= order.price if order.side == "BUY" else fill.price >= order.price
        if order.time_in_force == "FOK":
            assert order.executed in {ZERO, order.quantity}
    # The stream tells the same story: commissions, realized PnL, cumulative quantities.
    trades = [e for e in events if isinstance(e, OrderEvent) and e.execution == "TRADE"]
    assert sum((e.commission for e in trades), ZERO) == -fees
    assert sum((e.realized_pnl for e in trades), ZERO) == realized
    last_z: dict[int, Decimal] = {}
    for event in trades:
        assert event.order.executed == last_z.get(event.order.order_id, ZERO) + event.last_qty
        last_z[event.order.order_id] = event.order.executed
    wallets = [e.wallet for e in events if isinstance(e, AccountEvent)]
    if wallets:
        assert wallets[-1] == state.account.wallet


@given(
    ops=operations,
    fraction=st.sampled_from([Decimal(1), Decimal("0.5"), Decimal("0.3")]),
    dual=st.booleans(),
    delay=st.sampled_from([0, 0, 1, 2]),
)
def test_books_stay_exact_and_fills_stay_inside_orders(
    ops: list[tuple[object, ...]], fraction: Decimal, dual: bool, delay: int
) -> None:
    engine, events = _engine(fraction, dual)
    # Delayed fills (a fault) must not bend any rule either.
    engine.fill_delay_ticks = delay
    _run(engine, ops, dual)
    _check(engine, events)


@given(ops=operations)
def test_same_seed_same_run(ops: list[tuple[object, ...]]) -> None:
    first, _ = _engine(Decimal(1), dual=False)
    second, _ = _engine(Decimal(1), dual=False)
    _run(first, ops, dual=False)
    _run(second, ops, dual=False)
    assert first.state.book.prices == second.state.book.prices
    assert first.state.fills == second.state.fills
    assert first.state.account.wallet == second.state.account.wallet
