//! ENTER, EXIT, EXIT_RESIDUAL and CANCEL.

use rust_decimal::Decimal;

use crate::input::{Action, Enter, Intent};
use crate::kernel::{shift, Ctx, Kernel};
use crate::model::{is_free, Book, EventIds, Instrument, Order, OrderFills, OrderKind, OrderLoc};
use crate::num;
use crate::output::{Command, CommandBody, Place, Reject, Step};
use crate::pb::{DiagnosticCode, OrderPurpose, OrderSide, OrderStatus, Side, SlotState, TransitionCause};
use crate::text::Id;

impl Kernel {
    pub(crate) fn on_intent(&mut self, cx: &mut Ctx<'_>, intent: Intent) -> Step {
        let index = self.slot_index(intent.slot)?;
        let slot = self.slots.get(index).ok_or_else(|| Reject::new(DiagnosticCode::SlotNotFound, "slot vanished"))?;
        if let Some(expected) = intent.expected_version {
            if expected != slot.version {
                return Err(Reject::new(
                    DiagnosticCode::VersionConflict,
                    format!("slot {} is at version {}, the intent expected {expected}", slot.id, slot.version),
                ));
            }
        }
        if slot.last_intent_id.as_deref() == Some(&*intent.intent_id) {
            return Err(Reject::new(
                DiagnosticCode::DuplicateIntent,
                format!("intent {} was already applied to slot {}", intent.intent_id, slot.id),
            ));
        }
        let intent_id = intent.intent_id;
        match intent.action {
            Action::Enter(enter) => self.enter(cx, index, &intent_id, *enter)?,
            Action::Exit(kind) => self.exit(cx, index, &intent_id, kind, false)?,
            Action::ExitResidual(kind) => self.exit(cx, index, &intent_id, kind, true)?,
            Action::Cancel(purpose) => self.cancel(cx, index, purpose)?,
        }
        if let Some(slot) = self.slots.get_mut(index) {
            slot.last_intent_id = Some(intent_id);
        }
        Ok(())
    }

    fn instrument(&self, symbol: &Id) -> Step<&Instrument> {
        self.instruments.get(symbol).ok_or_else(|| {
            Reject::new(
                DiagnosticCode::UnknownInstrument,
                format!("no instrument {symbol}: send its InstrumentUpdate first"),
            )
        })
    }

    #[inline(always)]
    fn check_limit_price(instrument: &Instrument, kind: &OrderKind) -> Step {
        match kind {
            OrderKind::Limit { price, .. } if !num::is_multiple(*price, instrument.price_tick) => {
                Err(Self::off_tick(instrument, *price))
            }
            _ => Ok(()),
        }
    }

    #[cold]
    fn off_tick(instrument: &Instrument, price: Decimal) -> Reject {
        Reject::field(
            "intent.limit_price",
            format!(
                "{} is not a multiple of the price tick {} of {}",
                num::to_text(price),
                num::to_text(instrument.price_tick),
                instrument.symbol
            ),
        )
    }

    /// The INVALID_INPUT refusal of an entry whose size or limit price does
    /// not fit the instrument (off the hot path: built only on refusal).
    #[cold]
    fn entry_violations(instrument: &Instrument, enter: &Enter) -> Reject {
        let mut violations = Vec::new();
        if !num::is_multiple(enter.size, instrument.quantity_step) {
            violations.push(crate::output::Violation::new(
                "intent.target_size",
                format!(
                    "{} is not a multiple of the quantity step {}",
                    num::to_text(enter.size),
                    num::to_text(instrument.quantity_step)
                ),
            ));
        } else if num::cmp(enter.size, instrument.min_quantity).is_lt() {
            violations.push(crate::output::Violation::new(
                "intent.target_size",
                format!(
                    "{} is below the minimum quantity {}",
                    num::to_text(enter.size),
                    num::to_text(instrument.min_quantity)
                ),
            ));
        }
        if let Err(reject) = Self::check_limit_price(instrument, &enter.kind) {
            violations.extend(reject.violations);
        }
        Reject::invalid(violations)
    }

