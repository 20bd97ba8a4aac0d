//! The kernel: state plus `step`. Every handler first decides (and may
//! reject, leaving the state untouched), then commits; commit code cannot
//! fail. Time comes only from inputs.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use rustc_hash::FxHashMap;

use crate::input::{Input, Payload};
use crate::model::{
    is_free, is_waiting, Account, Config, Control, Instrument, Nanos, OrderKind, OrderLoc, RetiredRing, Slot,
};
use crate::num;
use crate::output::{Anomaly, Command, CommandBody, LedgerEntry, OrderRef, Output, Reject, Step, Transition};
use crate::pb::{AnomalyKind, DiagnosticCode, LedgerEntryKind, QueryReason, Side, SlotState, TransitionCause};
use crate::text::Id;

/// Per-step context: the sequence being applied, the (monotonic) time and
/// the output being built.
pub(crate) struct Ctx<'a> {
    pub seq: u64,
    pub now: Nanos,
    pub out: &'a mut Output,
}

/// A capital change: the amount and the capital before and after it (the
/// caller computed `after` with its overflow check).
#[derive(Clone, Copy)]
pub(crate) struct Change {
    pub amount: Decimal,
    pub before: Decimal,
    pub after: Decimal,
}

/// What a ledger entry names; which ids exist depends on its cause.
pub(crate) struct Origin {
    pub slot: Option<u32>,
    pub trade_id: Option<Id>,
    pub order_number: Option<u64>,
    pub venue_event_id: Option<Id>,
    pub symbol: Option<Id>,
}

/// Books one ledger entry: the one place the ledger sequence advances.
#[inline]
pub(crate) fn push_ledger(
    cx: &mut Ctx<'_>,
    account: &mut Account,
    kind: LedgerEntryKind,
    change: Change,
    origin: Origin,
) {
    account.ledger_sequence = account.ledger_sequence.saturating_add(1);
    cx.out.ledger.push(LedgerEntry {
        ledger_sequence: account.ledger_sequence,
        kind,
        amount: change.amount,
        capital_before: change.before,
        capital_after: change.after,
        input_sequence: cx.seq,
        time: cx.now,
        slot: origin.slot,
        trade_id: origin.trade_id,
        order_number: origin.order_number,
        venue_event_id: origin.venue_event_id,
        symbol: origin.symbol,
    });
    cx.out.account_changed = true;
}

/// The reused output and encoding buffers: not state (never compared, hashed
/// or snapshotted). The output is boxed so a step takes it out and puts it
/// back as one pointer (moving an `Output` is ~200 bytes plus an empty one
/// built and dropped); it is `None` only while a step holds it.
#[derive(Clone, Debug, Default)]
pub(crate) struct Scratch(
    pub(crate) Option<Box<Output>>,
    pub(crate) Vec<u8>,
    pub(crate) crate::ids::IdText,
    pub(crate) crate::wire::OrderIds,
);

/// What `Kernel::output` shows before the first step: `Output::default()`.
static NO_OUTPUT: Output = Output::with_code(0, DiagnosticCode::Unspecified);

impl Scratch {
    /// The reused output, taken out for a step (`put_output` returns it).
    #[inline]
    pub(crate) fn take_output(&mut self) -> Box<Output> {
        self.0.take().unwrap_or_default()
    }

    #[inline]
    pub(crate) fn put_output(&mut self, out: Box<Output>) {
        self.0 = Some(out);
    }

    #[inline]
    pub(crate) fn output(&self) -> &Output {
        self.0.as_deref().unwrap_or(&NO_OUTPUT)
    }
}

