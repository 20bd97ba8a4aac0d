//! The model checker's alphabet (ACCEPTANCE.md): enter, exit, cancel, ack,
//! reject, partial, full, cancel-ack, cancel-reject, duplicate, stale,
//! late-fill, mark, timer, plus cancel-gap (a cancel report that overtakes a
//! fill report); `WITH_UNKNOWN` adds an UNKNOWN status report. Each symbol becomes the concrete input a policy or
//! venue would send in the current state; `Explorer::apply` steps it and
//! checks every property after every step.

use std::collections::BTreeSet;

use rust_decimal::Decimal;

use super::{d, id, Driver, BTC, SECOND};
use crate::input::{Action, Fill, Payload, VenueEvent};
use crate::model::{is_free, is_waiting, OrderKind};
use crate::num;
use crate::pb::{Side, SlotState, TimeInForce, VenueEventKind};
use crate::text::Id;
use crate::Kernel;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Symbol {
    Enter,
    Exit,
    Cancel,
    Ack,
    Reject,
    Partial,
    Full,
    CancelAck,
    /// A CANCELLED report that overtakes a fill report: it counts a fill the
    /// kernel has not seen yet (that fill arrives by `Partial`/`Full` later).
    CancelGap,
    CancelReject,
    Duplicate,
    Stale,
    LateFill,
    Mark,
    Timer,
    /// An UNKNOWN status report for the slot's order. Not in `ALPHABET` (the
    /// golden digest and `make verify` enumerate that one): `WITH_UNKNOWN`.
    UnknownStatus,
}

pub const ALPHABET: [Symbol; 15] = [
    Symbol::Enter,
    Symbol::Exit,
    Symbol::Cancel,
    Symbol::Ack,
    Symbol::Reject,
    Symbol::Partial,
    Symbol::Full,
    Symbol::CancelAck,
    Symbol::CancelGap,
    Symbol::CancelReject,
    Symbol::Duplicate,
    Symbol::Stale,
    Symbol::LateFill,
    Symbol::Mark,
    Symbol::Timer,
];

/// `ALPHABET` plus the UNKNOWN status report (tests/unknown_status.rs explores it).
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)] // const evaluation: a bad index is a build error
pub const WITH_UNKNOWN: [Symbol; 16] = {
    let mut all = [Symbol::UnknownStatus; 16];
    let mut i = 0;
    while i < ALPHABET.len() {
        all[i] = ALPHABET[i];
        i += 1;
    }
    all
};

/// A driver plus what the properties need to remember across steps.
#[derive(Clone)]
pub struct Explorer {
    pub drv: Driver,
    /// Orders of each slot, oldest first (including retired ones).
    orders: Vec<Vec<Id>>,
    last_event: Option<VenueEvent>,
    applied_events: BTreeSet<Id>,
    marks: u32,
    pub steps: u64,
    pub accepted: u64,
}

impl Explorer {
    pub fn new(slots: u32) -> Explorer {
        let mut cfg = super::config(slots);
        cfg.retired_order_memory = 16;
        let mut drv = Driver::with_config(cfg);
        let out = drv.mark(BTC, "100");
        assert!(out.accepted(), "{out:?}");
        Explorer {
            drv,
            orders: vec![Vec::new(); slots as usize],
            last_event: None,
            applied_events: BTreeSet::new(),
            marks: 0,
            steps: 0,
            accepted: 0,
        }
    }

    pub fn kernel(&self) -> &Kernel {
        &self.drv.kernel
    }

    fn active(&self, slot: u32) -> Option<crate::model::Order> {
        self.drv.kernel.slot(slot).and_then(|s| s.order.clone())
    }

    /// The order an event symbol talks about: the active one, else the last one.
    fn target(&self, slot: u32) -> Option<Id> {
        self.active(slot)
            .map(|o| o.client_order_id(&self.drv.kernel.config().kernel_id))
            .or_else(|| self.orders[slot as usize].last().cloned())
    }