    fn enter(&mut self, cx: &mut Ctx<'_>, index: usize, intent_id: &Id, enter: Enter) -> Step {
        let slot = self.slots.get(index).ok_or_else(|| Reject::new(DiagnosticCode::SlotNotFound, "slot vanished"))?;
        if !is_free(slot.state) {
            return Err(Reject::new(
                DiagnosticCode::SlotBusy,
                format!(
                    "slot {} carries trade {} in {}",
                    slot.id,
                    slot.trade_id.as_deref().unwrap_or("-"),
                    slot.state.as_str_name()
                ),
            ));
        }
        let control = &self.control;
        if !control.trading_enabled {
            return Err(Reject::new(
                DiagnosticCode::TradingDisabled,
                "trading is disabled (kill switch): ENTER refused",
            ));
        }
        if control.reduce_only {
            return Err(Reject::new(DiagnosticCode::ReduceOnlyMode, "reduce-only mode: ENTER refused"));
        }
        if !control.allowed_symbols.contains(&enter.symbol) {
            return Err(Reject::new(
                DiagnosticCode::SymbolNotAllowed,
                format!("{} is not in the control's allowed symbols", enter.symbol),
            ));
        }
        let instrument = self.instrument(&enter.symbol)?;
        let size_ok = num::is_multiple(enter.size, instrument.quantity_step)
            && !num::cmp(enter.size, instrument.min_quantity).is_lt();
        if !size_ok || Self::check_limit_price(instrument, &enter.kind).is_err() {
            return Err(Self::entry_violations(instrument, &enter));
        }
        let cap = num::min(control.max_leverage, self.cfg.hard_max_leverage);
        if num::cmp(enter.leverage, cap).is_gt() {
            return Err(Reject::new(
                DiagnosticCode::LeverageAboveLimit,
                format!("leverage {} is above the limit {}", num::to_text(enter.leverage), num::to_text(cap)),
            ));
        }
        let price = match enter.kind {
            OrderKind::Limit { price, .. } => price,
            OrderKind::Market => match enter.reference_price.or_else(|| self.marks.get(&enter.symbol).copied()) {
                Some(price) => price,
                None => {
                    return Err(Reject::new(
                        DiagnosticCode::NoReferencePrice,
                        format!(
                            "no reference_price and no mark price for {}: cannot check the notional limit",
                            enter.symbol
                        ),
                    ))
                }
            },
        };
        let notional = num::mul(enter.size, price).ok_or_else(|| Reject::overflow("entry notional"))?;
        if num::cmp(notional, control.max_notional_per_slot).is_gt() {
            return Err(Reject::new(
                DiagnosticCode::NotionalAboveLimit,
                format!(
                    "notional {} is above the per-slot limit {}",
                    num::to_text(notional),
                    num::to_text(control.max_notional_per_slot)
                ),
            ));
        }
        if self.account.active_slots >= control.active_slot_limit {
            return Err(Reject::new(
                DiagnosticCode::ActiveSlotLimit,
                format!("{} slots are active, the limit is {}", self.account.active_slots, control.active_slot_limit),
            ));
        }
        self.check_ids(1, 1)?;
        // Decided: commit.
        let trade_id = self.new_trade_id();
        let place = Place {
            order_number: self.new_order_number(),
            symbol: enter.symbol.clone(),
            side: if enter.side == Side::Short { OrderSide::Sell } else { OrderSide::Buy },
            kind: enter.kind,
            quantity: enter.size,
            reduce_only: false,
            leverage: enter.leverage,
            purpose: OrderPurpose::Entry,
            position_side: enter.side,
        };
        if let Some(slot) = self.slots.get_mut(index) {
            slot.trade_id = Some(trade_id);
            slot.symbol = Some(enter.symbol);
            slot.side = enter.side;
            slot.leverage = enter.leverage;
            slot.exit_leg_ratios = enter.exit_leg_ratios;
            slot.next_exit_leg = 0;
            slot.book = Book::default();
            slot.entry_intent_id = Some(intent_id.clone());
            slot.open_time = Some(cx.now);
            slot.close_time = None;
            slot.labels = enter.labels;
        }
        self.place_order(cx, index, intent_id, place, 0, TransitionCause::EnterIntent);
        Ok(())
    }

