//! Test scaffolding shared by unit tests, property tests, the model checker
//! and the benchmarks: a standard config and a `Driver` that builds inputs
//! the way the venue and policy services would. Compiled only for tests and
//! with the `testkit` feature (never into the Python module).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use rust_decimal::Decimal;

use crate::input::{Action, ControlChange, Enter, Fill, Input, Intent, Mark, Payload, SlotTruth, VenueEvent};
use crate::model::{Config, Control, Instrument, Nanos, OrderKind};
use crate::num;
use crate::output::{CommandBody, Output, Place};
use crate::pb::{DiagnosticCode, OrderPurpose, Side, SlotState, TimeInForce, TransitionCause, VenueEventKind};
use crate::text::Id;
use crate::Kernel;

pub const BTC: &str = "BTC-USDT";
pub const ETH: &str = "ETH-USDT";
/// 2026-01-01T00:00:00Z.
pub const T0: Nanos = 1_767_225_600_000_000_000;
pub const SECOND: Nanos = 1_000_000_000;

/// Decimal from text (test scaffolding: a bad literal is a bug in the test).
pub fn d(text: &str) -> Decimal {
    num::parse(text).unwrap_or_else(|e| panic!("bad decimal literal {text:?}: {e:?}"))
}

pub fn id(text: &str) -> Id {
    Arc::from(text)
}

/// Asserts `out` was accepted.
pub fn expect_ok(out: &Output) {
    assert!(out.accepted(), "expected OK, got {:?}: {}", out.code, out.message);
}

/// Asserts `out` is a rejection with `code` that emitted nothing.
pub fn expect_code(out: &Output, code: DiagnosticCode) {
    assert_eq!(out.code, code, "message: {}", out.message);
    assert!(!out.accepted());
    assert!(out.transitions.is_empty() && out.commands.is_empty() && out.ledger.is_empty());
}

/// (from, to, cause) of every transition in `out`.
pub fn moves(out: &Output) -> Vec<(SlotState, SlotState, TransitionCause)> {
    out.transitions.iter().map(|t| (t.from, t.to, t.cause)).collect()
}

/// The one PlaceOrder of `out` (panics unless there is exactly one).
pub fn place(out: &Output) -> Place {
    let places: Vec<&Place> = out
        .commands
        .iter()
        .filter_map(|c| match &c.body {
            CommandBody::Place(p) => Some(p),
            _ => None,
        })
        .collect();
    assert_eq!(places.len(), 1, "expected one PlaceOrder, got {:?}", out.commands);
    places[0].clone()
}

/// A slot's truth for a Reconcile input.
pub fn truth(slot: u32, symbol: Option<&str>, side: Side, size: &str, price: Option<&str>) -> SlotTruth {
    SlotTruth {
        slot,
        symbol: symbol.map(id),
        side,
        position: d(size),
        entry_price: price.map(d),
        open_order: None,
        expected_version: None,
    }
}

pub fn config(slots: u32) -> Config {
    Config {
        kernel_id: id("tk"),
        slot_count: slots,
        settlement_asset: id("USDT"),
        initial_capital: d("10000"),
        initial_control: Control {
            version: 1,
            trading_enabled: true,
            reduce_only: false,
            max_leverage: d("20"),
            max_notional_per_slot: d("1000000"),
            active_slot_limit: slots,
            allowed_symbols: [id(BTC), id(ETH)].into_iter().collect::<BTreeSet<_>>(),
            update_time: None,
            updated_by: String::new(),
            reason: String::new(),
        },
        hard_max_leverage: d("125"),
        ack_timeout: 5 * SECOND,
        fill_timeout: 10 * SECOND,
        resting_check_interval: 60 * SECOND,
        cancel_timeout: 5 * SECOND,
        max_query_backoff: 300 * SECOND,
        retired_order_memory: 64,
        pnl_scale: 10,
    }
}

pub fn instruments() -> Vec<Instrument> {
    vec![
        Instrument { symbol: id(BTC), quantity_step: d("0.001"), price_tick: d("0.1"), min_quantity: d("0.001") },
        Instrument { symbol: id(ETH), quantity_step: d("0.01"), price_tick: d("0.01"), min_quantity: d("0.01") },
    ]
}

#[derive(Clone)]
/// Drives a kernel like the services would: monotonic time, sequence 0
/// (kernel-assigned), event ids that are unique unless a test repeats one.
pub struct Driver {
    pub kernel: Kernel,
    pub now: Nanos,
    /// Every input stepped, with the sequence the kernel assigned when it was
    /// accepted (rejected ones keep 0), when `recording` is on.
    pub history: Vec<(Input, bool)>,
    pub recording: bool,
    next_intent: u64,
    next_event: u64,
    next_venue_id: u64,
    venue_ids: BTreeMap<Id, Id>,
}