    fn event(&mut self, slot: u32, kind: VenueEventKind) -> Option<VenueEvent> {
        let cid = self.target(slot)?;
        let order = self.active(slot).filter(|o| o.client_order_id(&self.drv.kernel.config().kernel_id) == cid);
        let filled = order.as_ref().map_or(Decimal::ZERO, |o| o.fills.filled);
        let (fill, cumulative) = match kind {
            VenueEventKind::PartialFill | VenueEventKind::Fill => {
                let remaining =
                    order.as_ref().map_or(d("0.5"), |o| num::sub(o.quantity, o.fills.filled).unwrap_or(Decimal::ZERO));
                let quantity = if kind == VenueEventKind::Fill {
                    remaining
                } else {
                    // Partial: a quarter of the order, or what is left if less.
                    order
                        .as_ref()
                        .map_or(d("0.25"), |o| num::div_round(o.quantity, d("4"), 3).unwrap_or(remaining))
                        .min(remaining)
                };
                if quantity <= Decimal::ZERO {
                    return None;
                }
                let price = if self.marks % 2 == 0 { d("100") } else { d("103.7") };
                let cumulative = num::add(filled, quantity)?;
                (Some(Fill { quantity, price, fee: d("0.013") }), Some(cumulative))
            }
            VenueEventKind::Cancelled | VenueEventKind::Expired => (None, Some(filled)),
            _ => (None, None),
        };
        Some(self.drv.event(&cid, kind, fill, cumulative))
    }

    fn payload(&mut self, slot: u32, symbol: Symbol) -> Option<Payload> {
        let intent = |action: Action| -> Payload {
            Payload::Intent(crate::input::Intent { intent_id: id("x"), slot, expected_version: None, action })
        };
        let payload = match symbol {
            Symbol::Enter => {
                let kind = OrderKind::Limit { price: d("100"), tif: TimeInForce::Gtc };
                let spec = Driver::enter_spec(
                    BTC,
                    if self.steps % 2 == 0 { Side::Long } else { Side::Short },
                    "1",
                    kind,
                    &["0.5", "0.5"],
                );
                intent(Action::Enter(Box::new(spec)))
            }
            Symbol::Exit => intent(Action::Exit(OrderKind::Market)),
            Symbol::Cancel => intent(Action::Cancel(None)),
            Symbol::Ack => Payload::Venue(self.event(slot, VenueEventKind::OrderAccepted)?),
            Symbol::Reject => Payload::Venue(self.event(slot, VenueEventKind::OrderRejected)?),
            Symbol::Partial => Payload::Venue(self.event(slot, VenueEventKind::PartialFill)?),
            Symbol::Full => Payload::Venue(self.event(slot, VenueEventKind::Fill)?),
            Symbol::CancelAck => Payload::Venue(self.event(slot, VenueEventKind::Cancelled)?),
            Symbol::CancelGap => {
                let order = self.active(slot)?;
                let unseen = num::sub(order.quantity, order.fills.filled)?.min(d("0.25"));
                if unseen <= Decimal::ZERO {
                    return None;
                }
                let mut event = self.event(slot, VenueEventKind::Cancelled)?;
                event.cumulative = Some(num::add(order.fills.filled, unseen)?);
                Payload::Venue(event)
            }
            Symbol::CancelReject => Payload::Venue(self.event(slot, VenueEventKind::CancelRejected)?),
            Symbol::Duplicate => Payload::Venue(self.last_event.clone()?),
            Symbol::Stale => {
                // An ack for the slot's previous order.
                let orders = &self.orders[slot as usize];
                let cid = orders.len().checked_sub(2).and_then(|i| orders.get(i)).cloned()?;
                Payload::Venue(self.drv.event(&cid, VenueEventKind::OrderAccepted, None, None))
            }
            Symbol::LateFill => {
                let orders = &self.orders[slot as usize];
                let active = self.active(slot).map(|o| o.client_order_id(&self.drv.kernel.config().kernel_id));
                let cid = orders.iter().rev().find(|c| Some((*c).clone()) != active).cloned()?;
                let fill = Fill { quantity: d("0.1"), price: d("101"), fee: d("0") };
                Payload::Venue(self.drv.event(&cid, VenueEventKind::Fill, Some(fill), Some(d("5"))))
            }
            Symbol::Mark => {
                self.marks += 1;
                Payload::Mark(crate::input::Mark {
                    symbol: id(BTC),
                    price: if self.marks % 2 == 0 { d("97.5") } else { d("104.25") },
                })
            }
            Symbol::Timer => {
                self.drv.advance(30 * SECOND);
                Payload::Timer
            }
            Symbol::UnknownStatus => {
                let mut event = self.event(slot, VenueEventKind::Unknown)?;
                event.reason = "SOMETHING_NEW".into();
                Payload::Venue(event)
            }
        };
        Some(payload)
    }