    /// Quantity of the next exit leg (or of the whole remainder).
    #[inline(always)]
    fn exit_quantity(&self, index: usize, residual: bool) -> Step<(Decimal, u32)> {
        let slot = self.slots.get(index).ok_or_else(|| Reject::new(DiagnosticCode::SlotNotFound, "slot vanished"))?;
        let leg = slot.next_exit_leg;
        let last_leg = (leg as usize).saturating_add(1) >= slot.exit_leg_ratios.len();
        if residual || last_leg {
            return Ok((slot.book.position, leg));
        }
        self.exit_leg_quantity(index)
    }

    /// `exit_quantity` of a leg that is not the last: its share of the entry.
    #[inline(never)]
    fn exit_leg_quantity(&self, index: usize) -> Step<(Decimal, u32)> {
        let slot = self.slots.get(index).ok_or_else(|| Reject::new(DiagnosticCode::SlotNotFound, "slot vanished"))?;
        let position = slot.book.position;
        let leg = slot.next_exit_leg;
        let symbol = slot
            .symbol
            .clone()
            .ok_or_else(|| Reject::new(DiagnosticCode::StateConflict, "open slot without symbol"))?;
        let instrument = self.instrument(&symbol)?;
        let ratio = slot.exit_leg_ratios.get(leg as usize).copied().unwrap_or(Decimal::ONE);
        let raw = num::mul(ratio, slot.book.entry_quantity).ok_or_else(|| Reject::overflow("exit leg size"))?;
        let target =
            num::floor_to_step(raw, instrument.quantity_step).ok_or_else(|| Reject::overflow("exit leg size"))?;
        let quantity = num::min(
            num::sub(target, slot.book.leg_filled).ok_or_else(|| Reject::overflow("exit leg size"))?,
            position,
        );
        if num::cmp(quantity, instrument.min_quantity).is_lt() || num::cmp(quantity, Decimal::ZERO).is_le() {
            return Err(Reject::new(
                DiagnosticCode::LegBelowMinQuantity,
                format!(
                    "leg {leg} of slot {} is {} after rounding to the step, below the minimum {}; send EXIT_RESIDUAL to close the rest",
                    slot.id,
                    num::to_text(quantity.max(Decimal::ZERO)),
                    num::to_text(instrument.min_quantity)
                ),
            ));
        }
        Ok((quantity, leg))
    }

    fn exit(&mut self, cx: &mut Ctx<'_>, index: usize, intent_id: &Id, kind: OrderKind, residual: bool) -> Step {
        let slot = self.slots.get(index).ok_or_else(|| Reject::new(DiagnosticCode::SlotNotFound, "slot vanished"))?;
        match slot.state {
            SlotState::PositionOpen => {}
            SlotState::Idle | SlotState::Closed | SlotState::Unspecified => {
                return Err(Reject::new(
                    DiagnosticCode::NoOpenPosition,
                    format!("slot {} has no open position ({})", slot.id, slot.state.as_str_name()),
                ))
            }
            SlotState::EntryPending | SlotState::EntryWorking | SlotState::EntryCancelling => {
                return Err(Reject::new(
                    DiagnosticCode::EntryInProgress,
                    format!(
                        "slot {} entry order is still working ({}); cancel it first",
                        slot.id,
                        slot.state.as_str_name()
                    ),
                ))
            }
            SlotState::ExitPending | SlotState::ExitWorking | SlotState::ExitCancelling => {
                return Err(Reject::new(
                    DiagnosticCode::ExitInProgress,
                    format!("slot {} already has an exit order working ({})", slot.id, slot.state.as_str_name()),
                ))
            }
        }
        let symbol = slot
            .symbol
            .clone()
            .ok_or_else(|| Reject::new(DiagnosticCode::StateConflict, "open slot without symbol"))?;
        let side = slot.side;
        let leverage = slot.leverage;
        Self::check_limit_price(self.instrument(&symbol)?, &kind)?;
        let (quantity, leg) = self.exit_quantity(index, residual)?;
        self.check_ids(1, 0)?;
        let place = Place {
            order_number: self.new_order_number(),
            symbol,
            side: if side == Side::Short { OrderSide::Buy } else { OrderSide::Sell },
            kind,
            quantity,
            reduce_only: true,
            leverage,
            purpose: OrderPurpose::Exit,
            position_side: side,
        };
        let (exit_leg, cause) =
            if residual { (u32::MAX, TransitionCause::ExitResidualIntent) } else { (leg, TransitionCause::ExitIntent) };
        self.place_order(cx, index, intent_id, place, exit_leg, cause);
        Ok(())
    }