impl Driver {
    /// A kernel with `slots` slots, the standard instruments and marks set.
    pub fn new(slots: u32) -> Driver {
        Driver::with_config(config(slots))
    }

    pub fn with_config(cfg: Config) -> Driver {
        let mut driver = Driver {
            kernel: Kernel::new(cfg),
            now: T0,
            history: Vec::new(),
            recording: false,
            next_intent: 0,
            next_event: 0,
            next_venue_id: 1000,
            venue_ids: BTreeMap::new(),
        };
        let out = driver.step(Payload::Instruments(instruments()));
        assert!(out.accepted(), "{out:?}");
        driver
    }

    /// Drives an existing kernel. Its event and venue ids are drawn from a
    /// far range so they never collide with the ones `kernel` has seen.
    pub fn from_kernel(kernel: Kernel, now: Nanos) -> Driver {
        let mut venue_ids = BTreeMap::new();
        for slot in kernel.slots() {
            if let Some(order) = &slot.order {
                if let Some(venue_id) = &order.venue_order_id {
                    venue_ids.insert(order.client_order_id(&kernel.config().kernel_id), venue_id.clone());
                }
            }
        }
        Driver {
            kernel,
            now,
            history: Vec::new(),
            recording: false,
            next_intent: 1_000_000_000,
            next_event: 1_000_000_000,
            next_venue_id: 1_000_000_000,
            venue_ids,
        }
    }

    pub fn step(&mut self, payload: Payload) -> Output {
        self.now += 1_000_000;
        let mut input = Input { sequence: 0, time: self.now, payload };
        if self.recording {
            let out = self.kernel.step(input.clone()).clone();
            if out.accepted() {
                input.sequence = out.sequence;
            }
            self.history.push((input, out.accepted()));
            return out;
        }
        self.kernel.step(input).clone()
    }

    pub fn advance(&mut self, nanos: Nanos) {
        self.now += nanos;
    }

    fn intent_id(&mut self) -> Id {
        self.next_intent += 1;
        id(&format!("i{}", self.next_intent))
    }

    pub fn intent(&mut self, slot: u32, action: Action) -> Output {
        let intent_id = self.intent_id();
        self.step(Payload::Intent(Intent { intent_id, slot, expected_version: None, action }))
    }

    pub fn enter_spec(symbol: &str, side: Side, size: &str, kind: OrderKind, ratios: &[&str]) -> Enter {
        Enter {
            symbol: id(symbol),
            side,
            kind,
            size: d(size),
            leverage: d("5"),
            exit_leg_ratios: if ratios.is_empty() { vec![Decimal::ONE] } else { ratios.iter().map(|r| d(r)).collect() },
            reference_price: matches!(kind, OrderKind::Market).then(|| d("100")),
            labels: Arc::new(BTreeMap::new()),
        }
    }

    pub fn enter(&mut self, slot: u32, side: Side, size: &str) -> Output {
        self.intent(slot, Action::Enter(Box::new(Self::enter_spec(BTC, side, size, OrderKind::Market, &[]))))
    }

    pub fn enter_limit(&mut self, slot: u32, side: Side, size: &str, price: &str, ratios: &[&str]) -> Output {
        let kind = OrderKind::Limit { price: d(price), tif: TimeInForce::Gtc };
        self.intent(slot, Action::Enter(Box::new(Self::enter_spec(BTC, side, size, kind, ratios))))
    }

    pub fn enter_legs(&mut self, slot: u32, side: Side, size: &str, ratios: &[&str]) -> Output {
        self.intent(slot, Action::Enter(Box::new(Self::enter_spec(BTC, side, size, OrderKind::Market, ratios))))
    }

    pub fn exit(&mut self, slot: u32) -> Output {
        self.intent(slot, Action::Exit(OrderKind::Market))
    }

    pub fn exit_residual(&mut self, slot: u32) -> Output {
        self.intent(slot, Action::ExitResidual(OrderKind::Market))
    }

    pub fn cancel(&mut self, slot: u32, purpose: Option<OrderPurpose>) -> Output {
        self.intent(slot, Action::Cancel(purpose))
    }

    pub fn mark(&mut self, symbol: &str, price: &str) -> Output {
        self.step(Payload::Mark(Mark { symbol: id(symbol), price: d(price) }))
    }