    /// Steps one symbol on `slot` and checks every property. Symbols with no
    /// meaning in the current state (e.g. a duplicate before any event) are
    /// skipped and return Ok(false).
    pub fn apply(&mut self, slot: u32, symbol: Symbol) -> Result<bool, String> {
        let Some(mut payload) = self.payload(slot, symbol) else { return Ok(false) };
        if let Payload::Intent(intent) = &mut payload {
            intent.intent_id = id(&format!("x{}", self.steps));
        }
        let before = self.drv.kernel.clone();
        let event = match &payload {
            Payload::Venue(event) => Some(event.clone()),
            _ => None,
        };
        let out = self.drv.step(payload);
        self.steps += 1;
        let k = &self.drv.kernel;
        if out.accepted() != (out.code == crate::pb::DiagnosticCode::Ok) {
            return Err(format!("accepted {} with code {:?}", out.accepted(), out.code));
        }
        if !out.accepted() {
            if *k != before {
                return Err(format!("rejected {symbol:?} ({:?}) changed state", out.code));
            }
            if !out.transitions.is_empty() || !out.commands.is_empty() || !out.ledger.is_empty() {
                return Err(format!("rejected {symbol:?} emitted outputs"));
            }
        } else {
            self.accepted += 1;
        }
        k.check_invariants().map_err(|e| format!("after {symbol:?}: {e}"))?;
        // No event is applied twice.
        if let Some(event) = event {
            if out.accepted() && !self.applied_events.insert(event.event_id.clone()) {
                return Err(format!("event {} applied twice", event.event_id));
            }
            self.last_event = Some(event);
        }
        // Terminal slots never change except by a new ENTER.
        for (b, a) in before.slots().iter().zip(k.slots()) {
            let entered = out.transitions.iter().any(|t| t.slot == b.id && t.from == SlotState::Closed);
            if b.state == SlotState::Closed && !entered && b != a {
                return Err(format!("closed slot {} changed on {symbol:?}", b.id));
            }
        }
        // Track order ids for stale and late events.
        for (index, slot_state) in k.slots().iter().enumerate() {
            if let Some(order) = &slot_state.order {
                let list = &mut self.orders[index];
                let cid = order.client_order_id(&k.config().kernel_id);
                if list.last() != Some(&cid) {
                    list.push(cid);
                }
            }
        }
        // No stuck slot: the venue answering (fills) and an exit always lead back to free.
        for index in 0..k.slots().len() {
            check_progress(k, index as u32)?;
        }
        Ok(true)
    }
}

/// Every slot has a path back to a free state: its active order resolves by a
/// fill or a cancel, and an open position closes by EXIT_RESIDUAL + fill.
fn check_progress(kernel: &Kernel, slot: u32) -> Result<(), String> {
    let mut drv = Driver::from_kernel(kernel.clone(), kernel.clock().unwrap_or(super::T0));
    for _ in 0..6 {
        let Some(state) = drv.kernel.slot(slot).map(|s| s.state) else { return Err("slot vanished".into()) };
        if is_free(state) {
            return Ok(());
        }
        let out = if is_waiting(state) {
            let order = drv.kernel.slot(slot).and_then(|s| s.order.clone()).ok_or("waiting without order")?;
            if order.venue_final {
                // Final at the venue with fills missing: the missing fill arrives.
                let missing = num::sub(order.fills.venue_cumulative, order.fills.filled).ok_or("overflow")?;
                let cid = order.client_order_id(&drv.kernel.config().kernel_id);
                drv.fill_order(
                    &cid,
                    &num::to_text(missing),
                    "100",
                    "0",
                    &num::to_text(order.fills.venue_cumulative),
                    false,
                )
            } else {
                drv.fill_all(slot, "100", "0")
            }
        } else {
            drv.exit_residual(slot)
        };
        if !out.accepted() {
            return Err(format!(
                "slot {slot} in {state:?}: the way forward was refused: {:?} {}",
                out.code, out.message
            ));
        }
    }
    Err(format!("slot {slot} did not return to a free state within 6 steps"))
}