impl PartialEq for Scratch {
    fn eq(&self, _: &Scratch) -> bool {
        true
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Kernel {
    pub(crate) cfg: Config,
    pub(crate) control: Control,
    pub(crate) instruments: BTreeMap<Id, Instrument>,
    pub(crate) account: Account,
    pub(crate) slots: Vec<Slot>,
    /// Orders by number (see `model::order_number`).
    pub(crate) orders: FxHashMap<u64, OrderLoc>,
    /// Venue order id -> order number.
    pub(crate) venue_ids: FxHashMap<Id, u64>,
    pub(crate) retired: RetiredRing,
    /// Retirement number of `retired[0]`.
    pub(crate) retired_base: u64,
    pub(crate) last_sequence: u64,
    pub(crate) clock: Option<Nanos>,
    pub(crate) next_trade: u64,
    pub(crate) next_order: u64,
    pub(crate) marks: BTreeMap<Id, Decimal>,
    pub(crate) funding_watermarks: BTreeMap<Id, Nanos>,
    pub(crate) scratch: Scratch,
}

impl Kernel {
    /// A fresh kernel. `cfg` must come from `decode::config` (validated).
    pub fn new(cfg: Config) -> Kernel {
        let slots = (0..cfg.slot_count).map(Slot::new).collect();
        let mut control = cfg.initial_control.clone();
        control.version = 1;
        Kernel {
            account: Account {
                initial_capital: cfg.initial_capital,
                capital: cfg.initial_capital,
                realized_pnl: Decimal::ZERO,
                fees: Decimal::ZERO,
                funding: Decimal::ZERO,
                adjustments: Decimal::ZERO,
                ledger_sequence: 0,
                trades_closed: 0,
                active_slots: 0,
            },
            control,
            instruments: BTreeMap::new(),
            slots,
            orders: FxHashMap::default(),
            venue_ids: FxHashMap::default(),
            retired: RetiredRing::default(),
            retired_base: 0,
            last_sequence: 0,
            clock: None,
            next_trade: 1,
            next_order: 1,
            marks: BTreeMap::new(),
            funding_watermarks: BTreeMap::new(),
            scratch: Scratch::default(),
            cfg,
        }
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }
    pub fn control(&self) -> &Control {
        &self.control
    }
    pub fn account(&self) -> &Account {
        &self.account
    }
    pub fn slots(&self) -> &[Slot] {
        &self.slots
    }
    pub fn slot(&self, id: u32) -> Option<&Slot> {
        self.slots.get(id as usize)
    }
    pub fn last_sequence(&self) -> u64 {
        self.last_sequence
    }
    pub fn clock(&self) -> Option<Nanos> {
        self.clock
    }
    pub fn instruments(&self) -> &BTreeMap<Id, Instrument> {
        &self.instruments
    }
    pub fn marks(&self) -> &BTreeMap<Id, Decimal> {
        &self.marks
    }
    pub fn retired(&self) -> &RetiredRing {
        &self.retired
    }

    /// Applies one input and returns what it caused. A rejected input leaves
    /// every bit of state as it was.
    pub fn step(&mut self, input: Input) -> &Output {
        self.apply(input);
        self.scratch.output()
    }

    /// The output of the last `apply`/`step`.
    pub fn output(&self) -> &Output {
        self.scratch.output()
    }

    /// `step` without the borrow of the result (see `output`).
    pub fn apply(&mut self, input: Input) {
        let mut out = self.scratch.take_output();
        self.step_into(input, &mut out);
        self.scratch.put_output(out);
    }

    /// `step` writing into a caller-owned output (reused across calls, so a
    /// step allocates nothing for its outputs).
    pub fn step_into(&mut self, input: Input, out: &mut Output) {
        if let Err(reject) = self.apply_into(input, out) {
            Self::reject_into(out, self.last_sequence, reject);
        }
    }

    pub(crate) fn reject_into(out: &mut Output, last_sequence: u64, reject: Reject) {
        out.reset(last_sequence);
        out.code = reject.code;
        out.message = reject.message;
        out.violations = reject.violations;
        out.anomalies = reject.anomalies;
    }

    fn apply_into(&mut self, input: Input, out: &mut Output) -> Step {
        let next = self
            .last_sequence
            .checked_add(1)
            .ok_or_else(|| Reject::new(DiagnosticCode::SequenceMismatch, "sequence space exhausted"))?;
        if input.sequence != 0 && input.sequence != next {
            return Err(Reject::new(
                DiagnosticCode::SequenceMismatch,
                format!("input sequence {} is not the next sequence {next}", input.sequence),
            ));
        }
        let now = match self.clock {
            Some(clock) if input.time < clock => clock,
            _ => input.time,
        };
        out.reset(next);
        let mut cx = Ctx { seq: next, now, out };
        let result = match input.payload {
            Payload::Intent(intent) => self.on_intent(&mut cx, intent),
            Payload::Venue(event) => self.on_venue_event(&mut cx, event),
            Payload::Mark(mark) => self.on_mark(&mut cx, mark.symbol, mark.price),
            Payload::Control(change) => self.on_control(&mut cx, change),
            Payload::Reconcile(reconcile) => self.on_reconcile(&mut cx, reconcile),
            Payload::Timer => {
                self.on_timer(&mut cx);
                Ok(())
            }
            Payload::Instruments(list) => {
                self.on_instruments(list);
                Ok(())
            }
            Payload::Funding(funding) => self.on_funding(&mut cx, funding),
        };
        result?;
        if let Some(clock) = self.clock {
            if input.time < clock {
                cx.out.anomalies.push(Anomaly::new(
                    AnomalyKind::ClockRegression,
                    format!("input time {} ns is before the kernel clock {clock} ns; clock kept", input.time),
                ));
            }
        }
        self.last_sequence = next;
        self.clock = Some(now);
        Ok(())
    }

    pub(crate) fn slot_index(&self, id: u32) -> Step<usize> {
        let index = id as usize;
        if index < self.slots.len() {
            Ok(index)
        } else {
            Err(Reject::new(
                DiagnosticCode::SlotNotFound,
                format!("slot {id} does not exist (slot_count {})", self.slots.len()),
            ))
        }
    }

    // ----- commit helpers (cannot fail) -------------------------------------------------------

    /// Moves a slot to `to`, recording the true previous state.
    pub(crate) fn transition(
        &mut self,
        cx: &mut Ctx<'_>,
        index: usize,
        to: SlotState,
        cause: TransitionCause,
        order_number: Option<u64>,
    ) {
        let Kernel { slots, account, cfg, .. } = self;
        let Some(slot) = slots.get_mut(index) else { return };
        shift(cx, cfg, account, slot, to, cause, order_number);
    }

    /// A change of a slot that is not a state transition (a fill, a learned
    /// venue id): bump the version, mark it changed.
    pub(crate) fn touch_slot(&mut self, cx: &mut Ctx<'_>, index: usize) {
        if let Some(slot) = self.slots.get_mut(index) {
            touch(cx, slot);
        }
    }

    /// Sets the slot's deadline from its state: every waiting state has one.
    pub(crate) fn rearm_deadline(&mut self, cx: &Ctx<'_>, index: usize) {
        let Kernel { slots, cfg, .. } = self;
        if let Some(slot) = slots.get_mut(index) {
            rearm(cfg, slot, cx.now);
        }
    }

    /// Books one ledger entry of a funding or reconcile input (no order):
    /// the trade id comes from the slot, if there is one.
    pub(crate) fn book(
        &mut self,
        cx: &mut Ctx<'_>,
        kind: LedgerEntryKind,
        change: Change,
        slot: Option<u32>,
        venue_event_id: Option<&Id>,
        symbol: Option<&Id>,
    ) {
        let trade_id = slot.and_then(|s| self.slots.get(s as usize)).and_then(|s| s.trade_id.clone());
        let origin = Origin {
            slot,
            trade_id,
            order_number: None,
            venue_event_id: venue_event_id.cloned(),
            symbol: symbol.cloned(),
        };
        push_ledger(cx, &mut self.account, kind, change, origin);
    }

    /// Emits a command about the slot's active order.
    pub(crate) fn order_command(&mut self, cx: &mut Ctx<'_>, index: usize, query: Option<QueryReason>) {
        let Some(slot) = self.slots.get_mut(index) else { return };
        let Some(order) = slot.order.as_mut() else { return };
        let reference = OrderRef {
            order_number: order.number,
            venue_order_id: order.venue_order_id.clone(),
            symbol: order.symbol.clone(),
        };
        let (number, body) = match query {
            Some(reason) => {
                order.queries_sent = order.queries_sent.saturating_add(1);
                (order.queries_sent, CommandBody::Query(reference, reason))
            }
            None => {
                order.cancels_sent = order.cancels_sent.saturating_add(1);
                (order.cancels_sent, CommandBody::Cancel(reference))
            }
        };
        cx.out.commands.push(Command { number, slot: slot.id, trade_id: slot.trade_id.clone(), body });
        cx.out.touch(slot.id);
    }

    /// Fails (before anything is committed) if `orders` order ids and
    /// `trades` trade ids cannot be allocated.
    pub(crate) fn check_ids(&self, orders: u64, trades: u64) -> Step {
        let ok = self.next_order.checked_add(orders).is_some() && self.next_trade.checked_add(trades).is_some();
        if ok {
            Ok(())
        } else {
            Err(Reject::overflow("id counter"))
        }
    }

    /// Allocates an order number (its client order id is "<kernel_id>-<n>",
    /// formatted where it leaves the kernel); call `check_ids` first.
    pub(crate) fn new_order_number(&mut self) -> u64 {
        let number = self.next_order;
        self.next_order = number.saturating_add(1);
        number
    }

    /// Allocates a trade id, "<kernel_id>-t<n>"; call `check_ids` first.
    pub(crate) fn new_trade_id(&mut self) -> Id {
        let number = self.next_trade;
        self.next_trade = number.saturating_add(1);
        crate::ids::numbered_id(&mut self.scratch.2.trade, &self.cfg.kernel_id, "-t", number)
    }

    /// Last mark price of the slot's symbol.
    pub fn slot_mark(&self, slot: &Slot) -> Option<Decimal> {
        slot.symbol.as_ref().and_then(|s| self.marks.get(s)).copied()
    }

    /// Unrealized PnL of a slot at its symbol's last mark:
    /// side x (mark x size - cost basis). A valuation, never booked: derived on
    /// read and rounded to 28 significant digits if it must be; `None` only if
    /// it does not fit at all.
    pub fn slot_unrealized(&self, slot: &Slot) -> Option<Decimal> {
        let Some(mark) = self.slot_mark(slot) else { return Some(Decimal::ZERO) };
        if slot.book.position.is_zero() {
            return Some(Decimal::ZERO);
        }
        let value = mark.checked_mul(slot.book.position)?;
        match slot.side {
            Side::Short => slot.book.cost_basis.checked_sub(value),
            _ => value.checked_sub(slot.book.cost_basis),
        }
    }

    /// Sum of the slots' unrealized PnL.
    pub fn account_unrealized(&self) -> Option<Decimal> {
        self.slots.iter().try_fold(Decimal::ZERO, |sum, slot| sum.checked_add(self.slot_unrealized(slot)?))
    }

    // ----- small inputs -----------------------------------------------------------------------

    /// A new mark price. Unrealized PnL is derived from it on read, so this
    /// is one map write whatever the number of slots.
    fn on_mark(&mut self, cx: &mut Ctx<'_>, symbol: Id, price: Decimal) -> Step {
        if !self.instruments.contains_key(&symbol) {
            return Err(Reject::new(
                DiagnosticCode::UnknownInstrument,
                format!("no instrument {symbol}: send its InstrumentUpdate first"),
            ));
        }
        match self.marks.get_mut(&symbol) {
            Some(mark) => *mark = price,
            None => {
                self.marks.insert(symbol.clone(), price);
            }
        }
        cx.out.revalued_symbol = Some(symbol);
        cx.out.account_changed = true;
        Ok(())
    }

    fn on_instruments(&mut self, list: Vec<Instrument>) {
        for instrument in list {
            self.instruments.insert(instrument.symbol.clone(), instrument);
        }
    }

    fn on_funding(&mut self, cx: &mut Ctx<'_>, funding: crate::input::Funding) -> Step {
        if let Some(mark) = self.funding_watermarks.get(&funding.symbol) {
            if funding.time <= *mark {
                return Err(Reject::new(
                    DiagnosticCode::DuplicateFunding,
                    format!("funding for {} at or before {mark} ns is already booked", funding.symbol),
                ));
            }
        }
        let before = self.account.capital;
        let after = num::add(before, funding.amount).ok_or_else(|| Reject::overflow("capital"))?;
        let total = num::add(self.account.funding, funding.amount).ok_or_else(|| Reject::overflow("funding"))?;
        self.funding_watermarks.insert(funding.symbol.clone(), funding.time);
        self.account.capital = after;
        self.account.funding = total;
        let change = Change { amount: funding.amount, before, after };
        self.book(cx, LedgerEntryKind::Funding, change, None, Some(&funding.funding_id), Some(&funding.symbol));
        Ok(())
    }

    /// Queries every order whose deadline has passed, with doubling backoff.
    fn on_timer(&mut self, cx: &mut Ctx<'_>) {
        for index in 0..self.slots.len() {
            let Some(slot) = self.slots.get(index) else { continue };
            let due = matches!(slot.deadline, Some(deadline) if deadline <= cx.now);
            if !due {
                continue;
            }
            let anomaly = Anomaly::new(
                AnomalyKind::DeadlineExpired,
                format!("slot {} waited too long in {}; querying the venue", slot.id, slot.state.as_str_name()),
            )
            .slot(slot.id, slot.trade_id.as_ref());
            let anomaly = match slot.order.as_ref() {
                Some(order) => anomaly.order(&order.client_order_id(&self.cfg.kernel_id)),
                None => anomaly,
            };
            cx.out.anomalies.push(anomaly);
            self.order_command(cx, index, Some(QueryReason::Deadline));
            if let Some(slot) = self.slots.get_mut(index) {
                slot.deadline_misses = slot.deadline_misses.saturating_add(1);
            }
            self.rearm_deadline(cx, index);
        }
    }

    /// Sends a cancel for the slot's active order and moves it to *_CANCELLING.
    pub(crate) fn request_cancel(&mut self, cx: &mut Ctx<'_>, index: usize, cause: TransitionCause) {
        let Some(slot) = self.slots.get_mut(index) else { return };
        let to = match slot.state {
            SlotState::EntryPending | SlotState::EntryWorking => SlotState::EntryCancelling,
            SlotState::ExitPending | SlotState::ExitWorking => SlotState::ExitCancelling,
            _ => return,
        };
        let Some(order) = slot.order.as_mut() else { return };
        order.cancel_requested = true;
        let number = order.number;
        slot.deadline_misses = 0;
        self.order_command(cx, index, None);
        self.transition(cx, index, to, cause, Some(number));
    }

    /// Reject helper for handlers that find a venue event contradicting state.
    pub(crate) fn conflict(kind: AnomalyKind, code: DiagnosticCode, message: String, reconcile: bool) -> Reject {
        let anomaly = Anomaly::new(kind, message.clone());
        let anomaly = if reconcile { anomaly.reconcile() } else { anomaly };
        Reject::new(code, message).with(anomaly)
    }
}

/// `Kernel::transition` on a slot in hand.
#[inline(always)]
pub(crate) fn shift(
    cx: &mut Ctx<'_>,
    cfg: &Config,
    account: &mut Account,
    slot: &mut Slot,
    to: SlotState,
    cause: TransitionCause,
    order_number: Option<u64>,
) {
    let from = slot.state;
    slot.state = to;
    slot.deadline_misses = 0;
    slot.version = slot.version.saturating_add(1);
    slot.update_time = Some(cx.now);
    cx.out.touch(slot.id);
    cx.out.transitions.push(Transition {
        slot: slot.id,
        trade_id: slot.trade_id.clone(),
        from,
        to,
        cause,
        sequence: cx.seq,
        order_number,
        slot_version: slot.version,
    });
    match (is_free(from), is_free(to)) {
        (true, false) => {
            account.active_slots = account.active_slots.saturating_add(1);
            cx.out.account_changed = true;
        }
        (false, true) => {
            account.active_slots = account.active_slots.saturating_sub(1);
            cx.out.account_changed = true;
        }
        _ => {}
    }
    rearm(cfg, slot, cx.now);
}

/// `Kernel::rearm_deadline` on a slot in hand.
#[inline]
pub(crate) fn rearm(cfg: &Config, slot: &mut Slot, now: Nanos) {
    if !is_waiting(slot.state) {
        slot.deadline = None;
        slot.deadline_misses = 0;
        return;
    }
    let base = match (slot.state, slot.order.as_ref().map(|o| o.kind)) {
        (SlotState::EntryPending | SlotState::ExitPending, _) => cfg.ack_timeout,
        (SlotState::EntryCancelling | SlotState::ExitCancelling, _) => cfg.cancel_timeout,
        (_, Some(OrderKind::Limit { .. })) => cfg.resting_check_interval,
        _ => cfg.fill_timeout,
    };
    let factor = 1_i64.checked_shl(slot.deadline_misses.min(20)).unwrap_or(i64::MAX);
    let wait = base.saturating_mul(factor).min(cfg.max_query_backoff.max(base));
    slot.deadline = Some(now.saturating_add(wait));
}

/// `Kernel::touch_slot` on a slot in hand.
#[inline]
pub(crate) fn touch(cx: &mut Ctx<'_>, slot: &mut Slot) {
    slot.version = slot.version.saturating_add(1);
    slot.update_time = Some(cx.now);
    cx.out.touch(slot.id);
}