    /// Commits a decided placement: the slot's new active order, its index
    /// entry, the PlaceOrder command and the move to *_PENDING.
    fn place_order(
        &mut self,
        cx: &mut Ctx<'_>,
        index: usize,
        intent_id: &Id,
        place: Place,
        exit_leg: u32,
        cause: TransitionCause,
    ) {
        let (to, purpose) = match place.purpose {
            OrderPurpose::Exit => (SlotState::ExitPending, OrderPurpose::Exit),
            _ => (SlotState::EntryPending, OrderPurpose::Entry),
        };
        let number = place.order_number;
        let Kernel { slots, orders, account, cfg, .. } = self;
        let Some(slot) = slots.get_mut(index) else { return };
        // Written straight into the slot: no stack copy of the large Order.
        slot.order = Some(Order {
            number,
            venue_order_id: None,
            purpose,
            symbol: place.symbol.clone(),
            side: place.side,
            kind: place.kind,
            quantity: place.quantity,
            reduce_only: place.reduce_only,
            status: OrderStatus::PendingNew,
            fills: OrderFills::default(),
            venue_final: false,
            cancel_requested: false,
            exit_leg,
            intent_id: intent_id.clone(),
            seen_event_ids: EventIds::default(),
            create_sequence: cx.seq,
            create_time: cx.now,
            last_exchange_time: None,
            queries_sent: 0,
            cancels_sent: 0,
        });
        let (slot_id, trade_id) = (slot.id, slot.trade_id.clone());
        orders.insert(number, OrderLoc::Live(slot_id));
        cx.out.commands.push(Command { number: 0, slot: slot_id, trade_id, body: CommandBody::Place(place) });
        // The slot in hand: no second lookup.
        shift(cx, cfg, account, slot, to, cause, Some(number));
    }

    fn cancel(&mut self, cx: &mut Ctx<'_>, index: usize, purpose: Option<OrderPurpose>) -> Step {
        let slot = self.slots.get(index).ok_or_else(|| Reject::new(DiagnosticCode::SlotNotFound, "slot vanished"))?;
        let missing = |code: DiagnosticCode, what: &str| {
            Reject::new(code, format!("slot {} has no working {what} order ({})", slot.id, slot.state.as_str_name()))
        };
        let Some(order) = slot.order.as_ref() else {
            return Err(match purpose {
                Some(OrderPurpose::Entry) => missing(DiagnosticCode::NoActiveEntryOrder, "entry"),
                Some(OrderPurpose::Exit) => missing(DiagnosticCode::NoActiveExitOrder, "exit"),
                _ => missing(DiagnosticCode::NoActiveOrder, "entry or exit"),
            });
        };
        match (purpose, order.purpose) {
            (Some(OrderPurpose::Entry), OrderPurpose::Exit) => {
                return Err(missing(DiagnosticCode::NoActiveEntryOrder, "entry"));
            }
            (Some(OrderPurpose::Exit), OrderPurpose::Entry) => {
                return Err(missing(DiagnosticCode::NoActiveExitOrder, "exit"));
            }
            _ => {}
        }
        if order.cancel_requested {
            return Err(Reject::new(
                DiagnosticCode::CancelAlreadyPending,
                format!("a cancel of {} is already pending", order.client_order_id(&self.cfg.kernel_id)),
            ));
        }
        self.request_cancel(cx, index, TransitionCause::CancelIntent);
        Ok(())
    }
}
