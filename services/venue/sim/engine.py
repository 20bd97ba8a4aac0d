"""The matching engine: order placement rules, price-driven fills, cancels (pure, no I/O).

Every change is announced to the listeners as an event (``services.venue.sim.state``).
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable
from dataclasses import replace
from decimal import ROUND_DOWN, ROUND_HALF_UP, ROUND_UP, Decimal
from typing import Literal

from services.venue.sim.account import Account, MarginType
from services.venue.sim.clock import Clock
from services.venue.sim.config import SimSettings, SymbolSpec
from services.venue.sim.orders import ZERO, Fill, Income, Order, PositionSide, Side
from services.venue.sim.prices import CsvPath, PriceBook, RandomWalk, load_csv
from services.venue.sim.requests import OrderRequest
from services.venue.sim.state import AccountEvent, ConfigEvent, Event, ExecType, OrderEvent, PublicTrade, State
from services.venue.sim.wire import ApiError, Code

__all__ = ["Engine", "leverage_side"]

FEE_QUANTUM = Decimal("1e-8")
FIRST_ORDER_ID = 1_900_000_000_000_000_000


def _paths(settings: SimSettings) -> dict[str, RandomWalk | CsvPath]:
    symbols = [spec.symbol for spec in settings.symbols]
    if settings.price_path == "csv" and settings.price_csv is not None:
        table = load_csv(settings.price_csv, symbols)
        return {symbol: CsvPath(table[symbol]) for symbol in symbols}
    # One RNG per symbol, derived from the seed, so adding a symbol leaves the others' paths alone.
    paths: dict[str, RandomWalk | CsvPath] = {}
    for spec in settings.symbols:
        rng = random.Random(f"{settings.seed}:{spec.symbol}")  # noqa: S311  # a simulation, not cryptography
        paths[spec.symbol] = RandomWalk(spec, rng, settings.walk_step_bps)
    return paths


def leverage_side(side: Side, position_side: PositionSide) -> str:
    """The leverage an order uses: its position side in hedge mode, its direction in one-way mode."""
    if position_side != "BOTH":
        return position_side
    return "LONG" if side == "BUY" else "SHORT"


def _limit_price(order: Order) -> Decimal:
    if order.price is None:
        raise ValueError(f"LIMIT order {order.order_id} has no price")
    return order.price


class Engine:
    def __init__(self, settings: SimSettings, clock: Clock) -> None:
        self._settings = settings
        self._clock = clock
        specs = {spec.symbol: spec for spec in settings.symbols}
        book = PriceBook(specs, _paths(settings), settings.half_spread_ticks)
        account = Account(wallet=settings.initial_balance, default_leverage=settings.default_leverage)
        self.state = State(specs=specs, account=account, book=book, trades={s: [] for s in specs})
        self._listeners: list[Callable[[Event], None]] = []
        self._next_order = FIRST_ORDER_ID
        self._next_trade = 1
        self._next_tran = 1
        # Armed by the fault "delayed fills": new orders wait this many matching passes.
        self.fill_delay_ticks = settings.faults.fill_delay_ticks
        # Matching knobs the control API may change at run time (``POST /_sim/matching``).
        self.fill_fraction = settings.fill_fraction
        self.slippage_bps = settings.slippage_bps

    # ------------------------------------------------------------------ plumbing

    def subscribe(self, listener: Callable[[Event], None]) -> None:
        self._listeners.append(listener)

    def snapshot(self) -> State:
        return copy.deepcopy(self.state)

    def now(self) -> int:
        return self._clock.now_ms()

    def _emit(self, event: Event) -> None:
        for listener in self._listeners:
            listener(event)

    def _order_event(self, order: Order, execution: ExecType, **fill: Decimal) -> None:
        self._emit(OrderEvent(order=replace(order), execution=execution, time=self.now(), **fill))

    # ------------------------------------------------------------------ placement

    def validate(self, request: OrderRequest) -> tuple[SymbolSpec, Decimal, Decimal | None, PositionSide]:
        """Check an order against the account's rules; its truncated quantity/price and position side.

        Raises:
            ApiError: with BingX's code for the first rule broken.
        """
        state = self.state
        spec = state.spec(request.symbol)
        account = state.account
        if account.dual_side:
            if request.position_side not in {"LONG", "SHORT"}:
                raise ApiError(
                    Code.MODE_PARAMETER, "In the Hedge mode, the 'PositionSide' field can only be set to LONG or SHORT."
                )
            if request.reduce_only is not None:
                raise ApiError(Code.MODE_PARAMETER, "In the Hedge mode, the 'ReduceOnly' field can not be filled.")
            side: PositionSide = "LONG" if request.position_side == "LONG" else "SHORT"
        else:
            if request.position_side not in {None, "BOTH"}:
                raise ApiError(
                    Code.MODE_PARAMETER, "In the One-way mode, the 'PositionSide' field can only be set to BOTH."
                )
            side = "BOTH"
        # Excess precision is truncated, not rejected (API.md §3.3).
        quantity = request.quantity.quantize(spec.step, rounding=ROUND_DOWN)
        price = request.price.quantize(spec.tick, rounding=ROUND_DOWN) if request.price is not None else None
        quote = state.book.quote(spec.symbol)
        reference = price if price is not None else (quote.ask if request.side == "BUY" else quote.bid)
        if quantity < spec.min_quantity:
            raise ApiError(Code.MIN_SIZE, f"The minimum order amount is {spec.min_quantity} {spec.asset}")
        if price is not None and price <= 0:
            raise ApiError(Code.MIN_SIZE, "order price must be greater than 0")
        if quantity * reference < spec.min_notional:
            raise ApiError(
                Code.MIN_SIZE, f"The minimum nominal value of an order must be greater than {spec.min_notional}u"
            )
        if request.client_id and request.client_id in state.client_ids:
            raise ApiError(Code.DUPLICATE_CLIENT_ID, "clientOrderID cannot be repeated")
        if len(state.open_orders()) >= self._settings.max_open_orders:
            raise ApiError(Code.TOO_MANY_ORDERS, "the number of open orders has reached the system limit")
        self._check_reduce(request, side, quantity)
        self._check_margin(request, spec, side, quantity, reference)
        if request.type == "LIMIT" and request.time_in_force == "PostOnly" and price is not None:
            crosses = price >= quote.ask if request.side == "BUY" else price <= quote.bid
            if crosses:
                raise ApiError(Code.POST_ONLY_TAKES, "PostOnly order would immediately match and take liquidity")
        return spec, quantity, price, side

    def _check_reduce(self, request: OrderRequest, side: PositionSide, quantity: Decimal) -> None:
        account = self.state.account
        if side == "BOTH" and request.reduce_only:
            amount = account.amount(request.symbol, "BOTH")
            reduces = amount and (amount > 0) != (request.side == "BUY")
            if not reduces or quantity > abs(amount):
                raise ApiError(Code.REDUCE_ONLY_INCREASES, "Reduce Only order can only decrease your position")
        if side != "BOTH" and (request.side == "BUY") != (side == "LONG"):
            amount = abs(account.amount(request.symbol, side))
            if quantity > amount:
                raise ApiError(Code.NO_POSITION, "No position to close")

    def _check_margin(
        self, request: OrderRequest, spec: SymbolSpec, side: PositionSide, quantity: Decimal, reference: Decimal
    ) -> None:
        account = self.state.account
        if side == "BOTH":
            amount = account.amount(spec.symbol, "BOTH")
            reducible = abs(amount) if amount and (amount > 0) != (request.side == "BUY") else ZERO
            opening = ZERO if request.reduce_only else max(quantity - reducible, ZERO)
            lev_side = "LONG" if request.side == "BUY" else "SHORT"
        else:
            opening = quantity if (request.side == "BUY") == (side == "LONG") else ZERO
            lev_side = side
        if not opening:
            return
        leverage = account.leverage_of(spec.symbol, lev_side)
        needed = opening * reference / leverage + opening * reference * self._settings.taker_fee_rate
        if needed > self.state.available_margin():
            raise ApiError(Code.INSUFFICIENT_MARGIN, "Insufficient margin")

    def draft(self, request: OrderRequest, *, order_id: int = 0, delay_ticks: int = 0) -> Order:
        """The order ``request`` validates to, not yet accepted (an order test previews it as it is)."""
        spec, quantity, price, side = self.validate(request)
        now = self.now()
        return Order(
            order_id=order_id,
            symbol=spec.symbol,
            side=request.side,
            position_side=side,
            type=request.type,
            time_in_force=request.time_in_force,
            quantity=quantity,
            price=price,
            client_id=request.client_id,
            reduce_only=bool(request.reduce_only),
            leverage=self.state.account.leverage_of(spec.symbol, leverage_side(request.side, side)),
            time=now,
            update_time=now,
            one_way=side == "BOTH",
            delay_ticks=delay_ticks,
        )

    def place(self, request: OrderRequest) -> Order:
        """Validate, accept and (where it crosses) execute an order; the order as it stands."""
        order = self.draft(request, order_id=self._next_order, delay_ticks=self.fill_delay_ticks)
        self._next_order += 1
        self.state.orders[order.order_id] = order
        if order.client_id:
            self.state.client_ids[order.client_id] = order.order_id
        self._order_event(order, "NEW")
        if not order.delay_ticks:
            self._match_taker(order)
        return order

    # ------------------------------------------------------------------ matching

    def _market_price(self, order: Order) -> Decimal:
        spec = self.state.specs[order.symbol]
        quote = self.state.book.quote(order.symbol)
        slip = self.slippage_bps / Decimal(10_000)
        if order.side == "BUY":
            return (quote.ask * (1 + slip)).quantize(spec.tick, rounding=ROUND_UP)
        return max((quote.bid * (1 - slip)).quantize(spec.tick, rounding=ROUND_DOWN), spec.tick)

    def _chunk(self, order: Order) -> Decimal:
        fraction = self.fill_fraction
        if fraction >= 1 or order.type == "MARKET":
            return order.remaining
        step = self.state.specs[order.symbol].step
        part = max((order.quantity * fraction).quantize(step, rounding=ROUND_DOWN), step)
        return min(part, order.remaining)

    def _match_taker(self, order: Order) -> None:
        """Execute what an order takes on arrival; IOC/FOK remainders expire."""
        quote = self.state.book.quote(order.symbol)
        if order.type == "MARKET":
            self._fill(order, order.remaining, self._market_price(order), maker=False)
            self._close_remainder(order)
            return
        limit = _limit_price(order)
        touch = quote.ask if order.side == "BUY" else quote.bid
        crosses = limit >= touch if order.side == "BUY" else limit <= touch
        if crosses and not (order.time_in_force == "FOK" and self._chunk(order) < order.remaining):
            self._fill(order, self._chunk(order), touch, maker=False)
        if order.time_in_force in {"IOC", "FOK"}:
            self._close_remainder(order)

    def _close_remainder(self, order: Order) -> None:
        if order.is_open:
            order.status = "EXPIRED"
            order.update_time = self.now()
            self._order_event(order, "EXPIRED")

    def match(self, symbol: str) -> None:
        """One matching pass over the resting (and delayed) orders of ``symbol``."""
        for order in sorted(self.state.open_orders(symbol), key=lambda o: o.order_id):
            if order.delay_ticks:
                order.delay_ticks -= 1
                continue
            if order.type == "MARKET" or order.time_in_force in {"IOC", "FOK"}:
                self._match_taker(order)
                continue
            limit = _limit_price(order)
            quote = self.state.book.quote(symbol)
            crossed = quote.ask <= limit if order.side == "BUY" else quote.bid >= limit
            if crossed:
                self._fill(order, self._chunk(order), limit, maker=True)

    def _allowed(self, order: Order, quantity: Decimal) -> Decimal:
        """``quantity`` capped so a reduce-only or closing order never opens a position."""
        amount = self.state.account.amount(order.symbol, order.position_side)
        if order.one_way and order.reduce_only:
            reduces = amount and (amount > 0) != (order.side == "BUY")
            return min(quantity, abs(amount)) if reduces else ZERO
        if not order.one_way and (order.side == "BUY") != (order.position_side == "LONG"):
            return min(quantity, abs(amount))
        return quantity

    def _fill(self, order: Order, quantity: Decimal, price: Decimal, *, maker: bool) -> None:
        wanted = quantity
        quantity = self._allowed(order, quantity)
        if not quantity:
            self._close_remainder(order)
            return
        now = self.now()
        rate = self._settings.maker_fee_rate if maker else self._settings.taker_fee_rate
        fee = (quantity * price * rate).quantize(FEE_QUANTUM, rounding=ROUND_HALF_UP)
        effect = self.state.account.apply_fill(
            order.symbol, order.position_side, delta=order.direction * quantity, price=price, fee=fee, now=now
        )
        order.executed += quantity
        order.cum_quote += quantity * price
        order.commission -= fee
        order.profit += effect.realized_pnl
        order.status = "FILLED" if order.executed == order.quantity else "PARTIALLY_FILLED"
        order.update_time = now
        order.maker = maker
        trade_id = self._next_trade
        self._next_trade += 1
        self.state.fills.append(
            Fill(
                trade_id=trade_id,
                order_id=order.order_id,
                client_id=order.client_id,
                symbol=order.symbol,
                side=order.side,
                position_side=order.position_side,
                order_type=order.type,
                quantity=quantity,
                price=price,
                commission=-fee,
                realized_pnl=effect.realized_pnl,
                maker=maker,
                time=now,
                one_way=order.one_way,
            )
        )
        self._income(order.symbol, "TRADING_FEE", -fee, now, trade_id)
        if effect.realized_pnl:
            self._income(order.symbol, "REALIZED_PNL", effect.realized_pnl, now, trade_id)
        # The buyer is the maker when our buy rested or our sell took.
        trade = PublicTrade(order.symbol, price, quantity, buyer_maker=(order.side == "BUY") == maker, time=now)
        self.state.trades[order.symbol].append(trade)
        del self.state.trades[order.symbol][:-1000]
        self.state.book.record(order.symbol, now, quantity)
        self._order_event(
            order, "TRADE", last_qty=quantity, last_price=price, commission=-fee, realized_pnl=effect.realized_pnl
        )
        self._emit(
            AccountEvent(
                "ORDER", now, self.state.account.wallet, effect.realized_pnl - fee, (replace(effect.position),)
            )
        )
        self._emit(trade)
        if quantity < wanted:
            # A reduce-only or closing order ran out of position: the rest can never fill.
            self._close_remainder(order)

    def _income(
        self, symbol: str, kind: Literal["REALIZED_PNL", "TRADING_FEE"], amount: Decimal, now: int, trade: int
    ) -> None:
        info = "Realized PNL" if kind == "REALIZED_PNL" else "Trading Fee"
        self.state.incomes.append(Income(self._next_tran, symbol, kind, amount, info, now, trade))
        self._next_tran += 1

    # ------------------------------------------------------------------ prices

    def advance(self, ticks: int = 1, symbols: list[str] | None = None) -> None:
        """Step the price path of ``symbols`` (all by default) ``ticks`` times, matching after each."""
        chosen = symbols if symbols is not None else list(self.state.specs)
        for symbol in chosen:
            self.state.spec(symbol)
        for _ in range(ticks):
            for symbol in chosen:
                self.state.book.step(symbol)
                self.state.book.record(symbol, self.now(), ZERO)
                self.match(symbol)

    def set_price(self, symbol: str, price: Decimal) -> Decimal:
        self.state.spec(symbol)
        applied = self.state.book.set(symbol, price)
        self.state.book.record(symbol, self.now(), ZERO)
        self.match(symbol)
        return applied

    # ------------------------------------------------------------------ cancels

    def cancel(self, symbol: str, order_id: int | None, client_id: str | None, *, race: bool = False) -> Order:
        """Cancel an open order. With ``race`` the order first fills at its own price (fault "cancel/fill race")."""
        self.state.spec(symbol)
        order = self.state.find(symbol, order_id, client_id)
        if race and order.is_open:
            price = order.price if order.price is not None else self._market_price(order)
            self._fill(order, order.remaining, price, maker=order.type == "LIMIT")
        if order.status == "FILLED":
            raise ApiError(Code.ORDER_FILLED, "the order is FILLED")
        if not order.is_open:
            raise ApiError(Code.ORDER_NOT_FOUND, "order not exist")
        order.status = "CANCELED"
        order.update_time = self.now()
        self._order_event(order, "CANCELED")
        return order

    def cancel_all(self, symbol: str | None) -> list[Order]:
        if symbol is not None:
            self.state.spec(symbol)
        return [self.cancel(o.symbol, o.order_id, None) for o in self.state.open_orders(symbol)]

    # ------------------------------------------------------------------ settings

    def set_leverage(self, symbol: str, side: str, leverage: int) -> None:
        spec = self.state.spec(symbol)
        account = self.state.account
        if account.dual_side and side not in {"LONG", "SHORT"}:
            raise ApiError(Code.MODE_PARAMETER, "In the Hedge mode, the 'side' field can only be set to LONG or SHORT.")
        if not account.dual_side and side != "BOTH":
            raise ApiError(Code.MODE_PARAMETER, "In the One-way mode, the 'side' field can only be set to BOTH.")
        if leverage < 1:
            raise ApiError(Code.INVALID_PARAMETER, "Invalid parameters, err:leverage must be at least 1")
        if leverage > spec.max_leverage:
            raise ApiError(
                Code.LEVERAGE_TOO_HIGH, f"Max leverage for this pair is {spec.max_leverage}, reduce leverage"
            )
        for each in ("LONG", "SHORT") if side == "BOTH" else (side,):
            account.leverage[(symbol, each)] = leverage
        self._config_event(symbol)

    def set_margin_type(self, symbol: str, margin_type: MarginType) -> None:
        self.state.spec(symbol)
        if any(p.symbol == symbol for p in self.state.account.open_positions()) or self.state.open_orders(symbol):
            raise ApiError(Code.MODE_PARAMETER, "the account has positions or pending orders")
        self.state.account.margin_type[symbol] = margin_type
        self._config_event(symbol)

    def set_dual_side(self, dual: bool) -> None:
        if self.state.account.open_positions() or self.state.open_orders():
            raise ApiError(
                Code.MODE_CHANGE_BLOCKED, "there are pending orders or positions, the position mode cannot be changed"
            )
        self.state.account.dual_side = dual

    def _config_event(self, symbol: str) -> None:
        account = self.state.account
        self._emit(
            ConfigEvent(
                symbol,
                self.now(),
                account.leverage_of(symbol, "LONG"),
                account.leverage_of(symbol, "SHORT"),
                account.margin_type.get(symbol, "CROSSED"),
            )
        )