    pub fn timer(&mut self) -> Output {
        self.step(Payload::Timer)
    }

    pub fn control(&mut self, change: ControlChange) -> Output {
        self.step(Payload::Control(change))
    }

    pub fn state(&self, slot: u32) -> SlotState {
        self.kernel.slot(slot).map(|s| s.state).unwrap_or_else(|| panic!("no slot {slot}"))
    }

    /// Enters MARKET and fills completely at 100 with no fee: a position of `size`.
    pub fn open(&mut self, slot: u32, side: Side, size: &str) {
        expect_ok(&self.enter(slot, side, size));
        expect_ok(&self.ack(slot));
        expect_ok(&self.fill_all(slot, "100", "0"));
        assert_eq!(self.state(slot), SlotState::PositionOpen);
    }

    /// The active order id of a slot (panics if none: a test bug).
    pub fn order_id(&self, slot: u32) -> Id {
        self.kernel.active_order_id(slot).unwrap_or_else(|| panic!("slot {slot} has no active order"))
    }

    /// The venue order id the fake venue gives an order (stable per order).
    pub fn venue_id(&mut self, cid: &Id) -> Id {
        if let Some(v) = self.venue_ids.get(cid) {
            return v.clone();
        }
        self.next_venue_id += 1;
        let v = id(&format!("v{}", self.next_venue_id));
        self.venue_ids.insert(cid.clone(), v.clone());
        v
    }

    pub fn event_id(&mut self) -> Id {
        self.next_event += 1;
        id(&format!("e{}", self.next_event))
    }

    /// A venue event for `cid`, with a fresh event id.
    pub fn event(
        &mut self,
        cid: &Id,
        kind: VenueEventKind,
        fill: Option<Fill>,
        cumulative: Option<Decimal>,
    ) -> VenueEvent {
        let event_id = self.event_id();
        let venue_order_id = Some(self.venue_id(cid));
        VenueEvent {
            kind,
            client_order_id: Some(cid.clone()),
            venue_order_id,
            event_id,
            symbol: None,
            fill,
            cumulative,
            exchange_time: self.now,
            reason: String::new(),
        }
    }

    pub fn send(&mut self, event: VenueEvent) -> Output {
        self.step(Payload::Venue(event))
    }

    pub fn ack(&mut self, slot: u32) -> Output {
        let cid = self.order_id(slot);
        let event = self.event(&cid, VenueEventKind::OrderAccepted, None, None);
        self.send(event)
    }

    pub fn reject(&mut self, slot: u32) -> Output {
        let cid = self.order_id(slot);
        let event = self.event(&cid, VenueEventKind::OrderRejected, None, None);
        self.send(event)
    }

    /// A fill of `qty` at `price`; `cumulative` is what the venue reports.
    pub fn fill_order(&mut self, cid: &Id, qty: &str, price: &str, fee: &str, cumulative: &str, last: bool) -> Output {
        let kind = if last { VenueEventKind::Fill } else { VenueEventKind::PartialFill };
        let fill = Fill { quantity: d(qty), price: d(price), fee: d(fee) };
        let event = self.event(cid, kind, Some(fill), Some(d(cumulative)));
        self.send(event)
    }

    /// Fills the slot's active order completely (one execution).
    pub fn fill_all(&mut self, slot: u32, price: &str, fee: &str) -> Output {
        let cid = self.order_id(slot);
        let order = self.kernel.slot(slot).and_then(|s| s.order.clone()).unwrap();
        let remaining = num::sub(order.quantity, order.fills.filled).unwrap();
        let qty = num::to_text(remaining);
        let cumulative = num::to_text(order.quantity);
        self.fill_order(&cid, &qty, price, fee, &cumulative, true)
    }

    pub fn cancelled(&mut self, slot: u32) -> Output {
        let cid = self.order_id(slot);
        let filled = self.kernel.slot(slot).and_then(|s| s.order.as_ref()).map(|o| o.fills.filled).unwrap();
        let event = self.event(&cid, VenueEventKind::Cancelled, None, Some(filled));
        self.send(event)
    }

    pub fn cancel_rejected(&mut self, slot: u32) -> Output {
        let cid = self.order_id(slot);
        let event = self.event(&cid, VenueEventKind::CancelRejected, None, None);
        self.send(event)
    }

    /// Asserts the kernel's invariants (panics with the reason).
    pub fn check(&self) {
        if let Err(e) = self.kernel.check_invariants() {
            panic!("invariant violated: {e}");
        }
    }
}

pub mod alphabet;
