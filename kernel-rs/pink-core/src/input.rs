//! Validated inputs. `decode` builds these from `pink.v1.KernelInput`; once
//! built, every field is in range, so handlers only judge semantics.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use rust_decimal::Decimal;

use crate::model::{Instrument, Nanos, OrderKind};
use crate::pb::{OrderPurpose, OrderStatus, Side, VenueEventKind};
use crate::text::Id;

#[derive(Clone, Debug, PartialEq)]
pub struct Input {
    /// 0: assign the next sequence.
    pub sequence: u64,
    pub time: Nanos,
    pub payload: Payload,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Payload {
    Intent(Intent),
    Venue(VenueEvent),
    Mark(Mark),
    Control(ControlChange),
    Reconcile(Reconcile),
    Timer,
    Instruments(Vec<Instrument>),
    Funding(Funding),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Intent {
    pub intent_id: Id,
    pub slot: u32,
    pub expected_version: Option<u64>,
    pub action: Action,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    Enter(Box<Enter>),
    Exit(OrderKind),
    ExitResidual(OrderKind),
    /// `None`: whichever order is active.
    Cancel(Option<OrderPurpose>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Enter {
    pub symbol: Id,
    pub side: Side,
    pub kind: OrderKind,
    pub size: Decimal,
    pub leverage: Decimal,
    /// Never empty (an empty list on the wire means one leg of 1).
    pub exit_leg_ratios: Vec<Decimal>,
    pub reference_price: Option<Decimal>,
    pub labels: Arc<BTreeMap<String, String>>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct VenueEvent {
    pub kind: VenueEventKind,
    pub client_order_id: Option<Id>,
    pub venue_order_id: Option<Id>,
    pub event_id: Id,
    pub symbol: Option<Id>,
    /// Present exactly for PARTIAL_FILL and FILL.
    pub fill: Option<Fill>,
    /// Required for fills, CANCELLED and EXPIRED.
    pub cumulative: Option<Decimal>,
    pub exchange_time: Nanos,
    pub reason: String,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Fill {
    pub quantity: Decimal,
    pub price: Decimal,
    /// Positive = paid.
    pub fee: Decimal,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Mark {
    pub symbol: Id,
    pub price: Decimal,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ControlChange {
    pub expected_version: Option<u64>,
    pub trading_enabled: Option<bool>,
    pub reduce_only: Option<bool>,
    pub max_leverage: Option<Decimal>,
    pub max_notional_per_slot: Option<Decimal>,
    pub active_slot_limit: Option<u32>,
    pub allowed_symbols: Option<BTreeSet<Id>>,
    pub actor: String,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Reconcile {
    pub reconcile_id: Id,
    pub slots: Vec<SlotTruth>,
    pub wallet_balance: Option<Decimal>,
    /// The capital the builder compared `wallet_balance` with (stale check).
    pub expected_capital: Option<Decimal>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SlotTruth {
    pub slot: u32,
    pub symbol: Option<Id>,
    pub side: Side,
    pub position: Decimal,
    pub entry_price: Option<Decimal>,
    pub open_order: Option<OrderTruth>,
    /// The slot version the truth was built against (stale check).
    pub expected_version: Option<u64>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct OrderTruth {
    pub client_order_id: Option<Id>,
    pub venue_order_id: Option<Id>,
    pub status: OrderStatus,
    pub filled: Decimal,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Funding {
    pub funding_id: Id,
    pub symbol: Id,
    pub amount: Decimal,
    pub time: Nanos,
}
